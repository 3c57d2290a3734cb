"""The discount's uplift, estimated from the store's randomised offers, and the policy built on it.

The store's current policy shows a discount to a random 10 % of sessions: the session opens on an
`offer` page (a `page_view` with `page_type = 'offer'` in the clickstream; hn_assets/simulator/
behaviour.py). Because the assignment is random, the difference in purchase rates is an unbiased
average effect, and a model of how the effect varies between sessions can be trained and checked on
that data alone.

Estimator: an **X-learner on LightGBM** (Künzel et al. 2019). The outcome models mu0 (no offer) and
mu1 (offer) are fitted per arm; each arm's imputed effects (treated: y - mu0(x), control: mu1(x) - y)
are regressed on x; the two effect models are blended by the propensity e: tau = e*tau0 + (1-e)*tau1.
Chosen because the arms are 10/90: tau1 rests on the treated sessions but borrows the well-estimated
control model. Rejected: the T-learner alone (mu1 - mu0 from 10 % of the data is noisy; it is still
reported beside it) and a causal forest (no maintained implementation in this environment).

Covariates are *pre-treatment* only: what is known when the offer would be shown, at the session's
first event (device, channel, local hour, weekend, country, the visitor's history). In-session counts
and the first product are excluded: an offered session opens on the offer page, so they are affected
by the treatment itself.

The estimate is judged on the test window with data only: the Qini coefficient and AUUC of the
predicted uplift, an AIPW (doubly robust) average effect with a normal interval, and an IPW estimate
of each policy's value. `truth_check` additionally compares with the simulator's ground truth, and
is only called by the evaluation when that file exists (never by training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from hn_assets.contracts import PURCHASE_LABEL as LABEL

OFFER_PAGE = "offer"
# Sessions that saw an offer page: silver events (gold has no page types), read once by the uplift asset.
OFFERED_SESSIONS_SQL = f"""
select distinct sessionised.session_key
from silver.stg_clickstream_events as events
inner join silver.int_events_sessionised as sessionised using (event_id)
where events.event_type = 'page_view' and events.page_type = '{OFFER_PAGE}'
"""
PRE_TREATMENT = (
    "device",
    "channel",
    "country",
    "local_hour",
    "is_weekend",
    "lifetime_purchase_count",
    "avg_order_value_90d",
    "days_since_last_purchase",
    "sessions_last_30d",
)
TEXT = ("device", "channel", "country")
# The depths of targeting the policy chooses from: offer to the top 0 %, 10 %, ..., 100 % by estimated gain.
TARGETED_SHARES = tuple(i / 10 for i in range(11))


@dataclass
class PolicyConfig:
    margin_share: float = 0.25  # margin as a share of the basket value
    discount_share: float = 0.10  # the offer: 10 % off
    basket_value: float = 900.0  # EUR, a typical laptop basket

    @property
    def margin(self) -> float:
        return self.margin_share * self.basket_value

    @property
    def discount(self) -> float:
        return self.discount_share * self.basket_value


def session_table(frame: pl.DataFrame, sessions: pl.DataFrame, offered: pl.DataFrame) -> pl.DataFrame:
    """One row per split session: its side, treatment (saw an offer page), outcome, pre-treatment
    covariates from its first snapshot, and `client_session_id` (for the optional truth check).
    `sessions`: fct_sessions columns session_key, client_session_id, country; `offered`: session_key."""
    present = [c for c in PRE_TREATMENT if c in frame.columns and c != "country"]
    first = (
        frame.sort("event_timestamp")
        .group_by("session_key", maintain_order=True)
        .agg(pl.col("split").first(), pl.col(LABEL).first(), *(pl.col(c).first() for c in present))
    )
    treated = offered.select("session_key").unique().with_columns(pl.lit(True).alias("treated"))
    return (
        first.join(sessions.select("session_key", "client_session_id", "country"), on="session_key", how="left")
        .join(treated, on="session_key", how="left")
        .with_columns(pl.col("treated").fill_null(False), pl.col(LABEL).cast(pl.Int8))
        .sort("session_key")
    )


def covariates(table: pl.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Pre-treatment covariates as LightGBM input: text as fixed integer codes (unknown: NaN)."""
    out = {}
    for column in PRE_TREATMENT:
        if column not in table.columns:
            continue
        values = table[column]
        if column in TEXT:
            lookup = {v: i for i, v in enumerate(categories[column])}
            out[column] = [lookup.get(v, np.nan) for v in values.to_list()]
        else:
            out[column] = values.cast(pl.Float64).to_numpy()
    return pd.DataFrame(out, dtype="float64")


