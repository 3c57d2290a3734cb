"""The H.N feature repository: entities, sources, feature views and feature services.

Every feature is defined here once; training (get_historical_features) and serving (online
store, push path) both read through these definitions. Sources are the gold Parquet exports
under $HN_HOME/lake/gold/ (Feast's offline store cannot read Delta offline here); which mart feeds
which view is stated in hn_assets/features/sources.py.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bool, Float64, Int64, String, UnixTimestamp

from hn_assets.features.sources import GOLD_SOURCES
from hn_assets.settings import get_settings


def gold_source(view: str) -> FileSource:
    """The Parquet export of the gold mart that feeds `view` (hn_assets/features/sources.py)."""
    mart, time_column = GOLD_SOURCES[view].mart, GOLD_SOURCES[view].time_column
    return FileSource(
        name=f"{mart}_source",
        path=str(get_settings().gold_dir / mart / "*.parquet"),
        file_format=ParquetFormat(),
        timestamp_field=time_column,
        description=f"dbt gold mart {mart}, exported as Parquet",
    )


# ---- entities -------------------------------------------------------------------------------
user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A customer, by pseudonymised id (anonymous visitors have none).",
)
product = Entity(
    name="product", join_keys=["product_id"], value_type=ValueType.STRING, description="A catalogue product."
)
session = Entity(
    name="session",
    join_keys=["session_key"],
    value_type=ValueType.STRING,
    description="A visit: `<visitor_id>#<n>` (30-minute inactivity rule).",
)

# ---- feature views ----------------------------------------------------------------------------
# user_features has a row whenever a value can change; an unchanged value stays true until the
# next row, so the TTL only has to outlast long absences.
user_history = FeatureView(
    name="user_history",
    entities=[user],
    ttl=timedelta(days=365),
    source=gold_source("user_history"),
    schema=[
        Field(name="lifetime_purchase_count", dtype=Int64),
        Field(name="avg_order_value_90d", dtype=Float64),
        Field(name="days_since_last_purchase", dtype=Int64),
        Field(name="preferred_category", dtype=String),
        Field(name="sessions_last_30d", dtype=Int64),
        # Not a model input (the feature service leaves it out): the scoring service computes
        # days_since_last_purchase from it at request time (hn_assets/features/request_time.py).
        Field(name="last_purchase_at", dtype=UnixTimestamp),
    ],
    description="Point-in-time purchase and visit history of a customer.",
    owner="team:ml",
)

# product_features has one row per day; a day's values are stale after two days.
product_signals = FeatureView(
    name="product_signals",
    entities=[product],
    ttl=timedelta(days=2),
    source=gold_source("product_signals"),
    schema=[
        Field(name="views_7d", dtype=Int64),
        Field(name="views_30d", dtype=Int64),
        Field(name="cart_adds_7d", dtype=Int64),
        Field(name="purchases_7d", dtype=Int64),
        Field(name="purchases_30d", dtype=Int64),
        Field(name="view_to_purchase_rate_30d", dtype=Float64),
        Field(name="avg_selling_price_7d", dtype=Float64),
        Field(name="stock_level", dtype=Int64),
        Field(name="list_price", dtype=Float64),
        Field(name="competitor_price_gap", dtype=Float64),
    ],
    description="Daily product demand, price and stock signals.",
    owner="team:ml",
)

# In-session features: batch history from the training spine, live values pushed by the
# scoring service (computed by hn_assets/online/session.py, held equal to the dbt model).
session_push = PushSource(name="session_features_push", batch_source=gold_source("session_activity"))
SESSION_FEATURE_TYPES = {
    "events_so_far": Int64,
    "page_views_so_far": Int64,
    "product_views_so_far": Int64,
    "distinct_products_so_far": Int64,
    "cart_adds_so_far": Int64,
    "cart_removes_so_far": Int64,
    "searches_so_far": Int64,
    "seconds_since_start": Float64,
    "local_hour": Int64,
    "is_weekend": Bool,
    "device": String,
    "channel": String,
}
session_activity = FeatureView(
    name="session_activity",
    entities=[session],
    ttl=timedelta(hours=2),
    source=session_push,
    schema=[Field(name=name, dtype=dtype) for name, dtype in SESSION_FEATURE_TYPES.items()],
    description="What the visitor did in this session so far (before checkout).",
    owner="team:ml",
)

# ---- feature services: exactly what each model consumes ------------------------------------------
purchase_intent_v1 = FeatureService(
    name="purchase_intent_v1",
    features=[
        session_activity,
        user_history[
            ["lifetime_purchase_count", "avg_order_value_90d", "days_since_last_purchase", "sessions_last_30d"]
        ],
        product_signals[
            [
                "views_7d",
                "purchases_30d",
                "view_to_purchase_rate_30d",
                "avg_selling_price_7d",
                "stock_level",
                "competitor_price_gap",
                "list_price",
            ]
        ],
    ],
    description="Purchase-intent scoring: in-session activity, user history, the last viewed product.",
    owner="team:ml",
)

ENTITIES = [user, product, session]
FEATURE_VIEWS = [user_history, product_signals, session_activity]
FEATURE_SERVICES = [purchase_intent_v1]
DATA_SOURCES = [session_push]
