"""The promotion gate: when may a challenger replace the champion?

Every rule is a set of MLflow `MetricThreshold`s checked by `mlflow.validate_evaluation_results`
(MLflow's own model-validation API) against statistics of the paired session bootstrap
(`metrics.bootstrap`): e.g. "not credibly worse than the champion on ROC-AUC" is the threshold
`roc_auc_diff_upper >= 0` on the upper bound of the challenger-minus-champion interval. MLflow
compares point values only, so the intervals are computed here and handed to it as metrics;
rejected: `mlflow.evaluate` itself (it re-scores every model per call and has no cluster bootstrap).

The rules (thresholds in `GateConfig`, defaults documented in docs/models.md):
- **fail closed**: a champion exists but its metrics on this window are missing -> refuse;
- **baselines always**: ROC-AUC above every baseline's by `baseline_margin` (MLflow's own comparison
  with a baseline model, `min_absolute_change`), first model or not;
- **not credibly worse than the champion** on ROC-AUC and Brier, and on ECE;
- **ECE ceiling**: ECE <= `ece_ceiling`;
- **no walking down**: ROC-AUC >= floor - `floor_tolerance_auc` and Brier <= floor + tolerance, the
  floor being the best promoted model's metrics *on this window* (`floor_after` keeps its version);
  each step may be a non-credible loss, but the total stays within the tolerance;
- **slices relative to the champion**: a slice (with enough positives) blocks only when the challenger
  is credibly worse than the champion there by more than `slice_tolerance_auc` (family-wise
  intervals), or its ROC-AUC is credibly below `slice_auc_floor`; a slice weak for both models is
  reported, not a block;
- **behavioural tests** pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hn_assets.models.metrics import Interval


@dataclass(frozen=True)
class GateConfig:
    ece_ceiling: float = 0.02
    baseline_margin: float = 0.005  # ROC-AUC must exceed each baseline's by this (MLflow: min_absolute_change > 0)
    floor_tolerance_auc: float = 0.005  # total ROC-AUC loss allowed below the best promoted model
    floor_tolerance_brier: float = 0.0005  # total Brier increase allowed above it
    slice_min_positives: int = 30  # smaller slices are reported, never judged
    slice_auc_floor: float = 0.60  # a slice credibly below this ROC-AUC blocks
    slice_tolerance_auc: float = 0.01  # a slice blocks when credibly worse than the champion's by more than this


@dataclass(frozen=True)
class SliceEvidence:
    name: str
    positives: int
    challenger: Interval | None  # the challenger's ROC-AUC on the slice
    champion: Interval | None
    diff: Interval | None  # challenger - champion, paired


@dataclass(frozen=True)
class Evidence:
    """What the evaluation measured on the challenger's test window, for the gate."""

    challenger: dict[str, float]
    baselines: dict[str, dict[str, float]]
    vs_baselines: dict[str, dict[str, Interval]]  # baseline -> metric -> challenger - baseline
    champion_version: str | None  # set whenever a champion alias exists
    champion: dict[str, float] | None  # its metrics on this window; None when missing
    vs_champion: dict[str, Interval] | None
    champion_error: str | None = None  # why the champion's metrics are missing
    floor_version: str | None = None  # the best promoted model on this window (may be the champion)
    floor: dict[str, float] | None = None
    slices: list[SliceEvidence] = field(default_factory=list)
    behaviour_passed: bool = True


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    detail: str


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    fail_closed: bool = False  # refused because evidence was missing, not on merit

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "refused (fail closed)" if self.fail_closed else "rejected"


def _validate(
    thresholds: dict, candidate: dict[str, float], baseline: dict[str, float] | None = None
) -> tuple[bool, str]:
    """MLflow's model validation of `candidate` metrics (optionally against a `baseline` model's);
    (passed, MLflow's message)."""
    from mlflow import validate_evaluation_results
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    base = EvaluationResult(baseline, {}, run_id="gate") if baseline is not None else None
    try:
        validate_evaluation_results(thresholds, EvaluationResult(candidate, {}, run_id="gate"), base)
    except ModelValidationFailedException as failure:
        return False, failure.message
    return True, ""


