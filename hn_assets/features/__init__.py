"""Feature logic shared by training and serving (no Dagster imports here)."""
