"""consumer.py PATH: square the numbers that arrive on the queue named by PATH
until the producer removes the queue."""

import sys

import sysvkit

JOB, ANSWER = 1, 2


def main(path: str) -> None:
    with sysvkit.MessageQueue(path, 1, create=True) as queue:
        done = 0
        try:
            while True:
                data, _ = queue.receive(type=JOB, timeout=30)
                queue.send(b"%d" % (int(data) ** 2), type=ANSWER)
                done += 1
        except sysvkit.RemovedError:
            print("squared %d numbers" % done)    # the producer removed the queue
        except TimeoutError:
            queue.remove()                        # nobody came: leave nothing behind
            raise SystemExit("no work for 30 s")


if __name__ == "__main__":
    main(sys.argv[1])
