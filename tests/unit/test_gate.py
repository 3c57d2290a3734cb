"""The promotion gate (hn_assets/models/gate.py): each rule on hand-built evidence, and the
walk-down on a fixed test set through the real paired session bootstrap."""

from dataclasses import replace

import numpy as np
import pytest

from hn_assets.models.gate import Evidence, GateConfig, SliceEvidence, decide, floor_after
from hn_assets.models.metrics import Interval, bootstrap


def _i(point: float, half: float = 0.004) -> Interval:
    return Interval(point, point - half, point + half)


def _metrics(auc: float, brier: float = 0.030, ece: float = 0.010) -> dict:
    return {"roc_auc": auc, "pr_auc": 0.4, "brier": brier, "ece": ece}


BASELINES = {"rule_cart_add": _metrics(0.71, 0.040), "logistic_regression": _metrics(0.84, 0.034)}


def _vs(challenger: dict, other: dict, half: float = 0.004) -> dict:
    return {
        m: _i(challenger[m] - other[m], half if m == "roc_auc" else half / 10)
        for m in ("roc_auc", "pr_auc", "brier", "ece")
    }


def evidence(challenger: dict, champion: dict | None = None, champion_version: str | None = None, **kw) -> Evidence:
    """Evidence as the evaluation builds it; the champion is also the floor unless told otherwise."""
    base = {
        "challenger": challenger,
        "baselines": BASELINES,
        "vs_baselines": {name: _vs(challenger, b) for name, b in BASELINES.items()},
        "champion_version": champion_version or ("1" if champion else None),
        "champion": champion,
        "vs_champion": _vs(challenger, champion) if champion else None,
        "floor_version": champion_version or ("1" if champion else None),
        "floor": champion,
    }
    return Evidence(**{**base, **kw})


CHAMPION = _metrics(0.880)


def test_a_better_challenger_is_promoted():
    decision = decide(evidence(_metrics(0.890, 0.029), CHAMPION))
    assert decision.promote and decision.outcome == "promoted", decision.reasons
    assert decision.reasons[0] == "replaces champion v1"


def test_a_credibly_worse_challenger_is_refused_with_its_reason():
    decision = decide(evidence(_metrics(0.860), CHAMPION))
    assert not decision.promote and decision.outcome == "rejected" and not decision.fail_closed
    assert any("ROC-AUC credibly below champion v1" in r for r in decision.reasons)


def test_a_credibly_worse_brier_or_ece_is_refused():
    worse_brier = _metrics(0.880, brier=0.034)
    assert "Brier vs champion" in _failed(decide(evidence(worse_brier, CHAMPION)))
    worse_ece = _metrics(0.880, ece=0.018)
    assert "ECE vs champion" in _failed(decide(evidence(worse_ece, CHAMPION)))


def test_a_tie_within_the_noise_is_promoted_but_a_noisy_loss_is_not_blocked_by_the_champion_rule():
    slightly = _metrics(0.878)  # interval of the difference (-0.006, +0.002) straddles 0
    decision = decide(evidence(slightly, CHAMPION))
    assert "ROC-AUC vs champion" not in _failed(decision)


def test_ece_ceiling():
    cfg = GateConfig(ece_ceiling=0.02)
    assert "ECE ceiling" in _failed(decide(evidence(_metrics(0.90, ece=0.021)), cfg))
    assert "ECE ceiling" not in _failed(decide(evidence(_metrics(0.90, ece=0.019)), cfg))
    assert "ECE ceiling" not in _failed(decide(evidence(_metrics(0.90, ece=0.021)), GateConfig(ece_ceiling=0.03)))


def test_baselines_bind_after_the_first_model_too():
    """A challenger that merely ties logistic regression is refused, champion or not."""
    weak = _metrics(0.842)  # gain over logistic regression: 0.002, below the 0.005 margin
    first = decide(evidence(weak))
    assert not first.promote and "beats baseline logistic_regression" in _failed(first)
    weak_champion = _metrics(0.835)
    later = decide(evidence(weak, weak_champion))
    assert not later.promote and _failed(later) == ["beats baseline logistic_regression"]
    assert decide(evidence(_metrics(0.86))).promote  # a first model that beats both


