"""The `hn` command: bad input is refused up front, and every error is one line with exit code 2."""

import subprocess
import sys

import pytest

from hn_assets.cli import build_parser, main
from hn_assets.simulator import SCENARIOS

REES46 = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00
2019-10-01 00:00:01 UTC,cart,3900821,2053013552326770905,appliances.water_heater,aqua,33.20,554748717,9333dfbd-b87a-4708
"""


def run(argv: list[str], capsys) -> tuple[int, str]:
    """main(argv) as the shell sees it: (exit code, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def assert_one_line(err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.fixture
def rees46_log(tmp_path):
    path = tmp_path / "rees46.csv"
    path.write_text(REES46)
    return path


def test_a_timezone_that_is_no_iana_name_is_refused_before_anything_lands(hn_home, rees46_log, capsys):
    code, err = run(["load", "rees46", str(rees46_log), "--timezone", "Berlin"], capsys)
    assert code == 2
    assert_one_line(err)
    assert "'Berlin'" in err and "Europe/Berlin" in err  # names the bad zone, suggests the real one
    landing = hn_home / "landing"
    assert not landing.exists() or not [p for p in landing.rglob("*") if p.is_file()]


def test_an_iana_timezone_is_accepted_and_lands(hn_home, rees46_log, capsys):
    assert main(["load", "rees46", str(rees46_log), "--timezone", "Europe/Berlin"]) == 0
    assert "landed 2 rees46 events" in capsys.readouterr().out
    assert build_parser().parse_args(["load", "rees46", "x"]).timezone == "UTC"  # the default is a zone too


def test_simulate_offers_its_scenarios(capsys):
    code, err = run(["simulate", "--scenario", "young_mobiles"], capsys)
    assert code == 2
    assert_one_line(err)
    assert all(f"'{name}'" in err for name in SCENARIOS)
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "{" + ",".join(SCENARIOS) + "}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["simulate", "--days", "many"], ["load", "kaggle", "x.csv"], ["load", "rees46", "missing.csv"]],
    ids=["no command", "not a number", "unknown source", "missing file"],
)
def test_usage_errors_are_one_line_with_exit_code_2(hn_home, argv, capsys):
    code, err = run(argv, capsys)
    assert code == 2
    assert_one_line(err)
    assert err.startswith("hn")


def test_an_unexpected_failure_is_one_line_naming_it(hn_home, tmp_path, capsys):
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    argv = ["simulate", "--out", str(not_a_folder), "--days", "1", "--users", "5", "--sessions-per-day", "3", "--quiet"]
    code, err = run(argv, capsys)
    assert code == 2
    assert_one_line(err)
    assert err.startswith("hn simulate: NotADirectoryError:") and str(not_a_folder) in err
    with pytest.raises(NotADirectoryError):  # and whoever debugs it can still see where it came from
        main(["--traceback", *argv])


def test_the_installed_command_prints_no_traceback(hn_home, rees46_log):
    """The process as a user runs it: stderr is the one line, nothing else."""
    result = subprocess.run(
        [sys.executable, "-m", "hn_assets.cli", "load", "rees46", str(rees46_log), "--timezone", "Mars/Olympus"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert_one_line(result.stderr)
    assert "Mars/Olympus" in result.stderr
