"""Models, the pure core, one module per concern: temporal split, training, metrics, evaluation,
the promotion gate, the discount policy and the MLflow registry. `hn_assets/defs/models/` holds one
asset module per use case built on these functions."""
