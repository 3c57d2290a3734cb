"""The evaluation report: one self-contained HTML page (inline CSS and SVG charts, no CDN, opens
offline from the Dagster UI's path link or the MLflow run's artifacts), a Markdown twin and the model
card. Built from `Section`s (a heading, prose, tables and charts) so both formats say the same.

Rejected: Markdown inside `<pre>` (tables showed as pipes) and a templating dependency (the page is
small; `html.escape` on every value is the whole safety story).
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from hn_assets.models.evaluation import CHALLENGER, CHAMPION, Evaluation, interval

PALETTE = {"challenger": "#1f77b4", "champion": "#d62728", "logistic_regression": "#2ca02c", "rule_cart_add": "#9467bd"}


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    classes: list[str] = field(default_factory=list)  # a CSS class per row ("pass", "fail", "")


@dataclass
class Section:
    title: str
    prose: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # inline SVG


def _num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


# ---- charts (matplotlib -> inline SVG, text as paths: no fonts to fetch) -----------------------------
def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "path"
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _curve_chart(ev: Evaluation, key: str, title: str, xlabel: str, ylabel: str, diagonal: bool) -> str:
    fig, ax = _figure(title, xlabel, ylabel)
    if diagonal:
        ax.plot([0, 1], [0, 1], "k:", lw=1, label="chance" if key == "roc" else "perfect")
    for name, curves in ev.curves.items():
        pts = curves[key]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        style = {"marker": "o", "ms": 3} if key == "reliability" else {}
        ax.plot(xs, ys, color=PALETTE.get(name), lw=1.6, label=_label(ev, name), **style)
    if key == "reliability":
        top = max(max(p[0] for p in c["reliability"]) for c in ev.curves.values())
        ax.set_xlim(0, min(1.0, top * 1.1 + 0.01))
        ax.set_ylim(0, min(1.0, top * 1.1 + 0.01))
    ax.legend(fontsize=7, loc="lower right" if key == "roc" else "best")
    return _svg(fig)


def _label(ev: Evaluation, name: str) -> str:
    if name == CHALLENGER:
        return f"challenger ({ev.challenger})"
    if name == CHAMPION:
        return f"champion v{ev.champion_version}"
    if name == "floor":
        return "floor (best promoted model)"
    return name


def _lift_chart(ev: Evaluation) -> str:
    fig, ax = _figure("Lift by score decile (challenger)", "decile (1 = highest scores)", "purchase rate / overall")
    ax.bar(range(1, 11), ev.lift, color=PALETTE["challenger"])
    ax.axhline(1.0, color="k", lw=1, ls=":")
    ax.set_xticks(range(1, 11))
    return _svg(fig)


def _slice_chart(ev: Evaluation) -> str:
    rows = [s for s in ev.slices if s["challenger"] is not None]
    fig, ax = _figure("Slice ROC-AUC, family-wise 95% session-bootstrap intervals", "ROC-AUC", "")
    fig.set_size_inches(6.4, 0.28 * len(rows) + 1.2)
    ys = list(range(len(rows)))
    for offset, key, name in ((-0.15, "challenger", CHALLENGER), (0.15, "champion", CHAMPION)):
        pts = [(y + offset, s[key]) for y, s in zip(ys, rows) if s[key] is not None]
        if not pts:
            continue
        centre = [i.point for _, i in pts]
        err = [[i.point - i.low for _, i in pts], [i.high - i.point for _, i in pts]]
        ax.errorbar(centre, [p for p, _ in pts], xerr=err, fmt="o", ms=3, color=PALETTE[name], label=_label(ev, name))
    ax.set_yticks(ys, [s["slice"] for s in rows], fontsize=7)
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    return _svg(fig)


def _qini_chart(uplift: dict) -> str:
    fig, ax = _figure("Qini curve on the test window", "share of sessions targeted", "incremental buyers per session")
    for name, colour in (("x_learner", "#1f77b4"), ("t_learner", "#ff7f0e")):
        pts = uplift[name]["curve"]
        ax.plot([0] + [p[0] for p in pts], [0] + [p[1] for p in pts], color=colour, label=name.replace("_", "-"))
    end = uplift["x_learner"]["curve"][-1]
    ax.plot([0, end[0]], [0, end[1]], "k:", lw=1, label="random targeting")
    ax.legend(fontsize=7)
    return _svg(fig)


# ---- sections ------------------------------------------------------------------------------------------
def decision_section(decision) -> Section:
    if decision is None:
        return Section(
            "Promotion gate", ["Decision pending: `purchase_intent_champion` runs the gate after this report."]
        )
    banner = {"promoted": "PROMOTED", "rejected": "REJECTED", "refused (fail closed)": "REFUSED (fail closed)"}[
        decision.outcome
    ]
    shown = [c for c in decision.checks if not (c.rule.startswith("slice ") and c.passed)]
    passing_slices = len(decision.checks) - len(shown) - sum(1 for c in shown if c.rule.startswith("slice "))
    rows = [[c.rule, "pass" if c.passed else "FAIL", c.detail] for c in shown]
    rows.append(["slices", "pass", f"{passing_slices} slice checks pass (table in Slices)"])
    table = Table(["rule", "result", "detail"], rows, ["pass" if r[1] == "pass" else "fail" for r in rows])
    return Section(
        f"Promotion gate: {banner}",
        [f"<b>{html.escape(r)}</b>" for r in decision.reasons[:1]] + [html.escape(r) for r in decision.reasons[1:]],
        [table],
    )


def model_section(ev: Evaluation) -> Section:
    order = sorted(ev.models, key=lambda n: -ev.models[n]["roc_auc"])
    rows = []
    for name in order:
        m = ev.models[name]
        rows.append(
            [_label(ev, name)]
            + [interval((m[k], *m[f"{k}_ci"])) for k in ("roc_auc", "pr_auc", "brier", "ece")]
            + [_num(m["precision_at_0.9"]), _num(m["recall_at_0.5"])]
        )
    models = Table(
        [
            "model",
            "ROC-AUC (95% CI)",
            "PR-AUC (95% CI)",
            "Brier (95% CI)",
            "ECE (95% CI)",
            "precision@0.9",
            "recall@0.5",
        ],
        rows,
    )
    diffs = Table(
        ["paired difference", "ROC-AUC", "PR-AUC", "Brier", "ECE"],
        [[name] + [interval(d[m]) for m in ("roc_auc", "pr_auc", "brier", "ece")] for name, d in ev.diffs.items()],
    )
    widths = Table(
        ["interval width (challenger)", "ROC-AUC", "PR-AUC", "Brier", "ECE"],
        [
            [f"{unit} bootstrap"] + [_num(ev.widths[unit][m]) for m in ("roc_auc", "pr_auc", "brier", "ece")]
            for unit in ("row", "session")
        ],
    )
    prose = [
        f"Test window: {ev.rows:,} snapshot rows from {ev.sessions:,} sessions. Intervals: 95% percentile "
        "bootstrap resampling <i>sessions</i> (a session's snapshots move together), paired: every difference "
        "is computed on the same resamples. The row bootstrap, which treats correlated snapshots as independent, "
        "is shown for comparison only.",
    ]
    return Section("Candidates, baselines and champion", prose, [models, diffs, widths])


def curve_section(ev: Evaluation) -> Section:
    return Section(
        "Curves",
        charts=[
            _curve_chart(ev, "roc", "ROC curve", "false-positive rate", "true-positive rate", True),
            _curve_chart(ev, "pr", "Precision-recall curve", "recall", "precision", False),
            _curve_chart(
                ev,
                "reliability",
                "Reliability (equal-frequency bins)",
                "mean predicted probability",
                "observed purchase rate",
                True,
            ),
            _lift_chart(ev),
        ],
    )


def slice_section(ev: Evaluation, decision) -> Section:
    failed = {c.rule for c in (decision.checks if decision else []) if not c.passed}
    rows, classes = [], []
    for s in ev.slices:
        blocks = {f"slice {s['slice']} above floor", f"slice {s['slice']} vs champion"} & failed
        status = "blocks" if blocks else ("reported only" if s["challenger"] is None or s["positives"] < 30 else "ok")
        rows.append(
            [
                s["slice"],
                str(s["rows"]),
                str(s["sessions"]),
                str(s["positives"]),
                interval(s["challenger"]),
                interval(s["champion"]),
                interval(s["diff"]),
                status,
            ]
        )
        classes.append("fail" if status == "blocks" else "")
    table = Table(
        ["slice", "rows", "sessions", "positives", "challenger ROC-AUC", "champion ROC-AUC", "difference", "status"],
        rows,
        classes,
    )
    return Section(
        "Slices",
        [
            "A slice blocks only when the challenger is credibly worse than the champion on it, or credibly "
            "below the absolute floor. Slice intervals are family-wise 95 % (Bonferroni over the slices), so "
            "the many slices do not flag one by chance."
        ],
        [table],
        [_slice_chart(ev)],
    )


def behaviour_section(ev: Evaluation) -> Section:
    rows = [
        [name, "pass" if t["passed"] else "FAIL", ", ".join(f"{k}={_fmt(v)}" for k, v in t.items() if k != "passed")]
        for name, t in ev.behaviour.items()
    ]
    return Section(
        "Behavioural tests (registered challenger, real test rows)",
        tables=[Table(["test", "result", "detail"], rows, ["pass" if r[1] == "pass" else "fail" for r in rows])],
    )


def _fmt(v) -> str:
    return _num(v) if isinstance(v, float) else str(v)


def explanation_section(ev: Evaluation) -> Section:
    importance = ev.explanations.get("global_importance", {})
    reasons = ev.explanations.get("top_reasons_of_highest_scores", [])
    table = Table(["feature", "mean |SHAP| (log-odds)"], [[k, _num(v, 5)] for k, v in list(importance.items())[:12]])
    prose = (
        ["Top reasons of the highest-scored sessions: " + html.escape("; ".join(", ".join(r) for r in reasons))]
        if reasons
        else []
    )
    return Section(
        "Explanations (native SHAP contributions of the challenger's booster)", prose, [table] if importance else []
    )


def uplift_section(uplift: dict) -> Section:
    if not uplift or not uplift.get("estimate"):
        return Section(
            "Discount uplift and policy",
            [html.escape(uplift.get("reason", "not estimated")) if uplift else "not estimated"],
        )
    est, truth = uplift["estimate"], uplift.get("truth")
    q = Table(
        ["uplift model", "Qini coefficient (95% CI, session bootstrap)", "AUUC"],
        [
            [
                n.replace("_", "-"),
                f"{est[n]['qini']:.5f} ({est[n]['qini_ci'][0]:.5f} to {est[n]['qini_ci'][1]:.5f})",
                f"{est[n]['auuc']:.5f}",
            ]
            for n in ("x_learner", "t_learner")
        ],
    )
    effects = [
        ["AIPW (X-learner, doubly robust)", _effect(est["aipw"])],
        ["mean predicted uplift (X-learner)", f"{est['mean_predicted_uplift']:+.4f}"],
    ]
    if est.get("difference_in_means"):
        effects.append(["difference in means (randomised arms)", _effect(est["difference_in_means"])])
    value = Table(
        ["policy", "IPW-estimated profit change vs no offers (EUR)"],
        [[k, f"{v:,.0f}"] for k, v in est["ipw_value"].items()],
    )
    prose = [
        f"Randomised offers on the test window: {est['treated']:,} of {est['sessions']:,} sessions "
        f"(training propensity {est['propensity']:.3f}). The policy ranks sessions by the estimated gain "
        f"(p1 − p0)·margin − p1·discount and offers above the cutoff chosen on the validation window by the "
        f"doubly robust value ({_cutoff(est.get('offer_cutoff', 0.0))}): {est['policy_offers']:,} sessions.",
    ]
    tables = [q, Table(["average effect of an offer on P(purchase)", "estimate (95% CI)"], effects), value]
    if truth and truth.get("matched_sessions"):
        prose.append(
            "<b>Check against the simulator's ground truth</b> (not available to training), on the "
            f"{truth['matched_sessions']:,} of {truth['test_sessions']:,} test sessions that join to it by "
            f"client session id: true average uplift {truth['true_average_uplift']:+.4f}, AIPW estimate on the "
            f"same sessions {_effect(truth['estimated_average_uplift'])} — truth "
            f"{'inside' if truth['truth_inside_interval'] else 'OUTSIDE'} the interval; correlation of predicted "
            "and true "
            f"per-session uplift {truth['uplift_correlation']:.2f}."
        )
        tables.append(
            Table(
                ["policy (realised with the true probabilities)", "profit change vs no offers (EUR)", "offers"],
                [
                    [k, f"{v:,.0f}", str(truth["offers"].get(k, "all" if k == "offer to everyone" else "0"))]
                    for k, v in truth["realised_value"].items()
                ],
            )
        )
    elif truth is not None:
        prose.append("Ground-truth check: no test session could be joined to the simulator's truth file.")
    else:
        prose.append(
            "Ground-truth check: no simulator truth file (real data); only the data-based judgement above applies."
        )
    return Section(
        "Discount uplift and policy (estimated from the randomised offers)", prose, tables, [_qini_chart(est)]
    )


def _cutoff(value: float) -> str:
    if abs(value) == float("inf"):
        return "offer to no one" if value > 0 else "offer to everyone"
    return f"gain above {value:,.2f} EUR"


def _effect(e: dict) -> str:
    return f"{e['estimate']:+.4f} ({e['low']:+.4f} to {e['high']:+.4f})"


def sections(ev: Evaluation, decision, header: dict[str, str]) -> list[Section]:
    overview = Section("Overview", tables=[Table(["", ""], [[k, v] for k, v in header.items()])])
    return [
        overview,
        decision_section(decision),
        model_section(ev),
        curve_section(ev),
        slice_section(ev, decision),
        behaviour_section(ev),
        explanation_section(ev),
        uplift_section(ev.uplift),
    ]


# ---- output ---------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1180px;
  color:#222;padding:0 1rem}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f6f8} tr.pass td:nth-child(2){color:#1a7f37;font-weight:600} tr.fail td{background:#fff1f0}
tr.fail td:nth-child(2){color:#b42318;font-weight:700}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .charts svg{max-width:100%;height:auto}
p{line-height:1.45;max-width:75rem}
"""


