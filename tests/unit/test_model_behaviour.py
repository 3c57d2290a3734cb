"""Behavioural tests of the purchase-intent model on real model inputs, each proven able to fail:
a model trained by the platform's own code passes, a deliberately broken one fails."""

import numpy as np
import polars as pl
import pytest

from hn_assets.models.evaluation import behaviour_tests
from hn_assets.models.split import split_with_both_classes
from hn_assets.models.training import train_all
from tests.unit.test_model_foundations import synthetic_snapshots


@pytest.fixture(scope="module")
def trained():
    frame, sessions = synthetic_snapshots(sessions=2500, seed=1)
    split_frame, _ = split_with_both_classes(frame, "purchased", sessions)
    result = train_all(split_frame, budget=1, seed=1)
    lightgbm = next(c for c in result.candidates if c.kind == "lightgbm")
    return lightgbm, split_frame.filter(pl.col("split") == "test")


class Broken:
    """A real candidate with one defect injected into how it reads or returns its inputs."""

    def __init__(self, model, defect: str):
        self.model, self.defect, self.features = model, defect, model.features

    def predict(self, frame):
        p = self.model.predict(frame)
        if self.defect == "weekend":  # leans on a feature that should not matter
            return np.clip(p * np.where(frame["is_weekend"].fillna(0) > 0, 2.0, 0.6), 0, 1)
        if self.defect == "history":  # punishes loyal customers
            return p * np.exp(-0.6 * frame["lifetime_purchase_count"].fillna(0).to_numpy())
        if self.defect == "constant":  # ignores the session
            return np.full(len(frame), 0.05)
        raise ValueError(self.defect)


def test_the_trained_model_passes_every_behavioural_test(trained):
    model, test = trained
    outcome = behaviour_tests(model, test)
    assert all(t["passed"] for t in outcome.values()), outcome
    assert outcome["invariance_weekend"]["mean_abs_change"] > 0  # the flag is a real input that moves scores


@pytest.mark.parametrize(
    ("defect", "test_name"),
    [
        ("weekend", "invariance_weekend"),
        ("history", "direction_purchase_history"),
        ("constant", "minimum_functionality"),
    ],
)
def test_each_behavioural_test_fails_against_a_broken_model(trained, defect, test_name):
    model, test = trained
    outcome = behaviour_tests(Broken(model, defect), test)
    assert not outcome[test_name]["passed"], outcome[test_name]


def test_a_model_trained_on_a_weekend_effect_fails_invariance():
    """Not only an injected defect: a model that learnt a weekend effect from its data fails too."""
    frame, sessions = synthetic_snapshots(sessions=2500, seed=2, weekend_effect=1.5)
    split_frame, _ = split_with_both_classes(frame, "purchased", sessions)
    model = next(c for c in train_all(split_frame, budget=1, seed=2).candidates if c.kind == "lightgbm")
    assert not behaviour_tests(model, split_frame.filter(pl.col("split") == "test"))["invariance_weekend"]["passed"]
