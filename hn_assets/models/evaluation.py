"""The purchase-intent evaluation: every candidate, the baselines and the champion on one test window.

Produces a dict of results (metrics with bootstrap intervals, slices with flags, behavioural tests,
explanations, policy value) and renders it as Markdown and HTML with plots as images.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from hn_assets.contracts import DEVICES
from hn_assets.models.metrics import bootstrap_ci, lift_by_decile, reliability_curve, summary
from hn_assets.models.policy import expected_gain
from hn_assets.models.results import TrainedChallenger
from hn_assets.models.training import LABEL, Candidate, to_pandas

SLICE_MIN_POSITIVES = 30
SLICE_TOLERANCE = 0.95
IDS_THAT_MUST_NOT_MATTER = ("snapshot_key", "session_key", "user_id", "product_id")


@dataclass
class PolicyConfig:
    margin_share: float = 0.25  # margin as a share of the basket value
    discount_share: float = 0.10  # the offer: 10 % off
    uplift_logit: float = 0.6  # configured uplift model: log-odds shift of an offer
    basket_value: float = 900.0  # EUR, a typical laptop basket
    fixed_threshold: float = 0.5


def _slices(test: pl.DataFrame) -> dict[str, pl.Expr]:
    out = {f"device={d}": pl.col("device") == d for d in DEVICES}
    out |= {
        "anonymous": pl.col("user_id").is_null(),
        "known user": pl.col("user_id").is_not_null(),
        "returning": pl.col("sessions_last_30d").fill_null(0) >= 2,
        "new": pl.col("sessions_last_30d").fill_null(0) < 2,
    }
    out |= {f"channel={c}": pl.col("channel") == c for c in test["channel"].drop_nulls().unique().sort()}
    if "country" in test.columns:
        out |= {f"country={c}": pl.col("country") == c for c in test["country"].drop_nulls().unique().sort()}
    return out


def slice_metrics(test: pl.DataFrame, scores: np.ndarray, overall_auc: float) -> list[dict]:
    rows = []
    frame = test.with_columns(pl.Series("_score", scores))
    for name, condition in _slices(test).items():
        part = frame.filter(condition)
        y, p = part[LABEL].cast(pl.Int8).to_numpy(), part["_score"].to_numpy()
        positives = int(y.sum())
        if positives == 0 or positives == len(y):
            rows.append({"slice": name, "rows": len(y), "positives": positives, "roc_auc": None, "flagged": False})
            continue
        auc = float(roc_auc_score(y, p))
        low, high = bootstrap_ci(roc_auc_score, y, p, rounds=100)
        flagged = positives >= SLICE_MIN_POSITIVES and high < SLICE_TOLERANCE * overall_auc
        rows.append(
            {
                "slice": name,
                "rows": len(y),
                "positives": positives,
                "roc_auc": auc,
                "ci": (low, high),
                "flagged": flagged,
            }
        )
    return rows


def behaviour_tests(model: Candidate, x: pd.DataFrame, raw_test: pl.DataFrame) -> dict[str, dict]:
    base = model.predict(x)
    renamed = raw_test.with_columns(
        [pl.col(c).cast(pl.String) + "-renamed" for c in IDS_THAT_MUST_NOT_MATTER if c in raw_test.columns]
    )
    invariance = float(np.max(np.abs(model.predict(to_pandas(renamed, model.features)) - base)))
    more_cart = x.copy()
    more_cart["cart_adds_so_far"] = more_cart["cart_adds_so_far"] + 1
    more_cart["events_so_far"] = more_cart["events_so_far"] + 1
    lowered = int(np.sum(model.predict(more_cart) < base - 1e-12))
    cases = pd.DataFrame(
        [
            {
                "events_so_far": 12,
                "product_views_so_far": 8,
                "distinct_products_so_far": 3,
                "cart_adds_so_far": 2,
                "seconds_since_start": 900,
                "lifetime_purchase_count": 3,
                "sessions_last_30d": 4,
                "device": "desktop",
                "channel": "email",
            },
            {
                "events_so_far": 1,
                "product_views_so_far": 0,
                "distinct_products_so_far": 0,
                "cart_adds_so_far": 0,
                "seconds_since_start": 0,
                "lifetime_purchase_count": 0,
                "sessions_last_30d": 1,
                "device": "mobile",
                "channel": "tiktok_ads",
            },
        ]
    )
    case_frame = to_pandas(pl.from_pandas(cases.reindex(columns=model.features)), model.features)
    engaged, bounce = model.predict(case_frame)
    return {
        "invariance_to_ids": {"passed": invariance == 0.0, "max_change": invariance},
        "direction_add_to_cart": {"passed": lowered == 0, "rows_lowered": lowered, "rows": len(base)},
        "minimum_functionality": {
            "passed": bool(engaged > bounce),
            "engaged_buyer": float(engaged),
            "one_page_bounce": float(bounce),
        },
    }


def explanations(model: Candidate, x: pd.DataFrame, sample: int = 5) -> dict:
    """SHAP values from the boosters' native contributions: global importance, top reasons per row."""
    if model.kind == "lightgbm":
        contrib = model.model.predict(x[model.features], pred_contrib=True, num_iteration=model.model.best_iteration)
    elif model.kind == "xgboost":
        import xgboost as xgb

        contrib = model.model.predict(
            xgb.DMatrix(x[model.features], enable_categorical=True),
            pred_contribs=True,
            iteration_range=(0, model.model.best_iteration + 1),
        )
    else:
        return {}
    values = contrib[:, :-1]
    importance = dict(sorted(zip(model.features, np.abs(values).mean(axis=0).round(5).tolist()), key=lambda kv: -kv[1]))
    top = np.argsort(-model.predict(x))[:sample]
    reasons = [[model.features[j] for j in np.argsort(-values[i])[:3]] for i in top]
    return {"global_importance": importance, "top_reasons_of_highest_scores": reasons}


