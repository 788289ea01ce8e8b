"""The bench's workloads, one module per group (pair, sem, roundtrip, throughput, shm, idle, wakeup); sysvkit.bench.registry lists them."""
