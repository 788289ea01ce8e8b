"""The bench's workloads, one module per group; sysvkit.bench.registry lists them."""
