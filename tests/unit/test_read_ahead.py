"""The ingest's read-ahead: same items in order, producer errors surface, stopping early stops it."""

import threading
import time

import pytest

from hn_assets.ingest.pipeline import read_ahead


def test_items_arrive_in_order_and_errors_reach_the_consumer():
    assert list(read_ahead(iter(range(50)))) == list(range(50))

    def broken():
        yield 1
        raise ValueError("landing file x breaks after line 2")

    items = read_ahead(broken())
    assert next(items) == 1
    with pytest.raises(ValueError, match="breaks after line 2"):
        next(items)


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    items = read_ahead(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    time.sleep(0.5)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 3 + 2 + 1  # bounded by the queue, and no longer growing
    assert not any(t.name == "ingest-read-ahead" and t.is_alive() for t in threading.enumerate())
