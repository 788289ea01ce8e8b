"""A fresh process attaches a large segment and copies it out: how long?

Runs each way of doing it in a new interpreter (or a new C process), several
rounds interleaved, and prints the median time and GB/s of each, split into
attaching (with populating, where asked) and copying.  The destination is
allocated and touched before the clock starts.

    python tools/attach_read_bench.py [--mib 256] [--rounds 5]

Needs numpy; uses sysv_ipc and a C compiler (cc) where present.  Every
segment it makes is removed at the end, also on error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from multiprocessing import shared_memory
from typing import Dict, List, Optional, Tuple

import numpy

import sysvkit

PY_CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy
    how, ident, name, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if how.startswith("sysvkit"):
        import sysvkit
    elif how == "sysv_ipc":
        import sysv_ipc
    else:
        from multiprocessing import shared_memory, resource_tracker
    dst = numpy.empty(size, numpy.uint8)
    dst.fill(1)
    t0 = time.perf_counter()
    if how.startswith("sysvkit"):
        shm = sysvkit.SharedMemory.from_id(ident, readonly=True,
                                           populate=how == "sysvkit-populate")
        if how == "sysvkit-populate-1":
            shm._seg_populate(1)              # one thread, for comparison
        src = shm.ndarray(numpy.uint8)
        if how == "sysvkit-readinto":
            t1 = time.perf_counter()
            shm.readinto(dst)
            t2 = time.perf_counter()
            assert dst[0] == 7 and dst[-1] == 7
            print(json.dumps([t1 - t0, t2 - t1]))
            sys.exit(0)
    elif how == "sysv_ipc":
        shm = sysv_ipc.attach(ident, flags=sysv_ipc.SHM_RDONLY)
        src = numpy.frombuffer(memoryview(shm), numpy.uint8)
    else:
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")   # the parent owns it
        src = numpy.frombuffer(shm.buf, numpy.uint8)
    t1 = time.perf_counter()
    numpy.copyto(dst, src)
    t2 = time.perf_counter()
    assert dst[0] == 7 and dst[-1] == 7
    print(json.dumps([t1 - t0, t2 - t1]))
""")

C_CHILD = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9;
}
struct part { char *src, *dst; size_t n; };
static void *run(void *arg) {
    struct part *p = arg;
    madvise(p->src, p->n, MADV_POPULATE_READ);
    memcpy(p->dst, p->src, p->n);
    return NULL;
}
int main(int argc, char **argv) {
    int id = atoi(argv[1]), populate = atoi(argv[2]), threads = atoi(argv[3]);
    size_t size = strtoull(argv[4], NULL, 10);
    char *dst = malloc(size);
    memset(dst, 1, size);
    double t0 = now();
    char *src = shmat(id, NULL, SHM_RDONLY);
    if (src == (void *)-1) return 1;
    double t1, t2;
    if (threads > 1) {
        pthread_t tid[8]; struct part parts[8];
        size_t per = size / threads / 4096 * 4096;
        for (int i = 0; i < threads; i++) {
            parts[i].src = src + i * per; parts[i].dst = dst + i * per;
            parts[i].n = i == threads - 1 ? size - i * per : per;
            pthread_create(&tid[i], NULL, run, &parts[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        t1 = t2 = now();
    } else {
        if (populate) madvise(src, size, MADV_POPULATE_READ);
        t1 = now();
        memcpy(dst, src, size);
        t2 = now();
    }
    if (dst[0] != 7 || dst[size - 1] != 7) return 2;
    printf("[%.9f, %.9f]\n", t1 - t0, t2 - t1);
    return 0;
}
"""


def build_c(tmp: str) -> Optional[str]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = os.path.join(tmp, "floor.c")
    exe = os.path.join(tmp, "floor")
    with open(src, "w") as f:
        f.write(C_CHILD)
    subprocess.run([cc, "-O2", "-pthread", src, "-o", exe], check=True)
    return exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = args.mib << 20
    try:
        import sysv_ipc  # noqa: F401
        have_sysv_ipc = True
    except ImportError:
        have_sysv_ipc = False
    tmp = tempfile.mkdtemp(prefix="attach-read-")
    shm = sysvkit.SharedMemory(key=sysvkit.IPC_PRIVATE, size=size)
    mp = shared_memory.SharedMemory(create=True, size=size)
    try:
        shm.ndarray(numpy.uint8)[:] = 7
        numpy.frombuffer(mp.buf, numpy.uint8)[:] = 7
        exe = build_c(tmp)
        ways: List[Tuple[str, List[str]]] = [
            ("sysvkit default", [sys.executable, "-c", PY_CHILD, "sysvkit", str(shm.id), "", str(size)]),
            ("sysvkit populate=True", [sys.executable, "-c", PY_CHILD, "sysvkit-populate",
                                       str(shm.id), "", str(size)]),
            ("sysvkit populate, one thread", [sys.executable, "-c", PY_CHILD,
                                              "sysvkit-populate-1", str(shm.id), "", str(size)]),
            ("sysvkit readinto (threads)", [sys.executable, "-c", PY_CHILD,
                                            "sysvkit-readinto", str(shm.id), "", str(size)]),
            ("multiprocessing.shared_memory", [sys.executable, "-c", PY_CHILD, "mp", "0",
                                               mp.name, str(size)]),
        ]
        if have_sysv_ipc:
            ways.append(("sysv_ipc", [sys.executable, "-c", PY_CHILD, "sysv_ipc", str(shm.id),
                                      "", str(size)]))
        if exe:
            ways += [
                ("C shmat+memcpy", [exe, str(shm.id), "0", "1", str(size)]),
                ("C shmat+MADV_POPULATE_READ+memcpy", [exe, str(shm.id), "1", "1", str(size)]),
                ("C 2 threads (populate+memcpy each half)", [exe, str(shm.id), "1", "2", str(size)]),
            ]
        times: Dict[str, List[Tuple[float, float]]] = {name: [] for name, _ in ways}
        for _ in range(args.rounds):
            for name, cmd in ways:
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                attach, copy = json.loads(out)
                times[name].append((attach, copy))
        rows = []
        for name, got in times.items():
            total = statistics.median(a + c for a, c in got)
            rows.append({"way": name, "ms": total * 1e3, "GB/s": size / total / 1e9,
                         "attach_ms": statistics.median(a for a, _ in got) * 1e3,
                         "copy_ms": statistics.median(c for _, c in got) * 1e3})
        base = {r["way"]: r["ms"] for r in rows}
        if args.json:
            print(json.dumps(rows, indent=1))
            return
        print("%d MiB, median of %d fresh processes each" % (args.mib, args.rounds))
        print("%-42s %8s %7s %10s %8s  %s" % ("way", "ms", "GB/s", "attach ms", "copy ms",
                                             "vs populate=True"))
        pop = base["sysvkit populate=True"]
        for r in rows:
            print("%-42s %8.1f %7.2f %10.1f %8.1f  %.2fx" % (r["way"], r["ms"], r["GB/s"],
                                                           r["attach_ms"], r["copy_ms"],
                                                           r["ms"] / pop))
    finally:
        shm.remove()
        shm.close()
        mp.close()
        mp.unlink()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
