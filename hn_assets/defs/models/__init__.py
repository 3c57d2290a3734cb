"""Models, one module per concern (ARCHITECTURE.md §3). The purchase-intent training, registry and
evaluation assets build on these pure functions (issue: purchase-intent models)."""
