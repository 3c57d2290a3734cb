"""Purchase-intent candidates: baselines, LightGBM and XGBoost with a bounded search, isotonic
calibration on the validation window. Pure functions over a split training set.

Every candidate is one scikit-learn estimator over the *raw* model input (numbers as float, device
and channel as plain strings): `Pipeline(prepare, booster)` wrapped in
`CalibratedClassifierCV(FrozenEstimator(...), method="isotonic")` fitted on the validation window.
Only stock classes (scikit-learn, LightGBM, XGBoost) are inside, so the registered model is logged
with the `mlflow.sklearn` flavour and loads anywhere with the pinned packages, no platform code
(docs/models.md, "One model"). Rejected: a pyfunc wrapper around a pickled platform class (an old
champion would score with today's code, and device/channel as strings broke LightGBM's pandas
categories), and `mlflow.lightgbm` plus a separate calibrator (two artefacts that serving would have
to recombine with code of ours).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score

from hn_assets.contracts import CHANNELS, DEVICES
from hn_assets.contracts import PURCHASE_LABEL as LABEL

ID_COLUMNS = ("snapshot_key", "session_key", "user_id", "product_id", "event_timestamp", LABEL, "split")
CATEGORICAL = ("device", "channel")
BASIC_SESSION_FEATURES = (
    "events_so_far",
    "product_views_so_far",
    "cart_adds_so_far",
    "searches_so_far",
    "seconds_since_start",
)
# Adding an add-to-cart event (one more cart add, one more event) never lowers the score.
MONOTONE_UP = ("cart_adds_so_far", "events_so_far")
CATEGORIES = {"device": list(DEVICES), "channel": list(CHANNELS)}


def feature_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ID_COLUMNS]


def to_pandas(frame: pl.DataFrame, features: list[str]) -> pd.DataFrame:
    """The model input as serving sends it: numeric features as float64 (NaN when unknown),
    device and channel as plain strings. The model's own first step encodes the strings."""
    out = frame.select(features).to_pandas()
    for column in features:
        if column in CATEGORICAL:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out


def prepare_step(features: list[str]):
    """Strings -> fixed category codes (unknown or missing -> NaN), numbers passed through; pandas
    out, categorical columns first. A stock ColumnTransformer rather than pandas categoricals: the
    codes do not depend on which values a batch happens to contain."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    categorical = [f for f in features if f in CATEGORICAL]
    numeric = [f for f in features if f not in CATEGORICAL]
    steps = []
    if categorical:
        encoder = OrdinalEncoder(
            categories=[CATEGORIES[c] for c in categorical],
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
        )
        steps.append(("categories", encoder, categorical))
    steps.append(("numbers", "passthrough", numeric))
    return ColumnTransformer(steps, verbose_feature_names_out=False).set_output(transform="pandas")


def prepared_order(features: list[str]) -> list[str]:
    return [f for f in features if f in CATEGORICAL] + [f for f in features if f not in CATEGORICAL]


@dataclass
class Candidate:
    """A fitted scorer: `estimator.predict_proba(raw input)[:, 1]` is the calibrated probability."""

    name: str
    kind: str
    estimator: object
    features: list[str]
    params: dict = field(default_factory=dict)
    calibrated: bool = False
    valid_auc: float = float("nan")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[self.features])[:, 1]

    def calibrate(self, frame: pd.DataFrame, y: np.ndarray) -> Candidate:
        """Isotonic calibration of the frozen fitted estimator on the validation window; a
        degenerate window (one class) leaves the scores uncalibrated."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator

        if len(np.unique(y)) < 2:
            return self
        x = frame[self.features]
        self.valid_auc = float(roc_auc_score(y, self.estimator.predict_proba(x)[:, 1]))
        self.estimator = CalibratedClassifierCV(FrozenEstimator(self.estimator), method="isotonic").fit(x, y)
        self.calibrated = True
        return self


class CartAddRule(ClassifierMixin, BaseEstimator):
    """Baseline: 1 when the session has an add-to-cart so far, else 0 (calibrated like the others)."""

    def fit(self, x, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, x):
        hit = (pd.to_numeric(x["cart_adds_so_far"], errors="coerce").fillna(0) > 0).to_numpy(float)
        return np.column_stack([1 - hit, hit])

    def predict(self, x):
        return self.predict_proba(x)[:, 1].astype(int)


def class_weight(y: np.ndarray) -> float:
    """Weight of a positive so both classes carry equal total weight."""
    positives = max(1, int(y.sum()))
    return (len(y) - positives) / positives


def rule_baseline() -> Candidate:
    return Candidate("rule_cart_add", "rule", CartAddRule().fit(None), ["cart_adds_so_far"])


def logistic_baseline(x: pd.DataFrame, y: np.ndarray) -> Candidate:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = list(BASIC_SESSION_FEATURES)
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(class_weight="balanced", max_iter=500),
    )
    model.fit(x[features], y)
    return Candidate("logistic_regression", "logistic", model, features)


LIGHTGBM_GRID = {
    "num_leaves": [15, 31, 63],
    "learning_rate": [0.03, 0.06],
    "min_data_in_leaf": [50, 200],
    "feature_fraction": [0.8, 1.0],
}
XGBOOST_GRID = {"max_depth": [4, 6], "eta": [0.03, 0.06], "min_child_weight": [5, 20], "subsample": [0.8, 1.0]}


def _trials(grid: dict, budget: int, seed: int) -> list[dict]:
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return random.Random(seed).sample(combos, min(budget, len(combos)))


FIXED_ROUNDS = 200  # when the validation window has one class, no early stopping is possible


def _pipeline(prepare, model):
    from sklearn.pipeline import Pipeline

    return Pipeline([("prepare", prepare), ("model", model)])


