import hashlib
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from hn_assets.contracts import EVENT_TYPES, FEEDS, PLATFORM_FEEDS
from hn_assets.simulator import SimulationConfig, simulate

TINY = SimulationConfig(seed=3, days=2, users=60, products=20, sessions_per_day=40, dirty_rate=0.0)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_output(tmp_path):
    simulate(TINY, tmp_path / "a")
    simulate(TINY, tmp_path / "b")
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert first and first == second


def test_other_seed_gives_other_output(tmp_path):
    simulate(TINY, tmp_path / "a")
    simulate(replace(TINY, seed=4), tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "b")


def test_every_feed_lands_with_a_schema_version(small_store):
    landing = small_store / "landing"
    for feed in (f for f in FEEDS if f not in PLATFORM_FEEDS):  # the store's feeds; the service writes the others
        files = list((landing / feed).rglob("*.*"))
        assert files, f"no landing files for {feed}"
        first = files[0].read_text().splitlines()
        header_or_record = first[0] if files[0].suffix == ".csv" else orjson.loads(first[0])
        assert "schema_version" in header_or_record


def test_clean_clickstream_uses_canonical_events_and_converts_a_few_percent(tmp_path):
    summary = simulate(replace(TINY, days=5, sessions_per_day=300), tmp_path)
    types = set()
    for path in (tmp_path / "landing" / "clickstream_events").rglob("*.jsonl"):
        types |= {orjson.loads(line)["event_type"] for line in path.read_bytes().splitlines()}
    assert types <= set(EVENT_TYPES) and "purchase" in types
    assert 0.01 < summary.conversion_rate < 0.06


def test_dirty_rate_injects_each_kind_of_dirt(tmp_path):
    summary = simulate(replace(TINY, dirty_rate=0.2), tmp_path)
    assert all(count > 0 for count in summary.dirt.values()), summary.dirt


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        SimulationConfig(scenario="meteor_strike")
    with pytest.raises(ValueError):
        SimulationConfig(days=0)
