"""What the purchase-intent assets hand to each other through Dagster (asset values), instead of
finding each other's files by path conventions: a rerun of a step uses what its upstream produced."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainedChallenger:
    """A training run: its MLflow run, the registered challenger version and the data it used. The
    run also holds the split as trained (`registry.SPLIT_ARTIFACT`: session -> side, placed by each
    session's real end), so every later step sees exactly the sessions the model was tested on."""

    run_id: str
    version: str
    challenger: str  # the best candidate's name, e.g. lightgbm_2
    training_set_version: str
    training_set_path: str
    feature_service: str
    split: dict[str, str]
    features: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainedUplift:
    """The discount's uplift model of a training run (an X-learner pickled into the run), or why
    there is none (no randomised offers in the data)."""

    run_id: str
    artifact: str | None  # None when not estimated
    reason: str
    sessions: dict[str, int] = field(default_factory=dict)  # per side: sessions and treated


@dataclass(frozen=True)
class EvaluatedChallenger:
    """The evaluation of one challenger beside the baselines, the champion and the floor model, for
    the gate; `evaluation` is the whole `evaluation.Evaluation` (the gate's evidence is in it)."""

    trained: TrainedChallenger
    evaluation: object
    champion_version: str | None
    report_dir: str
    report_header: dict[str, str] = field(default_factory=dict)