def test_fail_closed_when_the_champion_has_no_metrics():
    missing = evidence(
        _metrics(0.95), champion_version="3", champion_error="cannot load models:/purchase_intent@champion"
    )
    decision = decide(missing)
    assert not decision.promote and decision.fail_closed and decision.outcome == "refused (fail closed)"
    assert "champion metrics present" in _failed(decision)
    assert "first model: no champion yet" not in decision.reasons
    assert any("cannot load" in r for r in decision.reasons)


def test_fail_closed_when_the_floor_model_has_no_metrics():
    decision = decide(evidence(_metrics(0.95), CHAMPION, floor_version="1", floor=None))
    assert decision.fail_closed and "floor metrics present" in _failed(decision)


def _slice(name, challenger, champion, diff_half=0.03, positives=80):
    ch, cp = _i(challenger, 0.03), _i(champion, 0.03) if champion is not None else None
    diff = _i(challenger - champion, diff_half) if champion is not None else None
    return SliceEvidence(name, positives, ch, cp, diff)


def test_slice_rule_is_relative_to_the_champion():
    good = _metrics(0.89)
    both_weak = replace(evidence(good, CHAMPION), slices=[_slice("channel=tiktok_ads", 0.66, 0.66)])
    decision = decide(both_weak)
    assert decision.promote, decision.reasons  # equally weak for both: reported, not a block
    worse_there = replace(evidence(good, CHAMPION), slices=[_slice("channel=tiktok_ads", 0.62, 0.72, diff_half=0.02)])
    assert "slice channel=tiktok_ads vs champion" in _failed(decide(worse_there))
    below_floor = replace(evidence(good, CHAMPION), slices=[_slice("device=tablet", 0.50, 0.51)])
    assert "slice device=tablet above floor" in _failed(decide(below_floor))
    tiny = replace(evidence(good, CHAMPION), slices=[_slice("country=AT", 0.40, 0.80, positives=5)])
    assert decide(tiny).promote  # too few positives to judge: reported only
    both_below = replace(evidence(good, CHAMPION), slices=[_slice("device=tablet", 0.55, 0.55)])
    assert any("weak for champion and challenger alike" in r for r in decide(both_below).reasons)


def test_behavioural_failure_refuses():
    assert "behavioural tests" in _failed(decide(evidence(_metrics(0.9), CHAMPION, behaviour_passed=False)))


def test_each_rule_is_checked_by_mlflow_validation():
    decision = decide(evidence(_metrics(0.860), CHAMPION))
    detail = next(c.detail for c in decision.checks if c.rule == "ROC-AUC vs champion")
    assert "roc_auc_diff_upper value threshold check failed" in detail  # MLflow's own message


def _failed(decision) -> list[str]:
    return [c.rule for c in decision.checks if not c.passed]


# ---- the walk-down, on a fixed test set through the real bootstrap ---------------------------------
def _walk(steps: int, cfg: GateConfig, seed: int = 4) -> tuple[list[float], list[bool]]:
    """A champion, then `steps` challengers each a little noisier than the last (each loss within
    the noise of one comparison), judged on one fixed test set. Returns the champion's AUC after
    each step and the decisions."""
    rng = np.random.default_rng(seed)
    n = 6000
    z = rng.normal(0, 1, n)
    y = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-(2.2 * z - 3)))).astype(int)
    sessions = np.arange(n) // 2
    noise = rng.normal(0, 1, (steps + 2, n))
    score = lambda k: 1 / (1 + np.exp(-(2.2 * (z + (0.40 + 0.03 * k) * noise[k]) - 3)))
    baseline = {"logistic_regression": 1 / (1 + np.exp(-(z + 2.5 * noise[-1])))}
    champion, floor = ("0", score(0)), None
    history, decisions = [], []
    for k in range(1, steps + 1):
        scores = {"challenger": score(k), "champion": champion[1], **baseline}
        pairs = [("challenger", "champion"), ("challenger", "logistic_regression")]
        b = bootstrap(y, scores, sessions, pairs=pairs, rounds=200, seed=k)
        point = {m: b.models["overall"][m] for m in scores}
        metrics = {m: {k2: i.point for k2, i in point[m].items()} for m in scores}
        floor = floor or ("0", metrics["champion"])
        best_floor = max([floor, ("champion", metrics["champion"])], key=lambda vm: vm[1]["roc_auc"])
        e = Evidence(
            challenger=metrics["challenger"],
            baselines={"logistic_regression": metrics["logistic_regression"]},
            vs_baselines={"logistic_regression": b.diffs["overall"][("challenger", "logistic_regression")]},
            champion_version=champion[0],
            champion=metrics["champion"],
            vs_champion=b.diffs["overall"][("challenger", "champion")],
            floor_version=best_floor[0],
            floor=best_floor[1],
        )
        decision = decide(e, cfg)
        decisions.append(decision)
        floor = floor_after(decision.promote, (str(k), metrics["challenger"]), floor)
        if decision.promote:
            champion = (str(k), scores["challenger"])
            history.append(metrics["challenger"]["roc_auc"])
        else:
            history.append(metrics["champion"]["roc_auc"])
    start = bootstrap(y, {"c": score(0)}, None, rounds=2).models["overall"]["c"]["roc_auc"].point
    return [start, *history], decisions


