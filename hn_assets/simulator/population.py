"""Customers: where they live, how they shop, what they consented to, and their PII."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

# country -> (IANA timezone, currency, weight, phone prefix)
COUNTRIES = {
    "DE": ("Europe/Berlin", "EUR", 0.22, "+49"),
    "FR": ("Europe/Paris", "EUR", 0.10, "+33"),
    "GB": ("Europe/London", "GBP", 0.12, "+44"),
    "PL": ("Europe/Warsaw", "PLN", 0.05, "+48"),
    "SE": ("Europe/Stockholm", "SEK", 0.04, "+46"),
    "CH": ("Europe/Zurich", "CHF", 0.03, "+41"),
    "US-E": ("America/New_York", "USD", 0.14, "+1"),
    "US-W": ("America/Los_Angeles", "USD", 0.10, "+1"),
    "BR": ("America/Sao_Paulo", "BRL", 0.06, "+55"),
    "JP": ("Asia/Tokyo", "JPY", 0.07, "+81"),
    "AU": ("Australia/Sydney", "AUD", 0.07, "+61"),
}
FIRST_NAMES = (
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kenji",
    "Lena",
    "Mateo",
    "Nora",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomasz",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
    "Zoe",
    "Lucas",
    "Mia",
    "Noah",
    "Olivia",
    "Liam",
)
LAST_NAMES = (
    "Müller",
    "Schmidt",
    "Dubois",
    "Smith",
    "Jones",
    "Kowalski",
    "Andersson",
    "Meier",
    "Tanaka",
    "Suzuki",
    "Silva",
    "Santos",
    "Brown",
    "Taylor",
    "Martin",
    "Bernard",
    "Nowak",
    "Larsson",
    "Johnson",
    "Williams",
    "Garcia",
    "Wilson",
    "Keller",
    "Weber",
    "Yamamoto",
)
CHANNEL_WEIGHTS = {
    "direct": 0.22,
    "organic_search": 0.28,
    "paid_search": 0.16,
    "social": 0.12,
    "email": 0.08,
    "affiliate": 0.06,
    "referral": 0.06,
    "tiktok_ads": 0.02,
}
CHANNEL_EFFECT = {
    "direct": 0.3,
    "organic_search": 0.0,
    "paid_search": 0.4,
    "social": -0.6,
    "email": 0.9,
    "affiliate": 0.2,
    "referral": 0.1,
    "tiktok_ads": -0.9,
}


@dataclass
class Customer:
    customer_id: str
    visitor_id: str
    country: str
    timezone: str
    currency: str
    first_name: str
    last_name: str
    email: str
    phone: str
    birth_date: date
    device_preference: str
    acquisition_channel: str
    signup_date: date
    consent_analytics: bool
    consent_personalization: bool
    consent_marketing: bool
    propensity: float  # latent buying propensity (log-odds shift)
    price_sensitivity: float  # 0..1
    visit_rate: float  # relative chance of visiting on a day
    purchases: int = 0
    favourite_category: str | None = None
    history: list = field(default_factory=list)


def _device(rng: random.Random, mobile_bias: float = 0.0) -> str:
    return rng.choices(("desktop", "mobile", "tablet"), (0.48 - mobile_bias, 0.42 + mobile_bias, 0.10))[0]


def new_customer(
    index: int, signup: date, rng: random.Random, *, young_mobile: bool = False, categories: tuple[str, ...] = ()
) -> Customer:
    country = rng.choices(list(COUNTRIES), [c[2] for c in COUNTRIES.values()])[0]
    tz, currency, _, prefix = COUNTRIES[country]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    age = rng.randint(18, 24) if young_mobile else int(min(85, max(18, rng.gauss(38, 12))))
    birth = signup - timedelta(days=age * 365 + rng.randint(0, 364))
    channel = "tiktok_ads" if young_mobile else rng.choices(list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))[0]
    return Customer(
        customer_id=f"C{index + 1:07d}",
        visitor_id=f"v-{rng.getrandbits(48):012x}",
        country=country.split("-")[0],
        timezone=tz,
        currency=currency,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.{'com' if rng.random() < 0.6 else 'org'}",
        phone=f"{prefix} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}",
        birth_date=birth,
        device_preference=_device(rng, 0.4 if young_mobile else 0.0),
        acquisition_channel=channel,
        signup_date=signup,
        consent_analytics=rng.random() < 0.82,
        consent_personalization=rng.random() < 0.6,
        consent_marketing=rng.random() < 0.4,
        propensity=rng.gauss(-0.6 if young_mobile else 0.0, 1.2),
        price_sensitivity=rng.betavariate(4, 2) if young_mobile else rng.betavariate(2, 3),
        visit_rate=rng.paretovariate(2.0),
        favourite_category=rng.choice(categories) if categories else None,
    )


def customer_record(c: Customer, updated_at: str, schema_version: int) -> dict:
    """The landing record of the CRM exporter: the full profile, PII included."""
    return {
        "schema_version": schema_version,
        "customer_id": c.customer_id,
        "updated_at": updated_at,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "phone": c.phone,
        "birth_date": c.birth_date.isoformat(),
        "country": c.country,
        "timezone": c.timezone,
        "device_preference": c.device_preference,
        "acquisition_channel": c.acquisition_channel,
        "signup_date": c.signup_date.isoformat(),
        "consent_analytics": c.consent_analytics,
        "consent_personalization": c.consent_personalization,
        "consent_marketing": c.consent_marketing,
    }
