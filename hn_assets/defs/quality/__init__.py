"""Data quality: Great Expectations suites run as asset checks."""
