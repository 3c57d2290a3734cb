"""The champion at serving speed: the registered model's own parts, applied to one NumPy row.

The registered model is `CalibratedClassifierCV(FrozenEstimator(Pipeline(prepare, booster)),
method="isotonic")` (models/training.py), or the bare Pipeline when the validation window had one
class. Scoring one row through its `predict_proba` builds pandas frames (~2 ms, p99 ~16 ms:
STACK_NOTES), so `Champion` takes the same fitted parts out of the loaded model and applies them
exactly as scikit-learn does, bit for bit:
- `prepare`: the fitted OrdinalEncoder's categories (device, channel; unknown/missing -> NaN),
  categorical columns first, then the numbers (ColumnTransformer stores "passthrough" as an
  identity FunctionTransformer);
- per calibrated member (`calibrated_classifiers_`: one with FrozenEstimator, `ensemble="auto"`;
  n with cv/ensemble, averaged as `CalibratedClassifierCV.predict_proba` averages them) the value
  CalibratedClassifierCV feeds its calibrator: `decision_function` when the booster has one
  (LightGBM >= 4.7: the raw margin), else `predict_proba[:, 1]` (XGBoost: float32);
- LightGBM through its C API single-row fast path at the iterations `Booster.predict` uses
  (best_iteration, else all; `lgb.train` keeps only the best iteration's trees anyway), one thread;
  XGBoost through `inplace_predict` at `iteration_range=(0, best_iteration + 1)` (what
  XGBClassifier.predict_proba uses: an early-stopped booster keeps every round), one thread;
- the calibrator as `IsotonicRegression.predict` computes it: cast to the thresholds' dtype,
  clipped to [X_min_, X_max_], then scipy's interp1d, which is `np.interp` for float64 thresholds
  and its own arithmetic for float32 ones (then the fitted `f_` itself is called); the
  `1 < p <= 1 + 1e-5 -> 1` rule of `_CalibratedClassifier`.
The previous fast path scored XGBoost with every boosted round (not best_iteration + 1) and
calibrated a float64 sigmoid of the margin instead of the float32 probability the isotonic was
fitted on: equal on a LightGBM champion, not on an XGBoost one.
Anything else (another booster, calibration method or preparation step) raises `Unsupported` and
the champion scores through the registered model's own `predict_proba` (slow, exact: `fast`
False, `why_slow`). At load, `check_champion` holds the fast path equal to `predict_proba` on the
model's MLflow input example plus edge rows and falls back on any difference.
`tests/unit/test_serving_champion.py` trains small LightGBM and XGBoost champions with the training
code, saves and loads them through MLflow, and holds every score equal (`np.array_equal`), as
`tests/integration/test_scoring_service.py` does for the store's real champion. Reasons are the
first member's per-feature contributions to the log-odds: path contributions by default
(`PathContributions`), TreeSHAP values (`pred_contrib` / `pred_contribs`) with reasons="shap".

The discount decision uses the uplift model of the champion's training run (an X-learner on
LightGBM, models/uplift.py): its boosters mu0, tau0, tau1 on the pre-treatment covariates give p0
and p1 (memoised per covariate vector), and `models.policy` with the model's own cutoff decides.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CATEGORICAL = ("device", "channel")
MLFLOW_DIR, UPLIFT_FILE, PRIORS_FILE, META_FILE = "mlflow_model", "uplift.pkl", "priors.json", "meta.json"


@dataclass
class Score:
    raw: float  # the booster's uncalibrated probability
    probability: float
    contributions: np.ndarray | None


class FastLightGBM:
    """LightGBM's C API single-row fast path (`LGBM_BoosterPredictForMatSingleRowFast`): the
    prediction setup is made once, so a row costs the tree walk, not `Booster.predict`'s per-call
    checks and copies (~10-30 µs instead of ~50-200 µs). One thread; not thread-safe per handle
    (the service scores on its event loop)."""

    NORMAL, RAW, LEAF, CONTRIB = 0, 1, 2, 3  # C_API_PREDICT_NORMAL, _RAW_SCORE, _LEAF_INDEX, _CONTRIB

    def __init__(self, booster, ncol: int, kinds: tuple[int, ...] = (1, 3), iterations: int | None = None):
        import ctypes

        from lightgbm.basic import _LIB, _safe_call

        self._ct, self._lib, self._safe = ctypes, _LIB, _safe_call
        self.ncol = ncol
        if not iterations or iterations <= 0:  # as LightGBM's predict: the best iteration, else all
            iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        self._handles = {}
        for kind in kinds:
            handle = ctypes.c_void_p()
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    booster._handle,
                    ctypes.c_int(kind),
                    ctypes.c_int(0),
                    ctypes.c_int(iterations),
                    ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                    ctypes.c_int32(ncol),
                    ctypes.c_char_p(b"num_threads=1"),
                    ctypes.byref(handle),
                )
            )
            self._handles[kind] = handle
        # Fixed buffers with their C pointers made once: per call only the row is copied in
        # (numpy's `ctypes.data_as` costs ~10 µs a call, more than the tree walk).
        self._x = np.zeros((1, ncol), dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._out_len_ref = ctypes.byref(self._out_len)
        self._raw_out = np.zeros(1, dtype=np.float64)
        self._normal_out = np.zeros(1, dtype=np.float64)
        self._contrib_out = np.zeros(ncol + 1, dtype=np.float64)
        self.trees = booster.num_trees() if iterations < 0 else min(iterations, booster.num_trees())
        self._leaf_out = np.zeros(self.trees, dtype=np.float64)  # one leaf index per tree, as doubles
        self._x_ptr = ctypes.c_void_p(self._x.ctypes.data)
        dptr = ctypes.POINTER(ctypes.c_double)
        outs = (self._raw_out, self._normal_out, self._contrib_out, self._leaf_out)
        self._out_ptr = {id(a): a.ctypes.data_as(dptr) for a in outs}
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast

    def _run(self, kind: int, row: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.copyto(self._x, row.reshape(1, -1), casting="same_kind")
        if self._call(self._handles[kind], self._x_ptr, self._out_len_ref, self._out_ptr[id(out)]) != 0:
            self._safe(-1)  # raises LightGBMError with LightGBM's last error message
        return out

    def margin(self, row: np.ndarray) -> float:
        return float(self._run(self.RAW, row, self._raw_out)[0])

    def output(self, row: np.ndarray) -> float:
        """The transformed prediction (what `Booster.predict` returns by default)."""
        return float(self._run(self.NORMAL, row, self._normal_out)[0])

    def contributions(self, row: np.ndarray) -> np.ndarray:
        return self._run(self.CONTRIB, row, self._contrib_out).copy()

    def leaves(self, row: np.ndarray) -> np.ndarray:
        """The leaf each tree sends the row to (`Booster.predict(pred_leaf=True)`), as doubles."""
        return self._run(self.LEAF, row, self._leaf_out)

    def __del__(self):
        for handle in getattr(self, "_handles", {}).values():
            try:  # noqa: SIM105 - at interpreter shutdown contextlib may be gone already
                self._lib.LGBM_FastConfigFree(handle)
            except Exception:  # noqa: BLE001
                pass


REASON_METHODS = ("path", "shap")  # HN_SERVING_REASONS: how /score computes its reasons


class PathContributions:
    """The path contributions of a row (Saabas; XGBoost's `approx_contribs`): along each tree's
    decision path every split's feature is credited with the change in the expected output from
    the node to the child the row takes, and the root's expected output is the bias. Summed over
    the trees, the contributions plus the bias are the row's raw margin, as SHAP values are.

    A leaf fixes its path, so each leaf's contribution vector is tabulated once at load from the
    booster's own dump (`internal_value`, `leaf_value`): a row then costs LightGBM's leaf-index
    prediction and one gather-sum, ~15 µs against ~380 µs for TreeSHAP (`pred_contrib`, O(T·L·D²))
    on the demo champion (151 trees of 15 leaves): TreeSHAP alone was half of a request's CPU.
    Rejected: memoising TreeSHAP per row (the request-time features make nearly every row new);
    hand-written fast TreeSHAP variants. TreeSHAP stays available (`HN_SERVING_REASONS=shap`), and
    the top reasons of the two are compared on the champion's own rows (docs/serving.md)."""

    def __init__(self, booster, trees: int, ncol: int):
        offsets, rows, values = [], [], []
        for tree in booster.dump_model(num_iteration=trees)["tree_info"][:trees]:
            offsets.append(len(rows))
            leaves: dict[int, tuple[np.ndarray, float]] = {}
            self._walk(tree["tree_structure"], np.zeros(ncol + 1), True, leaves)
            for i in range(len(leaves)):
                rows.append(leaves[i][0])
                values.append(leaves[i][1])
        self.table = np.array(rows, dtype=np.float64)  # (all leaves, ncol + bias)
        self.leaf_values = np.array(values, dtype=np.float64)
        self.offsets = np.array(offsets, dtype=np.intp)

    @classmethod
    def _walk(cls, node: dict, acc: np.ndarray, root: bool, leaves: dict) -> None:
        value = node["leaf_value"] if "leaf_index" in node else node["internal_value"]
        if root:
            acc = acc.copy()
            acc[-1] = value  # the tree's expected output
        if "leaf_index" in node:
            leaves[int(node["leaf_index"])] = (acc, float(value))
            return
        for side in ("left_child", "right_child"):
            child = node[side]
            step = acc.copy()
            step[int(node["split_feature"])] += (
                child["leaf_value"] if "leaf_index" in child else child["internal_value"]
            ) - value
            cls._walk(child, step, False, leaves)

    def __call__(self, leaves: np.ndarray) -> np.ndarray:
        """Contributions (ncol + bias) from the leaf index of each tree."""
        return self.table[self.offsets + leaves.astype(np.intp)].sum(axis=0)

    def margin(self, leaves: np.ndarray) -> float:
        """The raw margin from the same leaves, summed tree after tree from 0 as LightGBM's
        PredictRaw does (`np.add.accumulate` is sequential), so it is the booster's margin bit for
        bit; the load-time check (`check_champion`) holds it to that."""
        return float(np.add.accumulate(self.leaf_values[self.offsets + leaves.astype(np.intp)])[-1])


class Unsupported(ValueError):
    """A registered model whose parts the fast path cannot apply exactly (it then scores through
    the registered model's own `predict_proba`)."""


def _unwrap(estimator):
    """FrozenEstimator(Pipeline) -> Pipeline."""
    from sklearn.frozen import FrozenEstimator

    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def _layout(prepare) -> tuple[list[str], dict]:
    """The booster's input order and the category codes, from the fitted ColumnTransformer."""
    order, codes = [], {}
    for name, transformer, columns in prepare.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        if transformer == "drop":
            continue
        if hasattr(transformer, "categories_"):
            if getattr(transformer, "handle_unknown", None) != "use_encoded_value" or not (
                _isnan(transformer.unknown_value) and _isnan(getattr(transformer, "encoded_missing_value", math.nan))
            ):
                raise Unsupported("OrdinalEncoder must map unknown and missing values to NaN")
            for column, categories in zip(columns, transformer.categories_):
                codes[column] = {str(v): float(i) for i, v in enumerate(categories)}
        elif transformer != "passthrough" and not (
            type(transformer).__name__ == "FunctionTransformer" and transformer.func is None
        ):  # ColumnTransformer stores "passthrough" as an identity FunctionTransformer
            raise Unsupported(f"unsupported preparation step {name}: {type(transformer).__name__}")
        order.extend(columns)
    return order, codes


def _isnan(value) -> bool:
    try:
        return math.isnan(value)
    except TypeError:
        return False


class _Calibrator:
    """One fitted calibrator applied to one value exactly as `calibrator.predict` would:
    IsotonicRegression casts to its thresholds' dtype, clips to [X_min_, X_max_] and evaluates
    scipy's interp1d, which delegates to `np.interp` for float64 thresholds (the LightGBM case:
    margins are float64) and uses its own arithmetic for float32 (XGBoost's float32
    probabilities): then the fitted `f_` itself is called. Anything else: its own `predict`."""

    def __init__(self, calibrator):
        from sklearn.isotonic import IsotonicRegression

        self.calibrator = calibrator
        self.isotonic = isinstance(calibrator, IsotonicRegression)
        self.fast = False
        if self.isotonic:
            self.dtype = calibrator.X_thresholds_.dtype
            self.clip = calibrator.out_of_bounds == "clip"
            self.lo, self.hi = calibrator.X_min_, calibrator.X_max_
            self._f = calibrator.f_
            x, y = calibrator.X_thresholds_, calibrator.y_thresholds_
            self.fast = self.clip and x.dtype == np.float64 and y.dtype == np.float64 and len(y) > 1
            if self.fast:
                self._x, self._y = x, y
                self._lo, self._hi = float(self.lo), float(self.hi)

    def __call__(self, value: float) -> float:
        if self.fast:  # == interp1d._call_linear_np(np.clip(T, X_min_, X_max_))
            return float(np.interp(min(max(value, self._lo), self._hi), self._x, self._y))
        if self.isotonic:
            t = np.asarray([value], dtype=self.dtype)
            if self.clip:
                t = np.clip(t, self.lo, self.hi)
            return float(np.asarray(self._f(t)).astype(t.dtype)[0])
        return float(self.calibrator.predict(np.asarray([value]))[0])


class _Booster:
    """One fitted booster of the registered model on a prepared row: the value its scikit-learn
    wrapper hands the calibrator (`decision_function` when it has one, as CalibratedClassifierCV
    chooses, else `predict_proba[:, 1]`), at the iterations its `predict` uses."""

    def __init__(self, model, ncol: int, order: list[str], margin: bool, reasons: str = "path"):
        if reasons not in REASON_METHODS:
            raise ValueError(f"reasons must be one of {REASON_METHODS}, not {reasons!r}")
        self.margin_response, self.reasons, self._path = margin, reasons, None
        if hasattr(model, "booster_") and type(model).__module__.startswith("lightgbm"):
            self.kind = "lightgbm"
            if getattr(model, "objective_", "binary") not in ("binary", "cross_entropy", "xentropy"):
                raise Unsupported(f"LightGBM objective {model.objective_!r}")
            booster = model.booster_
            # Booster.predict(num_iteration=None): best_iteration when > 0, else every tree.
            iterations = booster.best_iteration if booster.best_iteration > 0 else -1
            explain = FastLightGBM.LEAF if reasons == "path" else FastLightGBM.CONTRIB
            kinds = (FastLightGBM.RAW if margin else FastLightGBM.NORMAL, FastLightGBM.RAW, explain)
            self._fast = FastLightGBM(booster, ncol, tuple(dict.fromkeys(kinds)), iterations=iterations)
            self._path = PathContributions(booster, self._fast.trees, ncol) if reasons == "path" else None
        elif type(model).__module__.startswith("xgboost") and hasattr(model, "get_booster"):
            self.kind = "xgboost"
            if margin:
                raise Unsupported("XGBoost calibrated on a margin")
            if getattr(model, "objective", "binary:logistic") not in (None, "binary:logistic"):
                raise Unsupported(f"XGBoost objective {model.objective!r}")
            if getattr(model, "booster", None) == "gblinear":
                raise Unsupported("XGBoost gblinear")
            self._booster = model.get_booster()
            self._booster.set_param({"nthread": 1})
            self._range = model._get_iteration_range(None)  # best_iteration + 1 when early-stopped
            self._missing = model.missing
            self._order = order
        else:
            raise Unsupported(f"booster {type(model).__name__}")

    @property
    def walks_leaves(self) -> bool:
        """Path reasons: one leaf-index walk gives both the margin and the contributions."""
        return self.kind == "lightgbm" and self._path is not None

    def leaves(self, x: np.ndarray) -> np.ndarray:
        return self._fast.leaves(x).copy()

    def response(self, x: np.ndarray, leaves: np.ndarray | None = None) -> tuple[float, float]:
        """(the calibrator's input, the uncalibrated probability); `leaves`: x's leaves, when known."""
        if self.kind == "lightgbm":
            if self.margin_response:
                margin = self._path.margin(leaves) if leaves is not None else self._fast.margin(x)
                return margin, 1.0 / (1.0 + math.exp(-margin))
            p = self._fast.output(x)
            return p, p
        p = self._booster.inplace_predict(
            x, iteration_range=self._range, predict_type="value", missing=self._missing, validate_features=False
        )
        value = p.reshape(-1)[0]  # float32, as XGBClassifier.predict_proba gives it
        return value, float(value)

    def contributions(self, x: np.ndarray, leaves: np.ndarray | None = None) -> np.ndarray:
        """Per-feature contributions to the margin, bias last: path (Saabas) or TreeSHAP values."""
        if self.kind == "lightgbm":
            if self._path is None:
                return self._fast.contributions(x)
            return self._path(leaves if leaves is not None else self._fast.leaves(x))
        import xgboost as xgb

        dm = xgb.DMatrix(
            x, feature_names=self._order, feature_types=self._booster.feature_types, enable_categorical=True
        )
        approx = self.reasons == "path"  # XGBoost's approx_contribs is the path (Saabas) attribution
        return self._booster.predict(dm, pred_contribs=True, approx_contribs=approx, iteration_range=self._range)[0]


class Champion:
    """Fast single-row scoring with the registered model's fitted parts (module docstring), or
    the registered model itself when its parts are of a kind the fast path does not cover
    (`fast` False, `why_slow` says why). `verify` holds the two equal on given rows; the model
    loader runs it on the model's input example at start-up and falls back on any difference."""

    def __init__(self, registered, version: str | None = None, reasons: str = "path"):
        self.registered = registered
        self.version, self.reasons_method = version, reasons
        self.features: list[str] = [str(f) for f in registered.feature_names_in_]
        self.fast, self.why_slow = True, None
        self.kind = "registered"
        try:
            self._build(registered)
        except Unsupported as exc:
            self.fast, self.why_slow = False, str(exc)
            self.order, self._codes, self._position = list(self.features), {}, {}

    def _build(self, registered) -> None:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.pipeline import Pipeline
        from sklearn.utils.validation import _check_response_method

        if isinstance(registered, CalibratedClassifierCV):
            if list(registered.classes_) != [0, 1]:
                raise Unsupported(f"classes {list(registered.classes_)}")
            parts = []
            for member in registered.calibrated_classifiers_:
                if member.method not in ("isotonic", "sigmoid") or len(member.calibrators) != 1:
                    raise Unsupported(f"calibration {member.method} with {len(member.calibrators)} calibrators")
                method = _check_response_method(member.estimator, ["decision_function", "predict_proba"]).__name__
                parts.append((_unwrap(member.estimator), _Calibrator(member.calibrators[0]), method))
        elif isinstance(registered, Pipeline):
            parts = [(registered, None, "predict_proba")]
        else:
            raise Unsupported(f"registered model {type(registered).__name__}")
        layout = None
        self._members = []
        for pipeline, calibrator, method in parts:
            if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["prepare", "model"]:
                raise Unsupported("expected Pipeline(prepare, model)")
            this = _layout(pipeline.named_steps["prepare"])
            if layout is not None and this != layout:
                raise Unsupported("calibrated members prepare their input differently")
            layout = this
            booster = _Booster(
                pipeline.named_steps["model"], len(this[0]), this[0], method == "decision_function", self.reasons_method
            )
            self._members.append((booster, calibrator))
        self.order, self._codes = layout
        if sorted(self.order) != sorted(self.features):
            raise Unsupported("the prepared columns are not the model's input columns")
        self._position = {f: i for i, f in enumerate(self.order)}
        self.kind = self._members[0][0].kind
        self.calibrates_margin = self._members[0][0].margin_response

    def row(self, features: dict) -> np.ndarray:
        """The booster's input row from raw feature values (numbers, bools, device/channel text),
        as the registered model's `prepare` step makes it from `training.to_pandas`."""
        codes, nan, get = self._codes, math.nan, features.get
        values = []
        for name in self.order:
            value = get(name)
            if value is None:
                values.append(nan)
            elif name in codes:
                values.append(codes[name].get(value, nan) if isinstance(value, str) else nan)
            else:
                try:
                    values.append(float(value))
                except (TypeError, ValueError):
                    values.append(nan)  # pd.to_numeric(errors="coerce")
        return np.array([values], dtype=np.float64)

    def predict(self, features: dict, contributions: bool = True) -> Score:
        if not self.fast:
            return Score(math.nan, self._registered_one(features), None)
        x = self.row(features)
        first = self._members[0][0]
        leaves = first.leaves(x) if first.walks_leaves else None
        total, raw0, n = 0.0, None, len(self._members)
        for booster, calibrator in self._members:
            value, raw = booster.response(x, leaves if booster is first else None)
            if raw0 is None:
                raw0 = raw
            p = float(value) if calibrator is None else calibrator(value)
            if 1.0 < p <= 1.0 + 1e-5:  # _CalibratedClassifier.predict_proba
                p = 1.0
            total += p
        probability = total / n if n > 1 else total
        contrib = first.contributions(x, leaves) if contributions else None
        return Score(raw0, probability, contrib)

    def _registered_one(self, features: dict) -> float:
        import pandas as pd

        from hn_assets.models.training import CATEGORICAL

        data = {}
        for name in self.features:
            value = features.get(name)
            if name in CATEGORICAL:
                data[name] = [value if isinstance(value, str) else None]
            else:
                data[name] = [float(pd.to_numeric(value, errors="coerce")) if value is not None else math.nan]
        frame = pd.DataFrame(data, columns=self.features)
        for name in self.features:
            if name in CATEGORICAL:
                frame[name] = frame[name].astype(object)
        return float(self.registered.predict_proba(frame)[:, 1][0])

    def verify(self, frame) -> bool:
        """Fast path == registered `predict_proba` on every row of `frame` (pandas, the model's
        input columns as `training.to_pandas` makes them), bit for bit."""
        if not self.fast:
            return True
        reference = self.predict_frame(frame)
        rows = frame[self.features].to_dict("records")
        mine = np.array([self.predict(_none_for_nan(r), contributions=False).probability for r in rows])
        return bool(np.array_equal(mine, reference))

    def reasons(self, score: Score, features: dict, top: int = 3) -> list[dict]:
        """The `top` features by absolute contribution (the last column is the bias)."""
        if score.contributions is None:
            return []
        contrib = score.contributions[: len(self.order)]
        best = np.argsort(-np.abs(contrib), kind="stable")[:top]
        return [
            {"feature": self.order[i], "value": _plain(features.get(self.order[i])), "contribution": float(contrib[i])}
            for i in best
        ]

    def predict_frame(self, frame) -> np.ndarray:
        """The registered model's own answer (reference for tests): predict_proba[:, 1]."""
        return self.registered.predict_proba(frame[self.features])[:, 1]


def _none_for_nan(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _plain(value):
    if value is None or isinstance(value, str | bool | int):
        return value
    value = float(value)
    return None if math.isnan(value) else value


class Uplift:
    """p0 and p1 from the champion run's X-learner, on one session's pre-treatment covariates."""

    def __init__(self, xlearner):
        self.model = xlearner
        self.categories = {c: {v: float(i) for i, v in enumerate(vals)} for c, vals in xlearner.categories.items()}
        boosters = {arm: m.booster_ for arm, m in xlearner.models.items()}
        self.columns = list(boosters["mu0"].feature_name())
        # mu1 only trains tau0 (the X-learner's imputed effects); p0 and p1 need mu0, tau0, tau1.
        self._boosters = {
            arm: FastLightGBM(boosters[arm], len(self.columns), (FastLightGBM.NORMAL,))
            for arm in ("mu0", "tau0", "tau1")
        }
        # p0, p1 are a pure function of the covariates, which are pre-treatment (fixed for a
        # session but for days_since_last_purchase): memoised per distinct covariate vector.
        self._memo: dict[tuple, tuple[float, float]] = {}
        self.propensity = float(xlearner.propensity)
        policy = getattr(xlearner, "policy", None)
        self.margin = float(policy.margin) if policy else 225.0
        self.discount = float(policy.discount) if policy else 90.0
        self.cutoff = float(getattr(xlearner, "offer_cutoff", 0.0))

    def row(self, covariates: dict) -> np.ndarray:
        out = np.empty((1, len(self.columns)), dtype=np.float64)
        for i, name in enumerate(self.columns):
            value = covariates.get(name)
            if name in self.categories:
                out[0, i] = self.categories[name].get(value, math.nan) if value is not None else math.nan
            else:
                out[0, i] = math.nan if value is None else float(value)
        return out

    def p0_p1(self, covariates: dict) -> tuple[float, float]:
        """As XLearner.predict: p0 = clip(mu0), p1 = clip(p0 + e*tau0 + (1-e)*tau1)."""
        key = tuple(covariates.get(name) for name in self.columns)
        found = self._memo.get(key)
        if found is not None:
            return found
        x = self.row(covariates)
        b = self._boosters
        p0 = min(max(b["mu0"].output(x), 1e-6), 1 - 1e-6)
        e = self.propensity
        tau = e * b["tau0"].output(x) + (1 - e) * b["tau1"].output(x)
        found = (p0, min(max(p0 + tau, 0.0), 1.0))
        if len(self._memo) >= 100_000:
            self._memo.clear()
        self._memo[key] = found
        return found


@dataclass
class LoadedModel:
    champion: Champion
    uplift: Uplift | None
    priors: dict
    meta: dict


def load_model_dir(path: Path, reasons: str = "path") -> LoadedModel:
    """A model folder as `bento.import_champion` writes it into the BentoML model store; `reasons`:
    one of REASON_METHODS (PathContributions says why "path" is the default)."""
    import mlflow.sklearn

    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    registered = mlflow.sklearn.load_model(str(path / MLFLOW_DIR))
    champion = Champion(registered, str(meta.get("mlflow_version")), reasons)
    check_champion(champion, path / MLFLOW_DIR / "input_example.json")
    uplift = None
    if (path / UPLIFT_FILE).exists():
        uplift = Uplift(pickle.loads((path / UPLIFT_FILE).read_bytes()))
    priors = json.loads((path / PRIORS_FILE).read_text()) if (path / PRIORS_FILE).exists() else {}
    return LoadedModel(champion, uplift, priors, meta)


def check_rows(champion: Champion, example: Path | None = None):
    """Rows to hold the fast path equal to the registered model on at load: the MLflow input
    example (real training rows), an all-missing row and, per categorical column, every category
    and an unknown value on the example's first row."""
    import pandas as pd

    from hn_assets.models.training import CATEGORICAL

    base = {f: (None if f in CATEGORICAL else math.nan) for f in champion.features}
    rows = [dict(base)]
    if example is not None and Path(example).exists():
        spec = json.loads(Path(example).read_text())
        for values in spec.get("data", []):
            row = dict(zip(spec.get("columns", []), values))
            rows.append({f: row.get(f, base[f]) for f in champion.features})
    first = rows[-1]
    for column, codes in champion._codes.items():
        for value in [*codes, "no-such-category"]:
            rows.append({**first, column: value})
    frame = pd.DataFrame(rows, columns=champion.features)
    for f in champion.features:
        if f in CATEGORICAL:
            frame[f] = frame[f].astype(object).where(frame[f].notna(), None)
        else:
            frame[f] = pd.to_numeric(frame[f], errors="coerce").astype("float64")
    return frame


def check_champion(champion: Champion, example: Path | None = None) -> None:
    """Fall back to the registered model's own predict_proba (slow, exact) if the fast path is
    not bit-for-bit equal to it on `check_rows` (a model kind or version the fast path gets wrong
    must cost speed, never correctness)."""
    import logging

    if not champion.fast:
        logging.getLogger("hn.serving").warning("champion scored through predict_proba: %s", champion.why_slow)
        return
    try:
        same = champion.verify(check_rows(champion, example))
    except Exception as exc:  # noqa: BLE001
        same, champion.why_slow = False, f"fast path failed its check: {exc!r}"[:300]
    if not same:
        champion.fast = False
        champion.why_slow = champion.why_slow or "fast path differs from predict_proba on the check rows"
        logging.getLogger("hn.serving").warning("champion scored through predict_proba: %s", champion.why_slow)


def segment_priors(training_rows, label: str = "purchased") -> dict:
    """The fallback: the purchase rate of the training rows overall and per device (a polars frame
    with `device` and the label). Documented in service.py: what `/score` answers without a model."""
    import polars as pl

    frame = training_rows.select(pl.col("device"), pl.col(label).cast(pl.Float64))
    overall = float(frame[label].mean() or 0.0)
    by_device = {
        str(r["device"]): float(r[label])
        for r in frame.group_by("device").agg(pl.col(label).mean()).to_dicts()
        if r["device"]
    }
    return {"overall": overall, "device": by_device, "rows": frame.height}
