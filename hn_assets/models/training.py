"""Purchase-intent candidates: baselines, LightGBM and XGBoost with a bounded search, isotonic
calibration on the validation window. Pure functions over a split training set."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
from sklearn.isotonic import IsotonicRegression
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
    """Model input: numeric features as float, categoricals with a fixed category list."""
    out = frame.select(features).to_pandas()
    for column in features:
        if column in CATEGORICAL:
            out[column] = pd.Categorical(out[column], categories=CATEGORIES[column])
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out


@dataclass
class Candidate:
    """A fitted scorer: raw model + isotonic calibrator fitted on validation scores."""

    name: str
    kind: str
    model: object
    features: list[str]
    params: dict = field(default_factory=dict)
    calibrator: IsotonicRegression | None = None
    valid_auc: float = float("nan")

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.features]
        if self.kind == "lightgbm":
            return self.model.predict(x, num_iteration=self.model.best_iteration)  # 0: all trees
        if self.kind == "xgboost":
            import xgboost as xgb

            best = self.params.get("rounds")
            return self.model.predict(
                xgb.DMatrix(x, enable_categorical=True), iteration_range=(0, best + 1) if best is not None else (0, 0)
            )
        if self.kind == "rule":
            return (x["cart_adds_so_far"].fillna(0) > 0).astype(float).to_numpy()
        return self.model.predict_proba(x.fillna(0))[:, 1]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.raw_scores(frame)
        return self.calibrator.predict(raw) if self.calibrator is not None else raw

    def calibrate(self, frame: pd.DataFrame, y: np.ndarray) -> Candidate:
        if len(np.unique(y)) < 2:  # a degenerate validation window: leave the scores uncalibrated
            return self
        raw = self.raw_scores(frame)
        self.valid_auc = float(roc_auc_score(y, raw))
        self.calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return self


def class_weight(y: np.ndarray) -> float:
    """Weight of a positive so both classes carry equal total weight."""
    positives = max(1, int(y.sum()))
    return (len(y) - positives) / positives


def rule_baseline() -> Candidate:
    return Candidate("rule_cart_add", "rule", None, ["cart_adds_so_far"])


def logistic_baseline(x: pd.DataFrame, y: np.ndarray) -> Candidate:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = list(BASIC_SESSION_FEATURES)
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=500))
    model.fit(x[features].fillna(0), y)
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


def lightgbm_candidates(xt, yt, xv, yv, features: list[str], budget: int, seed: int) -> list[Candidate]:
    import lightgbm as lgb

    out, can_stop = [], len(np.unique(yv)) == 2
    monotone = [1 if f in MONOTONE_UP else 0 for f in features]
    for i, trial in enumerate(_trials(LIGHTGBM_GRID, budget, seed)):
        params = {
            "objective": "binary",
            "metric": "auc",
            "verbosity": -1,
            "num_threads": 2,
            "seed": seed,
            "scale_pos_weight": class_weight(yt),
            "monotone_constraints": monotone,
            **trial,
        }
        categorical = [f for f in features if f in CATEGORICAL]
        train = lgb.Dataset(xt[features], yt, categorical_feature=categorical)
        valid = lgb.Dataset(xv[features], yv, categorical_feature=categorical, reference=train)
        booster = (
            lgb.train(
                params,
                train,
                num_boost_round=1000,
                valid_sets=[valid],
                callbacks=[lgb.early_stopping(50, verbose=False)],
            )
            if can_stop
            else lgb.train(params, train, num_boost_round=FIXED_ROUNDS)
        )
        out.append(
            Candidate(f"lightgbm_{i}", "lightgbm", booster, features, {**trial, "rounds": booster.best_iteration})
        )
    return out


def xgboost_candidates(xt, yt, xv, yv, features: list[str], budget: int, seed: int) -> list[Candidate]:
    import xgboost as xgb

    out, can_stop = [], len(np.unique(yv)) == 2
    monotone = "(" + ",".join("1" if f in MONOTONE_UP else "0" for f in features) + ")"
    train = xgb.DMatrix(xt[features], yt, enable_categorical=True)
    valid = xgb.DMatrix(xv[features], yv, enable_categorical=True)
    for i, trial in enumerate(_trials(XGBOOST_GRID, budget, seed + 1)):
        params = {
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "tree_method": "hist",
            "nthread": 2,
            "seed": seed,
            "scale_pos_weight": class_weight(yt),
            "monotone_constraints": monotone,
            **trial,
        }
        if can_stop:
            booster = xgb.train(
                params,
                train,
                num_boost_round=1000,
                evals=[(valid, "valid")],
                early_stopping_rounds=50,
                verbose_eval=False,
            )
            rounds = booster.best_iteration
        else:
            booster, rounds = xgb.train(params, train, num_boost_round=FIXED_ROUNDS), FIXED_ROUNDS - 1
        out.append(Candidate(f"xgboost_{i}", "xgboost", booster, features, {**trial, "rounds": rounds}))
    return out


@dataclass
class TrainingResult:
    candidates: list[Candidate]
    baselines: list[Candidate]
    best: Candidate


def train_all(
    frame: pl.DataFrame, budget: int = 4, seed: int = 42, features: list[str] | None = None
) -> TrainingResult:
    """Fit baselines and candidates on `train`, early-stop and calibrate on `valid`, pick by valid AUC.
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
    best = max(candidates, key=lambda c: -1.0 if np.isnan(c.valid_auc) else c.valid_auc)
    return TrainingResult(candidates, baselines, best)
