"""The live edge's logic shared by training and serving (no Dagster imports here): in-session
features computed from a session's events as they arrive."""
