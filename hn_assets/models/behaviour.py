"""Behavioural tests of a purchase-intent scorer on real model inputs (rows of a window), in the
spirit of CheckList: invariance to an input that should not matter, a direction for a signal the
model learns freely, and minimum functionality on clear-cut sessions. Each can fail:
tests/unit/test_model_behaviour.py runs them against deliberately broken models.

Rejected (what they replace): renaming id columns the model never sees (always passes), and the
direction of cart adds (monotone-constrained, so it holds by construction).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import polars as pl

from hn_assets.models.training import LABEL, to_pandas


class Scorer(Protocol):
    features: list[str]

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


INVARIANCE_FEATURE = "is_weekend"  # the store's truth: conversion does not depend on the weekday
INVARIANCE_SHIFT = 0.10  # |mean change| (the weekend "effect" the model applies) at most this share of the mean score
INVARIANCE_SPREAD = 0.25  # mean |change| (noise a tree picked up) at most this share of the mean score
DIRECTION_FEATURE = "lifetime_purchase_count"  # not monotone-constrained: learnt freely
DIRECTION_LOWERED_SHARE = 0.10
MIN_FUNCTIONALITY_RATIO = 3.0


def invariance_test(model: Scorer, x: pd.DataFrame) -> dict:
    """Flipping the weekend flag (a model input that should not matter) barely moves the scores."""
    if INVARIANCE_FEATURE not in model.features:
        return {"passed": True, "applicable": False, "feature": INVARIANCE_FEATURE}
    base = model.predict(x)
    flipped = x.copy()
    flipped[INVARIANCE_FEATURE] = 1.0 - flipped[INVARIANCE_FEATURE].fillna(0.0)
    delta = model.predict(flipped) - base
    mean = float(np.mean(base))
    shift, spread = abs(float(np.mean(delta))), float(np.mean(np.abs(delta)))
    return {
        "passed": shift <= INVARIANCE_SHIFT * mean and spread <= INVARIANCE_SPREAD * mean,
        "feature": INVARIANCE_FEATURE,
        "mean_change": shift,
        "mean_abs_change": spread,
        "mean_score": mean,
    }


def direction_test(model: Scorer, x: pd.DataFrame) -> dict:
    """Known customers with three past purchases do not score lower than the same sessions with none
    (CheckList's directional expectation; lifetime purchases are not monotone-constrained, so this is
    learnt, not built in): the mean change is not negative and at most 10 % of rows drop by > 0.005."""
    if DIRECTION_FEATURE not in model.features:
        return {"passed": True, "applicable": False, "feature": DIRECTION_FEATURE}
    known = x[x[DIRECTION_FEATURE].notna()]
    if known.empty:
        return {"passed": True, "applicable": False, "feature": DIRECTION_FEATURE}
    none, three = known.copy(), known.copy()
    none[DIRECTION_FEATURE], three[DIRECTION_FEATURE] = 0.0, 3.0
    delta = model.predict(three) - model.predict(none)
    lowered = float(np.mean(delta < -0.005))
    return {
        "passed": bool(delta.mean() >= 0 and lowered <= DIRECTION_LOWERED_SHARE),
        "feature": DIRECTION_FEATURE,
        "mean_change": float(delta.mean()),
        "share_lowered": lowered,
        "rows": len(known),
    }


def clear_cut_rows(x: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real test rows that are clear cases: engaged (two or more cart adds after five or more product
    views) and bounces (first event, nothing in the cart)."""
    views = x.get("product_views_so_far", pd.Series(0.0, index=x.index)).fillna(0)
    engaged = x[(x["cart_adds_so_far"].fillna(0) >= 2) & (views >= 5)]
    bounce = x[
        (x.get("events_so_far", pd.Series(1.0, index=x.index)).fillna(1) <= 1) & (x["cart_adds_so_far"].fillna(0) == 0)
    ]
    return engaged, bounce


def minimum_functionality_test(model: Scorer, x: pd.DataFrame, base_rate: float) -> dict:
    """Clear-cut engaged sessions score well above clear-cut bounces, and above the base rate."""
    engaged, bounce = clear_cut_rows(x)
    if len(engaged) < 5 or len(bounce) < 5:
        return {
            "passed": False,
            "reason": "too few clear-cut rows",
            "engaged_rows": len(engaged),
            "bounce_rows": len(bounce),
        }
    e, b = float(np.median(model.predict(engaged))), float(np.median(model.predict(bounce)))
    return {
        "passed": bool(e >= MIN_FUNCTIONALITY_RATIO * b and e > base_rate),
        "engaged_median": e,
        "bounce_median": b,
        "base_rate": base_rate,
        "engaged_rows": len(engaged),
        "bounce_rows": len(bounce),
    }


def behaviour_tests(model: Scorer, test: pl.DataFrame) -> dict[str, dict]:
    """Invariance, direction and minimum functionality on the window's real rows."""
    inputs = list(dict.fromkeys([*model.features, "cart_adds_so_far", "product_views_so_far", "events_so_far"]))
    x = to_pandas(test, [c for c in inputs if c in test.columns])
    base_rate = float(test[LABEL].cast(pl.Float64).mean())
    return {
        "invariance_weekend": invariance_test(model, x),
        "direction_purchase_history": direction_test(model, x),
        "minimum_functionality": minimum_functionality_test(model, x, base_rate),
    }
