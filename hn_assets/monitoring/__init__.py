"""Monitoring cores (no Dagster): the live inference log as a frame, the champion's reference data,
drift (Evidently 0.7 + PSI), training-serving skew, live performance and the alert sink. The
Dagster shells are in hn_assets/defs/monitoring/ and hn_assets/defs/automation.py; the design is in
docs/monitoring.md."""
