"""producer.py PATH: hand out numbers to square over the queue named by PATH,
add up the answers, then remove the queue."""

import sys

import sysvkit

JOB, ANSWER = 1, 2      # message types: one queue carries both directions


def main(path: str) -> None:
    # create=True: whichever program starts first creates the queue.
    with sysvkit.MessageQueue(path, 1, create=True) as queue:
        try:
            for n in range(1, 11):
                queue.send(b"%d" % n, type=JOB)
            total = 0
            for _ in range(10):
                data, _ = queue.receive(type=ANSWER, timeout=30)
                total += int(data)
            print("sum of squares:", total)
        finally:
            queue.remove()      # also tells the consumer that the work is done


if __name__ == "__main__":
    main(sys.argv[1])