def _rule(rule: str, thresholds: dict, candidate: dict[str, float], ok: str, bad: str, baseline=None) -> Check:
    passed, message = _validate(thresholds, candidate, baseline)
    return Check(rule, passed, ok if passed else f"{bad} [{message.strip()}]")


def _at_least(value: float):
    from mlflow.models import MetricThreshold

    return MetricThreshold(threshold=float(value), greater_is_better=True)


def _at_most(value: float):
    from mlflow.models import MetricThreshold

    return MetricThreshold(threshold=float(value), greater_is_better=False)


def _fmt(i: Interval) -> str:
    return f"{i.point:+.4f} ({i.low:+.4f} to {i.high:+.4f})"


def baseline_checks(e: Evidence, cfg: GateConfig) -> list[Check]:
    """MLflow's comparison against a baseline model: ROC-AUC >= baseline + `baseline_margin`."""
    from mlflow.models import MetricThreshold

    out = []
    for name, baseline in sorted(e.baselines.items()):
        gain = e.vs_baselines[name]["roc_auc"]
        out.append(
            _rule(
                f"beats baseline {name}",
                {"roc_auc": MetricThreshold(min_absolute_change=cfg.baseline_margin, greater_is_better=True)},
                {"roc_auc": e.challenger["roc_auc"]},
                f"ROC-AUC gain over {name} {_fmt(gain)}",
                f"does not beat baseline {name} by {cfg.baseline_margin} on ROC-AUC: gain {_fmt(gain)}",
                baseline={"roc_auc": baseline["roc_auc"]},
            )
        )
    return out


def champion_checks(e: Evidence) -> list[Check]:
    d = e.vs_champion
    return [
        _rule(
            "ROC-AUC vs champion",
            {"roc_auc_diff_upper": _at_least(0.0)},
            {"roc_auc_diff_upper": d["roc_auc"].high},
            f"ROC-AUC vs champion v{e.champion_version} {_fmt(d['roc_auc'])}: not credibly worse",
            f"ROC-AUC credibly below champion v{e.champion_version}: {_fmt(d['roc_auc'])}",
        ),
        _rule(
            "Brier vs champion",
            {"brier_diff_lower": _at_most(0.0)},
            {"brier_diff_lower": d["brier"].low},
            f"Brier vs champion {_fmt(d['brier'])}: not credibly worse",
            f"Brier credibly worse than champion v{e.champion_version}: {_fmt(d['brier'])}",
        ),
        _rule(
            "ECE vs champion",
            {"ece_diff_lower": _at_most(0.0)},
            {"ece_diff_lower": d["ece"].low},
            f"ECE vs champion {_fmt(d['ece'])}: not credibly worse",
            f"ECE credibly worse than champion v{e.champion_version}: {_fmt(d['ece'])}",
        ),
    ]


def floor_checks(e: Evidence, cfg: GateConfig) -> list[Check]:
    auc_floor = e.floor["roc_auc"] - cfg.floor_tolerance_auc
    brier_ceiling = e.floor["brier"] + cfg.floor_tolerance_brier
    return [
        _rule(
            "no walk-down (ROC-AUC)",
            {"roc_auc": _at_least(auc_floor)},
            {"roc_auc": e.challenger["roc_auc"]},
            f"ROC-AUC {e.challenger['roc_auc']:.4f} >= floor {auc_floor:.4f} (best promoted v{e.floor_version} "
            f"{e.floor['roc_auc']:.4f} - {cfg.floor_tolerance_auc})",
            f"ROC-AUC {e.challenger['roc_auc']:.4f} below the floor {auc_floor:.4f} (best promoted "
            f"v{e.floor_version} {e.floor['roc_auc']:.4f} - {cfg.floor_tolerance_auc}): walking down",
        ),
        _rule(
            "no walk-down (Brier)",
            {"brier": _at_most(brier_ceiling)},
            {"brier": e.challenger["brier"]},
            f"Brier {e.challenger['brier']:.5f} <= {brier_ceiling:.5f} (best promoted + tolerance)",
            f"Brier {e.challenger['brier']:.5f} above {brier_ceiling:.5f} (best promoted v{e.floor_version} "
            f"{e.floor['brier']:.5f} + {cfg.floor_tolerance_brier}): walking down",
        ),
    ]


