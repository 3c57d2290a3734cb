"""The scoring service's Python core (the BentoML service is in bentos/purchase_intent/) and its inference log."""
