"""Feast, the pure core: the store configured from settings, the repo's definitions, point-in-time
training sets. `hn_assets/defs/features/` is the asset shell around it."""
