"""External feeds: holidays and shopping events, exchange rates, competitor prices, promotions."""

from __future__ import annotations

import random
from datetime import date, timedelta

# (month, day) -> countries; "*" = everywhere
FIXED_HOLIDAYS = {
    (1, 1): ("New Year's Day", "*"),
    (1, 26): ("Australia Day", ("AU",)),
    (5, 1): ("Labour Day", ("DE", "FR", "PL", "SE", "CH", "BR")),
    (7, 4): ("Independence Day", ("US",)),
    (7, 14): ("Bastille Day", ("FR",)),
    (9, 7): ("Independence Day", ("BR",)),
    (10, 3): ("German Unity Day", ("DE",)),
    (11, 3): ("Culture Day", ("JP",)),
    (11, 11): ("Independence Day", ("PL",)),
    (11, 23): ("Labour Thanksgiving Day", ("JP",)),
    (12, 24): ("Christmas Eve", ("DE", "SE", "PL", "CH")),
    (12, 25): ("Christmas Day", "*"),
    (12, 26): ("Boxing Day", ("GB", "DE", "PL", "SE", "CH", "AU")),
}
COUNTRY_CODES = ("DE", "FR", "GB", "PL", "SE", "CH", "US", "BR", "JP", "AU")
# EUR value of one unit, roughly; each walks randomly day by day.
BASE_RATES = {
    "EUR": 1.0,
    "USD": 0.92,
    "GBP": 1.17,
    "CHF": 1.05,
    "SEK": 0.088,
    "PLN": 0.23,
    "JPY": 0.0062,
    "AUD": 0.61,
    "BRL": 0.17,
}
COMPETITORS = ("MediaMax", "TechDirect", "NordicBytes")


def shopping_event(day: date) -> str | None:
    """Black Friday (4th Friday of November) and Cyber Monday after it."""
    if day.month != 11 and not (day.month == 12 and day.day <= 3):
        return None
    first = date(day.year, 11, 1)
    black_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 21)
    if day == black_friday:
        return "Black Friday"
    if day == black_friday + timedelta(days=3):
        return "Cyber Monday"
    return None


def holidays_on(day: date) -> dict[str, str]:
    """country -> holiday name for `day`."""
    hit = FIXED_HOLIDAYS.get((day.month, day.day))
    if not hit:
        return {}
    name, where = hit
    return {c: name for c in (COUNTRY_CODES if where == "*" else where)}


def calendar_rows(start: date, days: int, schema_version: int) -> list[dict]:
    rows = []
    for i in range(days):
        day = start + timedelta(days=i)
        holidays, event = holidays_on(day), shopping_event(day)
        for country in COUNTRY_CODES:
            rows.append(
                {
                    "schema_version": schema_version,
                    "date": day.isoformat(),
                    "country": country,
                    "is_holiday": country in holidays,
                    "holiday_name": holidays.get(country, event),
                    "is_shopping_event": event is not None,
                }
            )
    return rows


class RateWalk:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rates = dict(BASE_RATES)

    def step(self) -> dict[str, float]:
        for cur in self.rates:
            if cur != "EUR":
                self.rates[cur] = round(self.rates[cur] * (1 + self.rng.gauss(0, 0.004)), 6)
        return dict(self.rates)


def plan_promotions(
    start: date, days: int, categories: list[str], rng: random.Random, schema_version: int
) -> list[dict]:
    promos, i = [], 0
    day = start + timedelta(days=rng.randint(0, 4))
    while day < start + timedelta(days=days):
        length = rng.randint(3, 8)
        category = rng.choice(categories) if rng.random() < 0.8 else None
        i += 1
        promos.append(
            {
                "schema_version": schema_version,
                "promotion_id": f"PR{i:04d}",
                "name": f"{(category or 'storewide').replace('_', ' ').title()} week",
                "category": category,
                "product_id": None,
                "discount_pct": float(rng.choice((5, 10, 15, 20))),
                "start_date": day.isoformat(),
                "end_date": (day + timedelta(days=length - 1)).isoformat(),
            }
        )
        day += timedelta(days=rng.randint(4, 10))
    for event_day in (start + timedelta(days=d) for d in range(days)):
        if shopping_event(event_day) == "Black Friday":
            i += 1
            promos.append(
                {
                    "schema_version": schema_version,
                    "promotion_id": f"PR{i:04d}",
                    "name": "Black Friday",
                    "category": None,
                    "product_id": None,
                    "discount_pct": 20.0,
                    "start_date": event_day.isoformat(),
                    "end_date": (event_day + timedelta(days=3)).isoformat(),
                }
            )
    return promos