def lightgbm_candidates(xt, yt, xv, yv, features: list[str], budget: int, seed: int) -> list[Candidate]:
    import lightgbm as lgb

    out, can_stop = [], len(np.unique(yv)) == 2
    prepare = prepare_step(features).fit(xt[features])
    pt, pv = prepare.transform(xt[features]), prepare.transform(xv[features])
    order = prepared_order(features)
    categorical = [f for f in order if f in CATEGORICAL]
    for i, trial in enumerate(_trials(LIGHTGBM_GRID, budget, seed)):
        model = lgb.LGBMClassifier(
            objective="binary",
            metric="auc",  # the only early-stopping metric (logloss, skewed by scale_pos_weight, stopped at round 1)
            n_estimators=1000 if can_stop else FIXED_ROUNDS,
            learning_rate=trial["learning_rate"],
            num_leaves=trial["num_leaves"],
            min_child_samples=trial["min_data_in_leaf"],
            colsample_bytree=trial["feature_fraction"],
            scale_pos_weight=class_weight(yt),
            monotone_constraints=[1 if f in MONOTONE_UP else 0 for f in order],
            n_jobs=2,
            random_state=seed,
            verbosity=-1,
        )
        fit = {"categorical_feature": categorical or "auto"}
        if can_stop:
            fit |= {
                "eval_X": (pv,),
                "eval_y": (yv,),
                "eval_metric": "auc",
                "callbacks": [lgb.early_stopping(50, verbose=False)],
            }
        model.fit(pt, yt, **fit)
        rounds = model.best_iteration_ or FIXED_ROUNDS
        out.append(
            Candidate(f"lightgbm_{i}", "lightgbm", _pipeline(prepare, model), features, {**trial, "rounds": rounds})
        )
    return out


def xgboost_candidates(xt, yt, xv, yv, features: list[str], budget: int, seed: int) -> list[Candidate]:
    import xgboost as xgb

    out, can_stop = [], len(np.unique(yv)) == 2
    prepare = prepare_step(features).fit(xt[features])
    pt, pv = prepare.transform(xt[features]), prepare.transform(xv[features])
    order = prepared_order(features)
    for i, trial in enumerate(_trials(XGBOOST_GRID, budget, seed + 1)):
        model = xgb.XGBClassifier(
            n_estimators=1000 if can_stop else FIXED_ROUNDS,
            max_depth=trial["max_depth"],
            learning_rate=trial["eta"],
            min_child_weight=trial["min_child_weight"],
            subsample=trial["subsample"],
            tree_method="hist",
            enable_categorical=True,
            feature_types=["c" if f in CATEGORICAL else "q" for f in order],
            max_cat_to_onehot=1,
            eval_metric="auc",
            early_stopping_rounds=50 if can_stop else None,
            scale_pos_weight=class_weight(yt),
            monotone_constraints="(" + ",".join("1" if f in MONOTONE_UP else "0" for f in order) + ")",
            n_jobs=2,
            random_state=seed,
        )
        model.fit(pt, yt, eval_set=[(pv, yv)] if can_stop else None, verbose=False)
        rounds = int(getattr(model, "best_iteration", FIXED_ROUNDS - 1) or 0) if can_stop else FIXED_ROUNDS - 1
        out.append(
            Candidate(f"xgboost_{i}", "xgboost", _pipeline(prepare, model), features, {**trial, "rounds": rounds})
        )
    return out


@dataclass
class TrainingResult:
    candidates: list[Candidate]
    baselines: list[Candidate]
    best: Candidate
    behaviour: dict[str, bool] = field(default_factory=dict)  # candidate -> passed on the validation window


def choose(candidates: list[Candidate], valid: pl.DataFrame) -> tuple[Candidate, dict[str, bool]]:
    """The best validation ROC-AUC among the candidates that pass the behavioural tests on the
    validation window (unconstrained trees can learn a signal backwards); if none passes, the best
    overall (the gate will then refuse it). Rejected: choosing by AUC alone and letting the gate
    refuse a model a close runner-up would have passed."""
    from hn_assets.models.behaviour import behaviour_tests

    passed = {c.name: all(t["passed"] for t in behaviour_tests(c, valid).values()) for c in candidates}
    pool = [c for c in candidates if passed[c.name]] or candidates
    return max(pool, key=lambda c: -1.0 if np.isnan(c.valid_auc) else c.valid_auc), passed


def train_all(
    frame: pl.DataFrame, budget: int = 4, seed: int = 42, features: list[str] | None = None
) -> TrainingResult:
    """Fit baselines and candidates on `train`, early-stop and calibrate on `valid`, pick by valid AUC
    among those that behave (`choose`).
    `features`: the candidates' inputs (default: every feature column; a subset is an ablation)."""
    features = features or feature_columns(frame)
    parts = {s: frame.filter(pl.col("split") == s) for s in ("train", "valid")}
    inputs = list(dict.fromkeys([*features, *BASIC_SESSION_FEATURES]))  # the logistic baseline's too
    xt, xv = to_pandas(parts["train"], inputs), to_pandas(parts["valid"], inputs)
    yt, yv = (parts[s][LABEL].cast(pl.Int8).to_numpy() for s in ("train", "valid"))
    baselines = [rule_baseline(), logistic_baseline(xt, yt)]
    candidates = lightgbm_candidates(xt, yt, xv, yv, features, budget, seed) + xgboost_candidates(
        xt, yt, xv, yv, features, budget, seed
    )
    for model in baselines + candidates:
        model.calibrate(xv, yv)
    best, passed = choose(candidates, parts["valid"])
    return TrainingResult(candidates, baselines, best, passed)
