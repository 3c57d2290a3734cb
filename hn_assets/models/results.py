"""What the purchase-intent assets hand to each other through Dagster (asset values), instead of
finding each other's files by path conventions: a rerun of a step uses what its upstream produced."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainedChallenger:
    """A training run: its MLflow run, the registered challenger version and the data it used."""

    run_id: str
    version: str
    challenger: str  # the best candidate's name, e.g. lightgbm_2
    training_set_version: str
    training_set_path: str
    feature_service: str
    split: dict[str, str]
    features: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvaluatedChallenger:
    """The evaluation of one challenger beside the baselines and the champion, for the gate."""

    trained: TrainedChallenger
    models: dict[str, dict]  # metrics per model name on the test window; "champion" if any
    champion_version: str | None
    flagged_slices: list[str]
    behaviour_passed: bool
    report_dir: str
