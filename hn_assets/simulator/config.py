"""Knobs of the H.N store simulator: scale, scenario and dirt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SCENARIOS = ("baseline", "young_mobile_influx", "price_shock")


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 42
    start_date: date = date(2026, 9, 1)
    days: int = 42
    users: int = 4000
    products: int = 160
    sessions_per_day: int = 1200
    scenario: str = "baseline"
    drift_start_day: int = 28  # scenario changes apply from this day index on
    dirty_rate: float = 0.01  # share of clickstream records made dirty
    anonymous_share: float = 0.45  # sessions from visitors who are not customers
    bot_share: float = 0.015
    offer_share: float = 0.10  # sessions shown a discount offer (the store's current policy: random)
    offer_discount_pct: float = 10.0
    offer_uplift_logit: float = 0.6  # true effect of an offer on purchase log-odds, scaled by price sensitivity
    base_logit: float = -5.0  # tunes conversion to ~2-4 %

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; choose one of {', '.join(SCENARIOS)}")
        if self.days < 1 or self.users < 1 or self.products < 10 or self.sessions_per_day < 1:
            raise ValueError("days, users and sessions_per_day must be >= 1 and products >= 10")
        if not 0.0 <= self.dirty_rate < 0.5:
            raise ValueError("dirty_rate must be in [0, 0.5)")