def _booster(objective: str, seed: int):
    import lightgbm as lgb

    return lgb.LGBMRegressor(
        objective=objective,
        n_estimators=400,
        learning_rate=0.03,
        num_leaves=7,
        min_child_samples=80,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=5.0,
        n_jobs=2,
        random_state=seed,
        verbosity=-1,
    )


def _fit(model, x, y, xv, yv, categorical):
    import lightgbm as lgb

    extra = {}
    if len(yv) and np.unique(yv).size > 1:
        extra = {"eval_X": (xv,), "eval_y": (yv,), "callbacks": [lgb.early_stopping(40, verbose=False)]}
    return model.fit(x, y, categorical_feature=categorical, **extra)


@dataclass
class XLearner:
    """mu0, mu1 (purchase probability without / with the offer) and the blended effect tau."""

    categories: dict[str, list[str]]
    propensity: float
    seed: int = 42
    models: dict = field(default_factory=dict)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # Offer where the estimated gain exceeds this (EUR), chosen on the validation window (choose_cutoff).
    offer_cutoff: float = 0.0

    def _x(self, table: pl.DataFrame) -> pd.DataFrame:
        return covariates(table, self.categories)

    def fit(self, train: pl.DataFrame, valid: pl.DataFrame) -> XLearner:
        xt, xv = self._x(train), self._x(valid)
        tt, tv = train["treated"].to_numpy(), valid["treated"].to_numpy()
        yt, yv = train[LABEL].to_numpy().astype(float), valid[LABEL].to_numpy().astype(float)
        cat = [c for c in xt.columns if c in TEXT]
        for arm, mask, vmask in (("mu0", ~tt, ~tv), ("mu1", tt, tv)):
            self.models[arm] = _fit(_booster("cross_entropy", self.seed), xt[mask], yt[mask], xv[vmask], yv[vmask], cat)
        mu0 = lambda x: self.models["mu0"].predict(x)
        mu1 = lambda x: self.models["mu1"].predict(x)
        d1, d1v = yt[tt] - mu0(xt[tt]), yv[tv] - mu0(xv[tv])
        d0, d0v = mu1(xt[~tt]) - yt[~tt], mu1(xv[~tv]) - yv[~tv]
        self.models["tau1"] = _fit(_booster("regression", self.seed), xt[tt], d1, xv[tv], d1v, cat)
        self.models["tau0"] = _fit(_booster("regression", self.seed), xt[~tt], d0, xv[~tv], d0v, cat)
        return self

    def predict(self, table: pl.DataFrame) -> dict[str, np.ndarray]:
        """p0, p1 (= p0 + tau, clipped), tau (X-learner) and tau_t (T-learner: mu1 - mu0)."""
        x = self._x(table)
        p0 = np.clip(self.models["mu0"].predict(x), 1e-6, 1 - 1e-6)
        mu1 = np.clip(self.models["mu1"].predict(x), 1e-6, 1 - 1e-6)
        e = self.propensity
        tau = e * self.models["tau0"].predict(x) + (1 - e) * self.models["tau1"].predict(x)
        return {"p0": p0, "p1": np.clip(p0 + tau, 0.0, 1.0), "tau": tau, "tau_t": mu1 - p0}

    def gains(self, table: pl.DataFrame) -> np.ndarray:
        pred = self.predict(table)
        return gains(pred["p0"], pred["p1"], self.policy)

    def offers(self, table: pl.DataFrame) -> np.ndarray:
        """The policy: offer where the estimated gain exceeds the cutoff chosen on validation."""
        return self.gains(table) > self.offer_cutoff


def fit_uplift(table: pl.DataFrame, policy: PolicyConfig | None = None, seed: int = 42) -> XLearner | None:
    """The X-learner on the train side (early stopping on valid) and its offer cutoff (chosen on
    valid); None without both arms and outcomes."""
    train, valid = (table.filter(pl.col("split") == s) for s in ("train", "valid"))
    arms = train.group_by("treated").agg(pl.col(LABEL).sum().alias("buyers"), pl.len().alias("n"))
    if arms.height < 2 or arms["buyers"].min() < 5:
        return None
    categories = {c: sorted(table[c].drop_nulls().unique().to_list()) for c in TEXT if c in table.columns}
    propensity = float(train["treated"].mean())
    model = XLearner(categories, propensity, seed, policy=policy or PolicyConfig()).fit(train, valid)
    model.offer_cutoff = choose_cutoff(model, valid)
    return model


