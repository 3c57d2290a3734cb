"""Models as assets: one module per use case (train, evaluate, promote behind a gate)."""
