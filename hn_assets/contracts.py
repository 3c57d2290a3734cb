"""Contracts: the one declaration of every landing feed's fields, types and allowed values, and of
the few gold-layer facts Python shares with dbt (the label, the session rules).

Ingest validates against these, bronze tables take their schema from them, and the adapters map
their sources onto the canonical event types declared here (docs/architecture.md, "Contracts").
Bronze evolves additively: add a field here (optional) and bump SCHEMA_VERSION.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Literal

SCHEMA_VERSION = 1

FieldType = Literal["string", "int", "float", "bool", "timestamp", "date"]
# What the privacy filter does with a field before it reaches bronze.
Privacy = Literal["pseudonymise", "drop", "age_band"]
# What it does with a field of a record whose `consent_field` is false (docs/privacy.md, "Consent"):
# "salt": a token of (value, day), so one day's records still join and two days cannot;
# "drop": null; "shift": a time moved by a secret offset, the same for the whole salted day (its
# intervals stay, its exact instant, which another feed may record too, does not);
# "keep": kept, a decision that the field links nothing (unique per record, or a catalogue id every
# visitor shares). Every id and time of a feed with consent declares one (a test checks).
WithoutConsent = Literal["salt", "drop", "shift", "keep"]

EVENT_TYPES = (
    "page_view",
    "search",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "begin_checkout",
    "purchase",
)
DEVICES = ("desktop", "mobile", "tablet")
CHANNELS = ("direct", "organic_search", "paid_search", "social", "email", "affiliate", "referral", "tiktok_ads")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "PLN", "JPY", "AUD", "BRL")
PAYMENT_TYPES = ("card", "paypal", "klarna", "bank_transfer", "cash")
ORDER_CHANNELS = ("web", "pos")
PRICE_TIERS = ("budget", "mid", "premium", "flagship")
# The scoring service's discount decision (models/policy.py: offer when the expected gain is positive).
DECISIONS = ("offer_discount", "no_discount")

# How each adapter's source vocabulary maps onto EVENT_TYPES. Unmapped values are quarantined.
ADAPTER_EVENT_MAPPINGS: dict[str, dict[str, str]] = {
    "rees46": {
        "view": "product_view",
        "cart": "add_to_cart",
        "remove_from_cart": "remove_from_cart",
        "purchase": "purchase",
    },
    "retailrocket": {"view": "product_view", "addtocart": "add_to_cart", "transaction": "purchase"},
}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    allowed: tuple[str, ...] | None = None
    privacy: Privacy | None = None
    minimum: float | None = None
    without_consent: WithoutConsent | None = None


@dataclass(frozen=True)
class FeedContract:
    name: str
    fields: tuple[Field, ...]
    date_field: str  # the field whose UTC date partitions the bronze table
    description: str
    consent_field: str | None = None  # the record's analytics consent (fields' `without_consent` apply)

    @property
    def bronze_table(self) -> str:
        return f"bronze_{self.name}"

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, type_: FieldType, required: bool = False, **kw) -> Field:
    return Field(name, type_, required, **kw)


_VERSION = _f("schema_version", "int", True, minimum=1)

FEEDS: dict[str, FeedContract] = {
    c.name: c
    for c in (
        FeedContract(
            "clickstream_events",
            (
                _VERSION,
                _f("event_id", "string", True, without_consent="keep"),  # unique per event
                _f("event_type", "string", True, allowed=EVENT_TYPES),
                # The order feed records a purchase's instant too: without consent it must not match.
                _f("event_timestamp", "timestamp", True, without_consent="shift"),
                _f("visitor_id", "string", True, privacy="pseudonymise", without_consent="salt"),
                _f("client_session_id", "string", without_consent="drop"),
                _f("user_id", "string", privacy="pseudonymise", without_consent="drop"),
                _f("analytics_consent", "bool", True),
                _f("product_id", "string", without_consent="keep"),  # the catalogue's
                _f("category", "string"),
                _f("brand", "string"),
                _f("price", "float", minimum=0),
                _f("search_query", "string"),
                _f("page_type", "string"),
                # Joins the order and its customer's stable token: without consent the event keeps none.
                _f("order_id", "string", without_consent="drop"),
                _f("device", "string", allowed=DEVICES),
                _f("channel", "string", allowed=CHANNELS),
                _f("country", "string"),
                _f("timezone", "string", True),
                _f("source", "string", True),
                # Set by an adapter for a source row it could not map; ingest quarantines it with this reason.
                _f("source_error", "string"),
            ),
            "event_timestamp",
            "Clickstream events from the web shop and loaded public event logs.",
            consent_field="analytics_consent",
        ),
        FeedContract(
            "orders",
            (
                _VERSION,
                _f("order_id", "string", True),
                _f("customer_id", "string", privacy="pseudonymise"),
                _f("order_timestamp", "timestamp", True),
                _f("order_channel", "string", True, allowed=ORDER_CHANNELS),
                _f("store_id", "string"),
                _f("payment_type", "string", True, allowed=PAYMENT_TYPES),
                _f("currency", "string", True, allowed=CURRENCIES),
                _f("discount_amount", "float", True, minimum=0),
                _f("total_amount", "float", True, minimum=0),
                _f("shipping_email", "string", privacy="drop"),
                _f("shipping_address", "string", privacy="drop"),
                _f("source", "string", True),
            ),
            "order_timestamp",
            "Orders from the web shop and the point of sale.",
        ),
        FeedContract(
            "order_items",
            (
                _VERSION,
                _f("order_id", "string", True),
                _f("line_number", "int", True, minimum=1),
                _f("order_timestamp", "timestamp", True),
                _f("product_id", "string", True),
                _f("quantity", "int", True, minimum=1),
                _f("unit_price", "float", True, minimum=0),
                _f("discount_amount", "float", True, minimum=0),
                _f("currency", "string", True, allowed=CURRENCIES),
            ),
            "order_timestamp",
            "Order lines.",
        ),
        FeedContract(
            "products",
            (
                _VERSION,
                _f("product_id", "string", True),
                _f("snapshot_date", "date", True),
                _f("name", "string", True),
                _f("category", "string", True),
                _f("brand", "string", True),
                _f("cpu", "string"),
                _f("ram_gb", "int", minimum=0),
                _f("storage_gb", "int", minimum=0),
                _f("gpu", "string"),
                _f("screen_inches", "float", minimum=0),
                _f("price_tier", "string", True, allowed=PRICE_TIERS),
                _f("list_price", "float", True, minimum=0),
                _f("unit_cost", "float", True, minimum=0),
                _f("is_active", "bool", True),
            ),
            "snapshot_date",
            "Product catalogue snapshots (EUR prices).",
        ),
        FeedContract(
            "inventory",
            (
                _VERSION,
                _f("product_id", "string", True),
                _f("snapshot_date", "date", True),
                _f("stock_level", "int", True, minimum=0),
                _f("units_received", "int", True, minimum=0),
            ),
            "snapshot_date",
            "End-of-day stock per product.",
        ),
        FeedContract(
            "customers",
            (
                _VERSION,
                _f("customer_id", "string", True, privacy="pseudonymise"),
                _f("updated_at", "timestamp", True),
                _f("first_name", "string", privacy="drop"),
                _f("last_name", "string", privacy="drop"),
                _f("email", "string", privacy="drop"),
                _f("phone", "string", privacy="drop"),
                _f("birth_date", "date", privacy="age_band"),
                _f("country", "string", True),
                _f("timezone", "string", True),
                _f("device_preference", "string", allowed=DEVICES),
                _f("acquisition_channel", "string", allowed=CHANNELS),
                _f("signup_date", "date", True),
                _f("consent_analytics", "bool", True),
                _f("consent_personalization", "bool", True),
                _f("consent_marketing", "bool", True),
            ),
            "updated_at",
            "Customer profiles; each record is a dated version (consent changes apply from updated_at).",
        ),
        FeedContract(
            "competitor_prices",
            (
                _VERSION,
                _f("product_id", "string", True),
                _f("competitor", "string", True),
                _f("price_date", "date", True),
                _f("price", "float", True, minimum=0),
                _f("currency", "string", True, allowed=CURRENCIES),
            ),
            "price_date",
            "Daily competitor price observations.",
        ),
        FeedContract(
            "promotions",
            (
                _VERSION,
                _f("promotion_id", "string", True),
                _f("name", "string", True),
                _f("category", "string"),
                _f("product_id", "string"),
                _f("discount_pct", "float", True, minimum=0),
                _f("start_date", "date", True),
                _f("end_date", "date", True),
            ),
            "start_date",
            "Promotions (a category, a product or the whole store).",
        ),
        FeedContract(
            "calendar",
            (
                _VERSION,
                _f("date", "date", True),
                _f("country", "string", True),
                _f("is_holiday", "bool", True),
                _f("holiday_name", "string"),
                _f("is_shopping_event", "bool", True),
            ),
            "date",
            "Public holidays and shopping events per country.",
        ),
        FeedContract(
            "exchange_rates",
            (
                _VERSION,
                _f("date", "date", True),
                _f("currency", "string", True, allowed=CURRENCIES),
                _f("rate_to_eur", "float", True, minimum=0),
            ),
            "date",
            "Daily rate: 1 unit of currency = rate_to_eur EUR.",
        ),
        # Written by the scoring service (hn_assets/serving/inference_log.py), one record per answered
        # /score, and ingested like every other feed: ids arrive raw (as the store backend sent them)
        # and are pseudonymised here, with the clickstream's consent rules.
        FeedContract(
            "inference_log",
            (
                _VERSION,
                _f("request_id", "string", True, without_consent="keep"),  # unique per answer
                # When the answer was given; without consent shifted like the visitor-day's events.
                _f("scored_at", "timestamp", True, without_consent="shift"),
                _f("visitor_id", "string", True, privacy="pseudonymise", without_consent="salt"),
                _f("user_id", "string", privacy="pseudonymise", without_consent="drop"),
                _f("client_session_id", "string", without_consent="drop"),
                # The service's `<visitor token>#<n>`: already a pseudonym (from the day token without consent).
                _f("session_key", "string", without_consent="keep"),
                _f("analytics_consent", "bool", True),
                _f("personalization_consent", "bool", True),
                _f("model_version", "string"),  # null when no model answered (fallback)
                _f("fallback", "bool", True),
                _f("fallback_reason", "string"),
                _f("feature_groups", "string"),  # comma-separated feature groups used
                # The feature vector the model saw: a JSON object {feature: value} as text (values only, no ids).
                _f("features", "string", True),
                _f("raw_score", "float", minimum=0),  # before calibration
                _f("calibrated_score", "float", True, minimum=0),  # the probability answered
                _f("decision", "string", True, allowed=DECISIONS),
                _f("uplift_p0", "float", minimum=0),  # the decision's inputs (models/policy.py)
                _f("uplift_p1", "float", minimum=0),
                _f("margin", "float"),
                _f("discount", "float", minimum=0),
                _f("latency_ms", "float", True, minimum=0),
                _f("device", "string", allowed=DEVICES),
            ),
            "scored_at",
            "Every answered /score of the scoring service: ids, the feature vector used, raw and calibrated "
            "score, decision, model version, fallback flag and latency.",
            consent_field="analytics_consent",
        ),
    )
}

BRONZE_TABLES = tuple(c.bronze_table for c in FEEDS.values())
# Feeds the platform writes itself (the scoring service), not the store: the simulator lands none.
PLATFORM_FEEDS = ("inference_log",)
QUARANTINE_TABLE = "bronze_quarantine"

# ---- facts of the gold layer that Python relies on -------------------------------------------
# The label of the purchase-intent training spine (fct_sessions / fct_session_snapshots).
PURCHASE_LABEL = "purchased"


@dataclass(frozen=True)
class SessionRules:
    """The sessionisation rules. Their one home is dbt_project.yml's `vars` (dbt computes the
    sessions); Python (the live session logic, the temporal split) reads them from there, so the
    service and dbt cannot silently disagree."""

    timeout_seconds: int
    max_snapshots: int

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds)


@cache
def session_rules() -> SessionRules:
    import yaml

    project = yaml.safe_load((Path(__file__).resolve().parent.parent / "dbt_project" / "dbt_project.yml").read_text())
    dbt_vars = project["vars"]
    return SessionRules(int(dbt_vars["session_timeout_seconds"]), int(dbt_vars["max_snapshots_per_session"]))