def policy_value(p0: np.ndarray, cfg: PolicyConfig) -> dict[str, float]:
    """Expected profit change on the test window: EV policy vs everyone above a score vs no one."""
    logit = np.log(np.clip(p0, 1e-6, 1 - 1e-6) / np.clip(1 - p0, 1e-6, 1))
    p1 = 1 / (1 + np.exp(-(logit + cfg.uplift_logit)))
    margin, discount = cfg.margin_share * cfg.basket_value, cfg.discount_share * cfg.basket_value
    gains = np.array([expected_gain(a, b, margin, discount) for a, b in zip(p0, p1)])
    return {
        "ev_policy": float(gains[gains > 0].sum()),
        "ev_policy_offers": int((gains > 0).sum()),
        f"everyone_above_{cfg.fixed_threshold}": float(gains[p0 >= cfg.fixed_threshold].sum()),
        "no_one": 0.0,
    }


@dataclass
class Evaluation:
    models: dict[str, dict]
    slices: list[dict]
    behaviour: dict
    explanations: dict
    policy: dict
    reliability: dict
    lift: list[float]
    challenger: str
    champion: str | None


def evaluate(
    test: pl.DataFrame,
    models: dict[str, Candidate],
    challenger: str,
    champion: str | None,
    policy: PolicyConfig | None = None,
) -> Evaluation:
    policy = policy or PolicyConfig()
    y = test[LABEL].cast(pl.Int8).to_numpy()
    results, reliability = {}, {}
    for name, model in models.items():
        p = model.predict(to_pandas(test, model.features))
        results[name] = {
            **summary(y, p),
            "roc_auc_ci": bootstrap_ci(roc_auc_score, y, p, rounds=200),
            "pr_auc_ci": bootstrap_ci(average_precision_score, y, p, rounds=200),
        }
        reliability[name] = reliability_curve(y, p)
    best = models[challenger]
    x = to_pandas(test, best.features)
    p = best.predict(x)
    return Evaluation(
        models=results,
        slices=slice_metrics(test, p, results[challenger]["roc_auc"]),
        behaviour=behaviour_tests(best, x, test),
        explanations=explanations(best, x),
        policy=policy_value(p, policy),
        reliability=reliability,
        lift=lift_by_decile(y, p),
        challenger=challenger,
        champion=champion,
    )


