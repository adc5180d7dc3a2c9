"""Runtime: composing the core with ports (batches, worker pools, pipeline stages)."""
