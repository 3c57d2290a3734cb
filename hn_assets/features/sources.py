"""Which gold mart, and which time column, feeds each feature view: stated once, here.

The Feast repo builds every view's source from this table, and the asset graph wires each
`online_<view>` asset after its mart from it. Reading the mapping back from the FeatureView objects
instead would import Feast (~15 s) when the code location loads; a test holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GoldSource:
    mart: str
    time_column: str = "event_timestamp"


GOLD_SOURCES: dict[str, GoldSource] = {
    "user_history": GoldSource("user_features"),
    "product_signals": GoldSource("product_features"),
    "session_activity": GoldSource("fct_session_snapshots", time_column="as_of"),
}