LENIENT = GateConfig(ece_ceiling=1.0)  # calibration is not what this walk is about


def test_five_successively_worse_challengers_never_lower_the_champion_by_more_than_the_tolerance():
    cfg = replace(LENIENT, floor_tolerance_auc=0.005, floor_tolerance_brier=1.0)
    aucs, decisions = _walk(5, cfg)
    assert aucs[0] - min(aucs) <= cfg.floor_tolerance_auc + 1e-12, aucs
    # The floor stopped it: at least one challenger was refused by the floor alone (the comparison
    # with the champion of the day found no credible loss).
    refused = [d for d in decisions if not d.promote]
    assert refused and all("no walk-down (ROC-AUC)" in _failed(d) for d in refused)
    assert any(_failed(d) == ["no walk-down (ROC-AUC)"] for d in refused)


def test_without_the_floor_the_same_challengers_walk_the_champion_down():
    """The walk-down test can fail: with an unbounded tolerance the step-by-step comparison with the
    champion of the day lets the champion slide well past the tolerance."""
    aucs, decisions = _walk(5, replace(LENIENT, floor_tolerance_auc=1.0, floor_tolerance_brier=1.0))
    assert all(d.promote for d in decisions)
    assert aucs[0] - min(aucs) > 0.005, aucs


def test_floor_after_keeps_the_best_promoted_model():
    floor = ("1", _metrics(0.88))
    assert floor_after(True, ("2", _metrics(0.87)), floor) == floor
    assert floor_after(True, ("3", _metrics(0.89)), floor)[0] == "3"
    assert floor_after(False, ("4", _metrics(0.95)), floor) == floor
    assert floor_after(True, ("5", _metrics(0.80)), None)[0] == "5"


@pytest.mark.parametrize("field", ["ece_ceiling", "floor_tolerance_auc", "slice_auc_floor", "baseline_margin"])
def test_every_threshold_is_configurable_in_the_dagster_config(field):
    from hn_assets.defs.models.purchase_intent import PromotionConfig

    assert PromotionConfig.model_fields[field].default == getattr(GateConfig(), field)


def test_an_unloadable_champion_reaches_the_gate_as_missing_metrics():
    """The evaluation asset's loader: a champion alias whose model cannot be loaded is reported as an
    error, not dropped (which would make the challenger look like a first model)."""
    from types import SimpleNamespace

    from hn_assets.defs.models.purchase_intent import _registered

    class Registry:
        name = "purchase_intent"

        def load_version(self, version):
            return f"model v{version}"

        def version_for_alias(self, alias):
            return SimpleNamespace(version="3", run_id="r3")

        def load_alias(self, alias):
            raise OSError("artifact store unreachable")

        def floor_version(self):
            return "3"

    registered, champion, floor, errors = _registered(Registry(), SimpleNamespace(version="4"))
    assert set(registered) == {"challenger"} and champion.version == "3"
    assert "cannot load models:/purchase_intent@champion" in errors["champion"]
    e = evidence(_metrics(0.95), champion_version="3", champion_error=errors["champion"])
    assert decide(e).fail_closed
