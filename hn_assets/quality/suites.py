"""Great Expectations suites for the gold feature tables, declared as data.

Each suite: its keys and label (never null: 100 % complete), its other critical columns (at least
COMPLETENESS complete), value ranges, allowed categories, and the time column whose newest value
must keep up with bronze (freshness). `blocking` suites guard model training: a failure stops the
downstream run. Silver and the other gold tables are guarded by their dbt tests (keys, not-null,
accepted values, ranges), which run inside the dbt build.

Keys and labels are split from the other critical columns because a tolerance means something
different for them: a feature missing in 1 % of rows is a weaker row, but a row without its key,
entity id or event time cannot be joined point-in-time, and a row without its label trains on
nothing. One `mostly` for every critical column would let up to 5 % of the training spine lose its
key or label unnoticed.
"""

from dataclasses import dataclass, field

from hn_assets.contracts import CHANNELS, DEVICES, PURCHASE_LABEL

COMPLETENESS = 0.95  # the share of non-null values a critical non-key column must reach
KEY_COMPLETENESS = 1.0  # keys and labels: every row
MAX_LAG_BEHIND_BRONZE_HOURS = 48


@dataclass(frozen=True)
class Suite:
    table: str
    time_column: str
    keys: tuple[str, ...]  # keys, entity ids, event times and labels: never null
    critical: tuple[str, ...]  # other columns the model needs: at least COMPLETENESS non-null
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    blocking: bool = True


SUITES = (
    Suite(
        "fct_session_snapshots",
        "as_of",
        keys=("snapshot_key", "session_key", "as_of", PURCHASE_LABEL),
        critical=("events_so_far", "seconds_since_start"),
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
        keys=("user_id", "event_timestamp"),
        critical=("lifetime_purchase_count", "sessions_last_30d"),
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
        keys=("product_id", "event_timestamp"),
        critical=("views_7d", "views_30d", "purchases_30d"),
        ranges={
            "views_7d": (0, None),
            "purchases_30d": (0, None),
            "view_to_purchase_rate_30d": (0, None),
            "stock_level": (0, None),
        },
    ),
)