def choose_cutoff(model: XLearner, valid: pl.DataFrame, shares: tuple[float, ...] = TARGETED_SHARES) -> float:
    """The gain above which to offer: of the policies "offer to the top share of sessions by estimated
    gain" (0 %, 10 %, ..., 100 %), the one with the best doubly robust value on the validation window
    (ties go to the cutoff nearest 0).

    Why not simply offer where the estimated gain is positive: the effect estimates are noisy (10 %
    of the sessions are treated), and at a cutoff of 0 noise alone makes many sessions look worth an
    offer; on the demo data that policy earned less than offering to everyone. Ranking by the
    estimate and choosing the depth from held-out randomised data keeps what the ranking knows (it
    can choose everyone or no one). Why doubly robust rather than plain IPW values: with 10 % of the
    validation sessions treated, IPW values are noisy enough that the arg-max picks noise.
    Without validation sessions in both arms the cutoff stays at 0, the expected-value rule."""
    t = valid["treated"].to_numpy()
    if valid.height == 0 or t.all() or not t.any():
        return 0.0
    pred = model.predict(valid)
    g = gains(pred["p0"], pred["p1"], model.policy)
    return best_cutoff(g, dr_gains(pred["p0"], pred["p1"], t, valid[LABEL].to_numpy().astype(float), model), shares)


def best_cutoff(estimated: np.ndarray, realised: np.ndarray, shares: tuple[float, ...] = TARGETED_SHARES) -> float:
    """Of the cutoffs that offer to the top `share` of sessions by `estimated` gain, the one whose
    offered sessions' `realised` gains (per-session estimates from held-out data) sum highest."""
    ranked = np.sort(estimated)[::-1]
    best = (-np.inf, 0.0)
    for share in shares:
        k = int(round(share * len(ranked)))
        cutoff = np.inf if k == 0 else (-np.inf if k == len(ranked) else float((ranked[k - 1] + ranked[k]) / 2))
        value = float(realised[estimated > cutoff].sum())
        if value > best[0] + 1e-9 or (abs(value - best[0]) <= 1e-9 and abs(cutoff) < abs(best[1])):
            best = (value, cutoff)
    return best[1]


def dr_gains(p0: np.ndarray, p1: np.ndarray, treated: np.ndarray, y: np.ndarray, model: XLearner) -> np.ndarray:
    """Per-session doubly robust estimate of the profit change of offering (the AIPW score of
    `aipw`, in money): a policy's value is the sum over the sessions it offers to."""
    m, d, e, t = model.policy.margin, model.policy.discount, model.propensity, treated.astype(float)
    with_offer = p1 * (m - d) + t / e * (y - p1) * (m - d)
    without = p0 * m + (1 - t) / (1 - e) * (y - p0) * m
    return with_offer - without


# ---- judging the estimate with data only ----------------------------------------------------------
def qini(tau: np.ndarray, treated: np.ndarray, y: np.ndarray, points: int = 20) -> dict:
    """Qini curve (incremental buyers per session as the top fraction phi is targeted, treated counts
    scaled to the control arm), its area (AUUC) and the area above the random line (Qini coefficient)."""
    order = np.argsort(-tau, kind="stable")
    t, yy = treated[order].astype(float), y[order].astype(float)
    nt, nc = np.cumsum(t), np.cumsum(1 - t)
    yt, yc = np.cumsum(t * yy), np.cumsum((1 - t) * yy)
    gain = yt - np.divide(yc * nt, nc, out=np.zeros_like(yc), where=nc > 0)
    n = len(y)
    curve = gain / n
    phi = np.arange(1, n + 1) / n
    random = phi * curve[-1]
    auuc = float(np.trapezoid(np.concatenate([[0], curve]), np.concatenate([[0], phi])))
    coefficient = float(np.trapezoid(np.concatenate([[0], curve - random]), np.concatenate([[0], phi])))
    keep = np.unique(np.linspace(0, n - 1, points).astype(int))
    return {"qini": coefficient, "auuc": auuc, "curve": list(zip(phi[keep].tolist(), curve[keep].tolist()))}


def aipw(p0: np.ndarray, p1: np.ndarray, treated: np.ndarray, y: np.ndarray, e: float, z: float = 1.96) -> dict:
    """Doubly robust average effect of the offer and its normal interval (sessions independent)."""
    t = treated.astype(float)
    psi = p1 - p0 + t * (y - p1) / e - (1 - t) * (y - p0) / (1 - e)
    se = float(psi.std(ddof=1) / np.sqrt(len(psi)))
    mean = float(psi.mean())
    return {"estimate": mean, "low": mean - z * se, "high": mean + z * se}


def difference_in_means(treated: np.ndarray, y: np.ndarray, z: float = 1.96) -> dict:
    t = treated.astype(bool)
    a, b = y[t].astype(float), y[~t].astype(float)
    diff = float(a.mean() - b.mean())
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return {"estimate": diff, "low": diff - z * se, "high": diff + z * se}


