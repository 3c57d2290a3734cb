"""The serving fast path equals the registered model bit for bit, on real (small) models trained
here with the training code itself: LightGBM (calibrated on its margin: LGBMClassifier has
`decision_function` since 4.7) and XGBoost (calibrated on float32 probabilities), early-stopped
(so the iterations used matter), saved and loaded through MLflow's skops format like a registered
champion; also an ensemble of calibrated members (cv, averaged) and an uncalibrated pipeline. A
kind the fast path does not cover falls back to `predict_proba`, still equal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from hn_assets.models import training
from hn_assets.serving.model import Champion, check_champion, check_rows

FEATURES = ["events_so_far", "cart_adds_so_far", "seconds_since_start", "is_weekend", "device", "channel", "stock"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    events = rng.integers(1, 30, n).astype(float)
    carts = rng.integers(0, 4, n).astype(float)
    seconds = rng.exponential(400, n)
    weekend = rng.random(n) < 0.3
    device = rng.choice([*training.CATEGORIES["device"], None], n)
    channel = rng.choice([*training.CATEGORIES["channel"], None], n)
    stock = np.where(rng.random(n) < 0.2, np.nan, rng.normal(50, 20, n))
    logit = -3 + 0.9 * carts + 0.04 * events + 0.3 * (device == "desktop") - 0.001 * seconds
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pl.DataFrame(
        {
            "events_so_far": events,
            "cart_adds_so_far": carts,
            "seconds_since_start": seconds,
            "is_weekend": weekend,
            "device": device,
            "channel": channel,
            "stock": stock,
        },
        strict=False,
    )
    return training.to_pandas(frame, FEATURES), y


@pytest.fixture(scope="module")
def data():
    xt, yt = _frame(3000, 1)
    xv, yv = _frame(1500, 2)
    xs, _ = _frame(800, 3)
    # Edge rows: everything missing, unknown categories, far outside the calibrated range.
    edge = pd.DataFrame(
        [
            dict.fromkeys(FEATURES, None),
            {**dict.fromkeys(FEATURES, math.nan), "device": "fridge", "channel": None},
            {
                "events_so_far": 1e6,
                "cart_adds_so_far": 40.0,
                "seconds_since_start": 0.0,
                "is_weekend": 1.0,
                "device": "desktop",
                "channel": "email",
                "stock": -1e9,
            },
        ]
    )
    edge = training.to_pandas(pl.from_pandas(edge.astype(object)), FEATURES)
    return xt, yt, xv, yv, pd.concat([xs, edge], ignore_index=True)


def _through_mlflow(estimator, tmp_path):
    """Save and load as a registered champion is (mlflow.sklearn, skops, trusted types)."""
    import mlflow.sklearn

    from hn_assets.models.registry import TRUSTED_TYPES

    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=TRUSTED_TYPES,
        pyfunc_predict_fn="predict_proba",
    )
    return mlflow.sklearn.load_model(str(path))


def _assert_equal(champion: Champion, frame: pd.DataFrame) -> None:
    reference = champion.predict_frame(frame)
    rows = frame[champion.features].to_dict("records")
    mine = np.array(
        [
            champion.predict(
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            ).probability
            for r in rows
        ]
    )
    assert np.array_equal(mine, reference), np.abs(mine - reference).max()


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_fast_path_equals_the_registered_model(kind, data, tmp_path):
    xt, yt, xv, yv, sample = data
    make = training.lightgbm_candidates if kind == "lightgbm" else training.xgboost_candidates
    candidate = make(xt, yt, xv, yv, FEATURES, budget=1, seed=7)[0].calibrate(xv, yv)
    assert candidate.calibrated
    fitted = candidate.estimator.calibrated_classifiers_[0].estimator.estimator.named_steps["model"]
    if kind == "lightgbm":  # early-stopped (lgb.train keeps only the best iteration's trees)
        assert 0 < fitted.booster_.best_iteration == fitted.booster_.num_trees()
    else:  # early-stopped, every tree kept: predict_proba uses best_iteration + 1 of them
        assert fitted.best_iteration + 1 < fitted.get_booster().num_boosted_rounds()
    # In memory (every tree) and as registered (skops; LightGBM then keeps only the best iteration's).
    for registered in (candidate.estimator, _through_mlflow(candidate.estimator, tmp_path)):
        champion = Champion(registered, "1")
        assert champion.fast and champion.kind == kind, champion.why_slow
        assert champion.calibrates_margin is (kind == "lightgbm")
        _assert_equal(champion, sample)
        score = champion.predict(sample[FEATURES].iloc[0].to_dict())
        assert len(champion.reasons(score, {})) == 3
        check_champion(champion)  # the load-time check agrees
        assert champion.fast


def test_ensemble_of_calibrated_members_and_an_uncalibrated_pipeline(data, tmp_path):
    from sklearn.calibration import CalibratedClassifierCV

    xt, yt, xv, yv, sample = data
    candidate = training.lightgbm_candidates(xt, yt, xv, yv, FEATURES, budget=1, seed=3)[0]
    pipeline = candidate.estimator
    # cv=3, ensemble=True: three (clone, calibrator) pairs, averaged by predict_proba.
    model = pipeline.named_steps["model"].set_params(n_estimators=40, callbacks=None)
    ensemble = CalibratedClassifierCV(
        training._pipeline(pipeline.named_steps["prepare"], model), method="isotonic", cv=3
    ).fit(xv, yv, model__categorical_feature=["device", "channel"])
    assert len(ensemble.calibrated_classifiers_) == 3
    champion = Champion(_through_mlflow(ensemble, tmp_path / "e"), "2")
    assert champion.fast, champion.why_slow
    _assert_equal(champion, sample)
    plain = Champion(_through_mlflow(pipeline, tmp_path / "p"), "3")  # a degenerate window: no calibration
    assert plain.fast, plain.why_slow
    _assert_equal(plain, sample)


def test_an_unsupported_kind_falls_back_to_predict_proba(data):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    xt, yt, xv, yv, sample = data
    prepare = training.prepare_step(FEATURES).fit(xt)
    other = Pipeline([("prepare", prepare), ("model", HistGradientBoostingClassifier(max_iter=20))]).fit(xt, yt)
    registered = CalibratedClassifierCV(FrozenEstimator(other), method="isotonic").fit(xv, yv)
    champion = Champion(registered, "4")
    assert not champion.fast and "HistGradientBoostingClassifier" in champion.why_slow
    _assert_equal(champion, sample.head(50))
    assert champion.reasons(champion.predict(sample[FEATURES].iloc[0].to_dict()), {}) == []


def test_the_load_check_falls_back_when_the_fast_path_is_wrong(data, tmp_path):
    xt, yt, xv, yv, _ = data
    candidate = training.lightgbm_candidates(xt, yt, xv, yv, FEATURES, budget=1, seed=5)[0].calibrate(xv, yv)
    champion = Champion(candidate.estimator, "5")
    rows = check_rows(champion)
    assert len(rows) > 5 and champion.verify(rows)
    booster, calibrator = champion._members[0]
    booster.margin_response = not booster.margin_response  # simulate a wrong reading of the model
    check_champion(champion)
    assert not champion.fast and champion.why_slow
    assert champion.verify(rows)  # now through predict_proba: equal by construction


def _saabas_from_lightgbm_tables(booster, prepared: np.ndarray) -> np.ndarray:
    """Path contributions computed independently of the serving code, from LightGBM's own node
    table (`trees_to_dataframe`) and leaf assignment (`predict(pred_leaf=True)`), walking each
    leaf up to its root."""
    nodes = booster.trees_to_dataframe().set_index("node_index")
    names = booster.feature_name()
    leaves = booster.predict(prepared, pred_leaf=True)
    out = np.zeros((len(prepared), len(names) + 1))
    for r in range(len(prepared)):
        for tree, leaf in enumerate(leaves[r]):
            node = f"{tree}-L{int(leaf)}"
            while isinstance(nodes.at[node, "parent_index"], str):
                parent = nodes.at[node, "parent_index"]
                out[r, names.index(nodes.at[parent, "split_feature"])] += (
                    nodes.at[node, "value"] - nodes.at[parent, "value"]
                )
                node = parent
            out[r, -1] += nodes.at[node, "value"]
    return out


def test_path_reasons_are_the_saabas_contributions_and_sum_to_the_margin(data):
    """The default reasons (model.PathContributions, tabulated per leaf) equal a direct walk of
    LightGBM's trees for each row, and with the bias they add up to the booster's raw margin, as
    TreeSHAP values (reasons="shap", LightGBM's pred_contrib) do."""
    xt, yt, xv, yv, sample = data
    candidate = training.lightgbm_candidates(xt, yt, xv, yv, FEATURES, budget=1, seed=7)[0].calibrate(xv, yv)
    path, shap = Champion(candidate.estimator, "1"), Champion(candidate.estimator, "1", reasons="shap")
    pipeline = candidate.estimator.calibrated_classifiers_[0].estimator.estimator
    booster = pipeline.named_steps["model"].booster_
    rows = sample[FEATURES].head(60).to_dict("records")
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
    prepared = np.vstack([path.row(r) for r in rows])
    expected = _saabas_from_lightgbm_tables(booster, prepared)
    margins = booster.predict(prepared, raw_score=True)
    for i, row in enumerate(rows):
        by_path, by_shap = path.predict(row).contributions, shap.predict(row).contributions
        np.testing.assert_allclose(by_path, expected[i], rtol=1e-9, atol=1e-12)
        assert by_path.sum() == pytest.approx(margins[i], abs=1e-9)
        assert by_shap.sum() == pytest.approx(margins[i], abs=1e-9)
        np.testing.assert_allclose(by_shap, booster.predict(prepared[i : i + 1], pred_contrib=True)[0], atol=1e-12)
    assert any(not np.allclose(path.predict(r).contributions, shap.predict(r).contributions) for r in rows)
    with pytest.raises(ValueError, match="reasons must be one of"):
        Champion(candidate.estimator, "1", reasons="lime")
