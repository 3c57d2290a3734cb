"""The evaluation on a known sample and its report: a self-contained page with real tables and
charts, the gate's decision, and a look at it in headless Chromium (skipped when none is installed;
docs/models.md, "Looking at the report")."""

import re
import shutil
import subprocess

import polars as pl
import pytest

from hn_assets.models.evaluation import evaluate
from hn_assets.models.gate import decide
from hn_assets.models.report import render
from hn_assets.models.split import split_with_both_classes
from hn_assets.models.training import train_all
from tests.unit.test_model_foundations import synthetic_snapshots


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    frame, sessions = synthetic_snapshots(sessions=2500, seed=7)
    split_frame, _ = split_with_both_classes(frame, "purchased", sessions)
    result = train_all(split_frame, budget=1, seed=7)
    test = split_frame.filter(pl.col("split") == "test").with_columns(pl.lit("DE").alias("country"))
    lightgbm = next(c for c in result.candidates if c.kind == "lightgbm")
    xgboost = next(c for c in result.candidates if c.kind == "xgboost")
    candidates = {c.name: c for c in result.candidates + result.baselines}
    ev = evaluate(test, candidates, lightgbm.name, {"challenger": lightgbm, "champion": xgboost}, champion_version="1")
    folder = tmp_path_factory.mktemp("report")
    decision = decide(ev.evidence)
    md, html = render(ev, decision, folder, {"challenger": "v2", "champion": "v1"})
    return ev, decision, html, md


def test_intervals_are_session_level_and_paired(evaluated):
    ev, *_ = evaluated
    assert ev.widths["session"]["roc_auc"] > ev.widths["row"]["roc_auc"]
    point, low, high = ev.diffs["challenger - champion"]["roc_auc"]
    assert low <= point <= high
    assert ev.evidence.champion is not None and ev.evidence.vs_champion is not None
    assert {s.name for s in ev.evidence.slices} >= {"device=mobile", "known user"}


def test_the_report_is_a_self_contained_page_with_tables_and_charts(evaluated):
    ev, decision, html, md = evaluated
    page = html.read_text()
    assert "<pre>" not in page and page.count("<table>") >= 6 and page.count("<svg") >= 5
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched: works offline
    assert "<script" not in page
    for heading in ("Promotion gate", "ROC curve", "Precision-recall", "Reliability", "Lift by score decile", "Slices"):
        assert heading in page, heading
    assert decision.outcome.upper().split(" ")[0] in page
    assert "| model | ROC-AUC (95% CI)" in md.read_text()


def test_the_report_renders_in_headless_chromium(evaluated, tmp_path):
    """What a reader sees: Chromium renders the page to a full-height screenshot without errors."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium): the browser check is manual")
    _, _, html, _ = evaluated
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1280,4000",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 50_000