def to_html(parts: list[Section], title: str) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in parts:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{p}</p>" for p in s.prose]  # prose is escaped where it is built (it may carry <b>)
        for t in s.tables:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers) if any(t.headers) else ""
            rows = "".join(
                f"<tr class='{t.classes[i] if i < len(t.classes) else ''}'>"
                + "".join(f"<td>{html.escape(c)}</td>" for c in r)
                + "</tr>"
                for i, r in enumerate(t.rows)
            )
            thead = f"<thead><tr>{head}</tr></thead>" if head else ""
            body.append(f"<table>{thead}<tbody>{rows}</tbody></table>")
        if s.charts:
            body.append("<div class='charts'>" + "".join(s.charts) + "</div>")
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style>"
    return f"<!doctype html><html lang='en'><head>{head}</head><body>{''.join(body)}</body></html>\n"


def to_markdown(parts: list[Section], title: str) -> str:
    import re

    lines = [f"# {title}", ""]
    for s in parts:
        lines += [f"## {s.title}", ""]
        lines += [re.sub(r"</?[bi]>", "**", html.unescape(p)) + "\n" for p in s.prose]
        for t in s.tables:
            lines += ["| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in t.rows]
            lines.append("")
        if s.charts:
            lines += ["(charts: see report.html)", ""]
    return "\n".join(lines) + "\n"


def render(ev: Evaluation, decision, folder: Path, header: dict[str, str]) -> tuple[Path, Path]:
    """report.html (self-contained) and report.md in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = sections(ev, decision, header)
    title = "Purchase-intent evaluation"
    html_path, md_path = folder / "report.html", folder / "report.md"
    html_path.write_text(to_html(parts, title))
    md_path.write_text(to_markdown(parts, title))
    return md_path, html_path


def model_card(trained, ev: Evaluation) -> str:
    best = ev.models[CHALLENGER]
    slices = "\n".join(f"| {s['slice']} | {s['positives']} | {interval(s['challenger'])} |" for s in ev.slices)
    return f"""# Model card: purchase_intent v{trained.version}

**Intended use.** Score a live web-shop session before checkout with the calibrated probability that it
ends in a purchase; drive on-site nudges and the discount policy (offer only where the expected gain
is positive). Not for decisions about individuals outside the shop, credit, or pricing per person.

**Model.** {trained.challenger}: a scikit-learn pipeline (category encoding, LightGBM/XGBoost booster)
with isotonic calibration on the validation window (`CalibratedClassifierCV` over the frozen booster),
logged with the `mlflow.sklearn` flavour: `mlflow.pyfunc.load_model("models:/purchase_intent@champion")`
returns [P(no purchase), P(purchase)] per row. Features: feature service {trained.feature_service}.
Training set: {trained.training_set_version}.

**Data window.** Temporal split by each session's real end: validation from {trained.split["valid_start"]},
test from {trained.split["test_start"]}, {trained.split["gap"]} gap at each boundary.

**Test metrics** (95% session-bootstrap intervals). ROC-AUC {interval((best["roc_auc"], *best["roc_auc_ci"]))},
PR-AUC {interval((best["pr_auc"], *best["pr_auc_ci"]))}, Brier {best["brier"]:.4f}, ECE {best["ece"]:.4f}.

| slice | positives | ROC-AUC (95% CI) |
|---|---|---|
{slices}

**Limitations and fairness.** Trained on the H.N store's simulated or loaded data only; anonymous visitors
have no history features, so their scores rest on in-session behaviour; visitors without analytics
consent are linkable within a day only. No protected attributes are used as features.
"""
