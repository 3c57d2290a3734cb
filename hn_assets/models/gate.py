"""The promotion gate: when may a challenger replace the champion?"""

from __future__ import annotations

from dataclasses import dataclass, field

AUC_TOLERANCE = 0.005  # "ties within a set tolerance"
BRIER_TOLERANCE = 0.0005


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide(
    challenger: dict,
    champion: dict | None,
    baselines: dict[str, dict],
    flagged_slices: list[str],
    behaviour_passed: bool,
) -> Decision:
    """Metrics are dicts with roc_auc and brier on the challenger's test window."""
    reasons, ok = [], True
    if champion is None:  # the first model: it has to beat the baselines
        for name, baseline in baselines.items():
            if challenger["roc_auc"] <= baseline["roc_auc"]:
                ok = False
                reasons.append(f"first model does not beat baseline {name} on ROC-AUC")
        if ok:
            reasons.append("first model beats every baseline")
        if flagged_slices:
            reasons.append(f"flagged slices (reported; they block later promotions): {', '.join(flagged_slices)}")
    else:
        if challenger["roc_auc"] < champion["roc_auc"] - AUC_TOLERANCE:
            ok = False
            reasons.append(f"ROC-AUC {challenger['roc_auc']:.4f} below champion {champion['roc_auc']:.4f}")
        else:
            reasons.append(f"ROC-AUC {challenger['roc_auc']:.4f} vs champion {champion['roc_auc']:.4f}: not worse")
        if challenger["brier"] > champion["brier"] + BRIER_TOLERANCE:
            ok = False
            reasons.append(f"Brier {challenger['brier']:.5f} worse than champion {champion['brier']:.5f}")
        if flagged_slices:
            ok = False
            reasons.append(f"flagged slices: {', '.join(flagged_slices)}")
    if not behaviour_passed:
        ok = False
        reasons.append("behavioural tests failed")
    return Decision(ok, reasons)
