"""What Dagster loads: every module here is a thin shell (assets, checks, jobs, resources) over the
pure cores beside `defs/`, and contributes its own `defs = dg.Definitions(...)`;
`hn_assets/definitions.py` assembles them with `load_from_defs_folder` and applies the layer
policies. See docs/architecture.md."""