def _reliability_png(evaluation: Evaluation) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for name, curve in evaluation.reliability.items():
        if name in (evaluation.challenger, "champion", "logistic_regression"):
            ax.plot([c[0] for c in curve], [c[1] for c in curve], marker="o", label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed purchase rate", title="Reliability (test window)")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render(evaluation: Evaluation, folder: Path, header: dict[str, str]) -> tuple[Path, Path]:
    """Markdown and HTML reports (the reliability diagram as a PNG beside them / inline)."""
    folder.mkdir(parents=True, exist_ok=True)
    png = _reliability_png(evaluation)
    (folder / "reliability.png").write_bytes(png)
    fmt = lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"
    lines = (
        ["# Purchase-intent evaluation", ""]
        + [f"- **{k}**: {v}" for k, v in header.items()]
        + [
            "",
            "## Candidates, baselines and champion (test window)",
            "",
            "| model | ROC-AUC (95% CI) | PR-AUC (95% CI) | Brier | ECE | precision@0.9 | recall@0.5 |",
            "|---|---|---|---|---|---|---|",
        ]
    )
    for name, m in sorted(evaluation.models.items(), key=lambda kv: -kv[1]["roc_auc"]):
        lo, hi = m["roc_auc_ci"]
        plo, phi = m["pr_auc_ci"]
        mark = " (challenger)" if name == evaluation.challenger else ""
        lines.append(
            f"| {name}{mark} | {m['roc_auc']:.4f} ({lo:.4f}–{hi:.4f}) | {m['pr_auc']:.4f} ({plo:.4f}–{phi:.4f}) "
            f"| {m['brier']:.4f} | "
            f"{m['ece']:.4f} | {fmt(m['precision_at_0.9'])} | {fmt(m['recall_at_0.5'])} |"
        )
    lines += [
        "",
        "![reliability](reliability.png)",
        "",
        "## Lift by decile (challenger)",
        "",
        " · ".join(f"{v:.2f}" for v in evaluation.lift),
        "",
        "## Slices (challenger)",
        "",
        "| slice | rows | positives | ROC-AUC | flagged |",
        "|---|---|---|---|---|",
    ]
    for s in evaluation.slices:
        lines.append(
            f"| {s['slice']} | {s['rows']} | {s['positives']} | {fmt(s['roc_auc'])} "
            f"| {'**yes**' if s['flagged'] else ''} |"
        )
    lines += ["", "## Behavioural tests", ""] + [
        f"- {k}: {'PASS' if v['passed'] else 'FAIL'} {v}" for k, v in evaluation.behaviour.items()
    ]
    lines += ["", "## Explanations (native SHAP contributions)", "", "| feature | mean abs contribution |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in list(evaluation.explanations.get("global_importance", {}).items())[:12]]
    lines += [
        "",
        "Top reasons of the highest-scored sessions: "
        + "; ".join(", ".join(r) for r in evaluation.explanations.get("top_reasons_of_highest_scores", [])),
    ]
    lines += ["", "## Discount policy on the test window (expected profit change, EUR)", ""] + [
        f"- {k}: {v:,.2f}" for k, v in evaluation.policy.items()
    ]
    markdown = "\n".join(lines) + "\n"
    md_path, html_path = folder / "report.md", folder / "report.html"
    md_path.write_text(markdown)
    inline = markdown.replace(
        "![reliability](reliability.png)", f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
    )
    html_path.write_text(
        "<html><head><meta charset='utf-8'><title>Purchase-intent evaluation</title></head>"
        f"<body><pre style='font-family: ui-monospace, monospace'>{inline}</pre></body></html>"
    )
    return md_path, html_path


def model_card(trained: TrainedChallenger, evaluation: Evaluation) -> str:
    best = evaluation.models[trained.challenger]
    slices = "\n".join(
        f"| {s['slice']} | {s['positives']} | {s['roc_auc'] if s['roc_auc'] is None else round(s['roc_auc'], 4)} |"
        for s in evaluation.slices
    )
    return f"""# Model card: purchase_intent v{trained.version}

**Intended use.** Score a live web-shop session before checkout with the calibrated probability that it
ends in a purchase; drive on-site nudges and the discount policy (offer only where the expected gain
is positive). Not for decisions about individuals outside the shop, credit, or pricing per person.

**Model.** {trained.challenger} (LightGBM/XGBoost family), isotonic calibration on the validation window,
monotone in cart adds. Features: feature service {trained.feature_service} (in-session activity, user history,
last viewed product). Training set: {trained.training_set_version}.

**Data window.** Temporal split: validation from {trained.split["valid_start"]}, test from
{trained.split["test_start"]}, {trained.split["gap"]} gap at each boundary.

**Test metrics.** ROC-AUC {best["roc_auc"]:.4f}, PR-AUC {best["pr_auc"]:.4f}, Brier {best["brier"]:.4f},
ECE {best["ece"]:.4f}.

| slice | positives | ROC-AUC |
|---|---|---|
{slices}

**Limitations and fairness.** Trained on the H.N store's simulated or loaded data only; anonymous visitors
have no history features, so their scores rest on in-session behaviour; visitors without analytics
consent are linkable within a day only. Slices are checked for a credible AUC drop (>= 30 positives and the
upper bootstrap bound below 95 % of the overall AUC); no protected attributes are used as features.
"""
