"""State stores behind the core's `StateStore` protocol: memory and RocksDB."""