def gains(p0: np.ndarray, p1: np.ndarray, cfg: PolicyConfig) -> np.ndarray:
    """Expected profit change of offering, per session (policy.expected_gain, vectorised)."""
    return (p1 - p0) * cfg.margin - p1 * cfg.discount


def ipw_value(offer: np.ndarray, treated: np.ndarray, y: np.ndarray, e: float, cfg: PolicyConfig) -> float:
    """Profit change of a policy vs no offers, estimated from the randomised arms (inverse propensity)."""
    t = treated.astype(float)
    profit = y * (cfg.margin - t * cfg.discount)
    follow = offer * t / e + (1 - offer) * (1 - t) / (1 - e)
    return float(np.sum(follow * profit) - np.sum((1 - t) / (1 - e) * profit))


def evaluate_uplift(model: XLearner, test: pl.DataFrame, rounds: int = 200, seed: int = 0) -> dict:
    """Data-only judgement on the test window: Qini/AUUC (with session-bootstrap intervals) for the
    X- and T-learner, average effect estimates, and each policy's IPW value."""
    pred, cfg = model.predict(test), model.policy
    t, y = test["treated"].to_numpy(), test[LABEL].to_numpy().astype(float)
    offer = model.offers(test).astype(float)
    e = model.propensity
    out = {
        "sessions": test.height,
        "treated": int(t.sum()),
        "propensity": e,
        "x_learner": qini(pred["tau"], t, y),
        "t_learner": qini(pred["tau_t"], t, y),
        "mean_predicted_uplift": float(pred["tau"].mean()),
        "aipw": aipw(pred["p0"], pred["p1"], t, y, e),
        "difference_in_means": difference_in_means(t, y) if 0 < t.sum() < len(t) else None,
        "policy_offers": int(offer.sum()),
        "offer_cutoff": model.offer_cutoff,
        "ipw_value": {
            "estimated policy": ipw_value(offer, t, y, e, cfg),
            "offer to everyone": ipw_value(np.ones_like(offer), t, y, e, cfg),
            "no offers": 0.0,
        },
    }
    rng = np.random.default_rng(seed)
    draws = {"x_learner": [], "t_learner": []}
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        draws["x_learner"].append(qini(pred["tau"][idx], t[idx], y[idx], points=2)["qini"])
        draws["t_learner"].append(qini(pred["tau_t"][idx], t[idx], y[idx], points=2)["qini"])
    for name, values in draws.items():  # normal interval: the percentile one sits off-centre for this statistic
        half = 1.96 * float(np.std(values, ddof=1))
        out[name]["qini_ci"] = (out[name]["qini"] - half, out[name]["qini"] + half)
    return out


# ---- the check against the simulator's ground truth (evaluation only, when the file exists) -------
def truth_check(model: XLearner, test: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Compares the estimate with the simulator's truth on the test sessions that can be joined to
    it (by `client_session_id`, which survives the privacy filter only with analytics consent):
    true vs estimated average uplift, and the realised profit change (true probabilities) of the
    estimated policy, the policy that knew the truth, offering to everyone and to no one."""
    truth = truth.filter(pl.col("is_bot") == 0).select(
        "client_session_id", pl.col("p_no_offer").alias("true_p0"), pl.col("p_offer").alias("true_p1")
    )
    matched = test.join(truth, on="client_session_id", how="inner")
    if not matched.height:
        return {"matched_sessions": 0, "test_sessions": test.height}
    pred = model.predict(matched)
    true_gain = gains(matched["true_p0"].to_numpy(), matched["true_p1"].to_numpy(), model.policy)
    offer = model.offers(matched)
    estimate = aipw(
        pred["p0"], pred["p1"], matched["treated"].to_numpy(), matched[LABEL].to_numpy().astype(float), model.propensity
    )
    true_uplift = float((matched["true_p1"] - matched["true_p0"]).mean())
    return {
        "matched_sessions": matched.height,
        "test_sessions": test.height,
        "true_average_uplift": true_uplift,
        "estimated_average_uplift": estimate,
        "mean_predicted_uplift": float(pred["tau"].mean()),
        "truth_inside_interval": bool(estimate["low"] <= true_uplift <= estimate["high"]),
        "uplift_correlation": float(np.corrcoef(pred["tau"], matched["true_p1"] - matched["true_p0"])[0, 1]),
        "realised_value": {
            "estimated policy": float(true_gain[offer].sum()),
            "policy that knew the truth": float(true_gain[true_gain > 0].sum()),
            "offer to everyone": float(true_gain.sum()),
            "no offers": 0.0,
        },
        "offers": {"estimated policy": int(offer.sum()), "policy that knew the truth": int((true_gain > 0).sum())},
    }
