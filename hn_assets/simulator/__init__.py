"""The H.N Laptop Store simulator: a seeded, deterministic generator of a realistic store.

It writes landing files the way the store's exporters would and never imports platform code.
"""

from hn_assets.simulator.config import SCENARIOS, SimulationConfig
from hn_assets.simulator.store import simulate

__all__ = ["SCENARIOS", "SimulationConfig", "simulate"]