def slice_checks(e: Evidence, cfg: GateConfig) -> tuple[list[Check], list[str]]:
    """Blocking checks for judged slices, and notes on the others (small, or weak for both)."""
    checks, notes, small = [], [], []
    for s in e.slices:
        if s.challenger is None or s.positives < cfg.slice_min_positives:
            small.append(f"{s.name} ({s.positives})")
            continue
        floor = _rule(
            f"slice {s.name} above floor",
            {"slice_auc_upper": _at_least(cfg.slice_auc_floor)},
            {"slice_auc_upper": s.challenger.high},
            f"slice {s.name} ROC-AUC {s.challenger.point:.3f}",
            f"slice {s.name} ROC-AUC credibly below {cfg.slice_auc_floor}: {s.challenger.point:.3f} "
            f"({s.challenger.low:.3f}-{s.challenger.high:.3f})",
        )
        checks.append(floor)
        if s.diff is not None:
            checks.append(
                _rule(
                    f"slice {s.name} vs champion",
                    {"slice_auc_diff_upper": _at_least(-cfg.slice_tolerance_auc)},
                    {"slice_auc_diff_upper": s.diff.high},
                    f"slice {s.name} vs champion {_fmt(s.diff)}",
                    f"slice {s.name}: ROC-AUC credibly more than {cfg.slice_tolerance_auc} below the champion's "
                    f"{_fmt(s.diff)}",
                )
            )
            if (
                s.champion is not None
                and s.champion.high < cfg.slice_auc_floor
                and s.challenger.high < cfg.slice_auc_floor
            ):
                notes.append(f"slice {s.name} is weak for champion and challenger alike")
    if small:
        notes.append(f"slices reported only (< {cfg.slice_min_positives} positives): {', '.join(small)}")
    return checks, notes


def decide(e: Evidence, cfg: GateConfig | None = None) -> Decision:
    """Promote only when every check passes; a champion without metrics refuses (fail closed)."""
    cfg = cfg or GateConfig()
    checks = baseline_checks(e, cfg)
    checks.append(
        _rule(
            "ECE ceiling",
            {"ece": _at_most(cfg.ece_ceiling)},
            {"ece": e.challenger["ece"]},
            f"ECE {e.challenger['ece']:.4f} <= {cfg.ece_ceiling}",
            f"ECE {e.challenger['ece']:.4f} above the ceiling {cfg.ece_ceiling}",
        )
    )
    fail_closed = e.champion_version is not None and (e.champion is None or e.vs_champion is None)
    if fail_closed:
        checks.append(
            Check(
                "champion metrics present",
                False,
                f"champion v{e.champion_version} exists but has no metrics on this test window "
                f"({e.champion_error or 'missing'}): refused (fail closed), never judged as a first model",
            )
        )
    elif e.champion is not None:
        checks += champion_checks(e)
    if e.floor_version is not None and e.floor is None:
        fail_closed = True
        checks.append(
            Check(
                "floor metrics present",
                False,
                f"the floor model v{e.floor_version} has no metrics on this window: refused (fail closed)",
            )
        )
    if e.floor is not None:
        checks += floor_checks(e, cfg)
    sliced, notes = slice_checks(e, cfg)
    checks += sliced
    checks.append(
        Check(
            "behavioural tests", e.behaviour_passed, "behavioural tests " + ("pass" if e.behaviour_passed else "failed")
        )
    )
    failed = [c.detail for c in checks if not c.passed]
    if not failed:
        first = (
            "first model: no champion yet" if e.champion_version is None else f"replaces champion v{e.champion_version}"
        )
        reasons = [first, *(c.detail for c in checks if not c.rule.startswith("slice")), *notes]
    else:
        reasons = [*failed, *notes]
    return Decision(not failed, reasons, checks, fail_closed)


def floor_after(
    promoted: bool, challenger: tuple[str, dict], floor: tuple[str, dict] | None
) -> tuple[str, dict] | None:
    """The best promoted model on this window after the decision: (version, metrics). A promoted
    challenger becomes the floor only if it beats the current one on ROC-AUC, so a chain of
    slightly worse promotions never lowers it."""
    if not promoted:
        return floor
    if floor is None or challenger[1]["roc_auc"] > floor[1]["roc_auc"]:
        return challenger
    return floor
