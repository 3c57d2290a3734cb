"""Great Expectations suites for the gold feature tables, declared as data.

Each suite: critical columns (>= 95 % complete), value ranges, allowed categories, and the time
column whose newest value must keep up with bronze (freshness). `blocking` suites guard model
training: a failure stops the downstream run. Silver and the other gold tables are guarded by
their dbt tests (keys, not-null, accepted values, ranges), which run inside the dbt build.
"""

from dataclasses import dataclass, field

from hn_assets.contracts import CHANNELS, DEVICES, PURCHASE_LABEL

COMPLETENESS = 0.95
MAX_LAG_BEHIND_BRONZE_HOURS = 48


@dataclass(frozen=True)
class Suite:
    table: str
    time_column: str
    critical: tuple[str, ...]
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    blocking: bool = True


SUITES = (
    Suite(
        "fct_session_snapshots",
        "as_of",
        critical=("snapshot_key", "session_key", "as_of", "events_so_far", "seconds_since_start", PURCHASE_LABEL),
        ranges={
            "events_so_far": (1, None),
            "seconds_since_start": (0, None),
            "local_hour": (0, 23),
            "cart_adds_so_far": (0, None),
            "distinct_products_so_far": (0, None),
        },
        categories={"device": DEVICES, "channel": CHANNELS},
    ),
    Suite(
        "user_features",
        "event_timestamp",
        critical=("user_id", "event_timestamp", "lifetime_purchase_count", "sessions_last_30d"),
        ranges={
            "lifetime_purchase_count": (0, None),
            "avg_order_value_90d": (0, None),
            "days_since_last_purchase": (0, None),
            "sessions_last_30d": (0, None),
        },
    ),
    Suite(
        "product_features",
        "event_timestamp",
        critical=("product_id", "event_timestamp", "views_7d", "views_30d", "purchases_30d"),
        ranges={
            "views_7d": (0, None),
            "purchases_30d": (0, None),
            "view_to_purchase_rate_30d": (0, None),
            "stock_level": (0, None),
        },
    ),
)
