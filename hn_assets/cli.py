"""`hn`: the platform's command line (simulate a store, replay it live, land public logs, set up the environment)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zoneinfo
from datetime import date
from pathlib import Path

from hn_assets.settings import REPO_ROOT, Settings, get_settings
from hn_assets.simulator import SCENARIOS


class CliError(Exception):
    """An error the user can fix from its message alone (printed without the exception's type)."""


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`hn load: argument --timezone: ...`), exit code 2.

    argparse's default prints the whole usage block first; the one line says what is wrong and
    `--help` still gives the usage.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def iana_timezone(name: str) -> str:
    """argparse type: an IANA zone name (Europe/Berlin), checked before a single row is read.

    A misspelt zone used to be accepted and every landed row was then quarantined for it. The
    names are zoneinfo's list rather than whatever `ZoneInfo(name)` can open: that also opens
    files of the tz database that are no zone (`posixrules`) and fails with varied errors.
    """
    zones = zoneinfo.available_timezones()
    if name in zones:
        return name
    guesses = sorted(z for z in zones if z.rsplit("/", 1)[-1].lower() == name.lower())
    hint = f"did you mean {' or '.join(guesses)}?" if guesses else "e.g. Europe/Berlin, America/New_York, UTC"
    raise argparse.ArgumentTypeError(f"unknown IANA timezone {name!r} ({hint})")


def ensure_instance(settings: Settings) -> Path:
    """DAGSTER_HOME under HN_HOME holding the repo's dagster.yaml (Dagster reads the instance from there)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source, target = REPO_ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    os.environ["HN_HOME"] = str(settings.home)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_simulate(args: argparse.Namespace) -> int:
    from hn_assets.simulator import SimulationConfig, simulate

    settings = get_settings()
    settings.ensure_dirs()
    cfg = SimulationConfig(
        seed=args.seed,
        start_date=args.start_date,
        days=args.days,
        users=args.users,
        products=args.products,
        sessions_per_day=args.sessions_per_day,
        scenario=args.scenario,
        drift_start_day=args.drift_start_day,
        dirty_rate=args.dirty_rate,
    )
    out = Path(args.out) if args.out else settings.home
    summary = simulate(cfg, out, progress=not args.quiet)
    from hn_assets.replay import record_store

    record_store(cfg, out)  # what `hn replay` needs to continue this store
    print(
        f"simulated {summary.days} days: {summary.sessions:,} sessions, {summary.events:,} events, "
        f"{summary.purchases:,} purchases ({summary.conversion_rate:.2%} of human sessions), "
        f"{summary.files} landing files under {out / 'landing'}"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Continues the simulated store in HN_HOME for --days days, driving a running scoring service
    (hn_assets/replay.py); the same sessions land as batch files."""
    from hn_assets.replay import replay

    settings = get_settings()
    settings.ensure_dirs()
    try:
        result = replay(
            settings.home,
            args.url,
            args.days,
            args.scenario,
            speed=args.speed,
            api_key=args.api_key,
            concurrency=args.concurrency,
            progress=not args.quiet,
        )
    except (ConnectionError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    errors = sum(result.errors.values())
    versions = ", ".join(f"v{v} x{n}" for v, n in sorted(result.model_versions.items())) or "none"
    print(
        f"replayed {result.days} day{'s' if result.days != 1 else ''} from {result.first_day} ({result.scenario}): "
        f"{result.sessions:,} sessions, "
        f"{result.events_accepted:,}/{result.events_posted:,} events accepted, {result.scores:,} scores "
        f"({result.fallbacks:,} fallbacks; model {versions}), {errors:,} failed requests, "
        f"{len(result.landing_files)} landing files, {result.wall_seconds:.0f} s"
    )
    for line in result.first_errors:
        print(f"  {line}", file=sys.stderr)
    return 0 if not errors else 1


def cmd_load(args: argparse.Namespace) -> int:
    from hn_assets.adapters import ADAPTERS

    settings = get_settings()
    settings.ensure_dirs()
    path = Path(args.path)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        result = ADAPTERS[args.source](path, settings.landing_dir, timezone=args.timezone)
    except ValueError as exc:  # the adapters' word on a log they cannot read
        raise CliError(str(exc)) from exc
    print(f"landed {result.rows:,} {args.source} events ({result.flagged:,} flagged for quarantine) at {result.path}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.ensure_dirs()
    home = ensure_instance(settings)
    print(f"export HN_HOME={settings.home}\nexport DAGSTER_HOME={home}")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Runs the `erase_customer` job in process, so the Dagster UI lists the run beside the others.

    Only the customer's pseudonym goes into the run config (Dagster stores run config; the raw id
    is hashed here and never written). Rejected: calling the erasure core directly, which would
    leave no run, no logs and no pool slots (the vacuum must not overlap an ingest).
    """
    import contextlib
    import io
    import warnings

    import dagster as dg

    from hn_assets.definitions import defs
    from hn_assets.erasure.registry import scrub
    from hn_assets.ingest.privacy import Pseudonymiser

    customer = args.customer_id.strip()
    if not customer:
        raise CliError("the customer id is empty")
    settings = get_settings()
    settings.ensure_dirs()
    ensure_instance(settings)
    token = Pseudonymiser(settings.pseudonym_key).token(customer)
    config = {"customer_token": token, "reason": scrub(args.reason, customer)}
    for notice in (dg.BetaWarning, dg.PreviewWarning):  # API-stability notices: nothing the user can act on
        warnings.filterwarnings("ignore", category=notice)
    job = defs().resolve_job_def("erase_customer")
    with dg.DagsterInstance.get() as instance:
        # The run's events go to the instance (the UI shows them); the terminal gets one line.
        quiet = {"console": {"config": {"log_level": "CRITICAL"}}}
        run_config = {"ops": {"erase_from_lake": {"config": config}}, "loggers": quiet}
        with contextlib.redirect_stdout(io.StringIO()):  # dbt's log lines (dbt keeps them in its logs/dbt.log)
            result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    report = settings.reports_dir / "erasure" / result.run_id / "erasure.md"
    if not result.success:
        failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
        message = (failures or ["the erase_customer run failed"])[0].split("Failure: ", 1)[-1].strip()
        raise CliError(f"{message} (report: {report})")
    removed = {k: v for k, v in result.output_for_node("erasure_report")["removed"].items() if v}
    counts = ", ".join(f"{store} {n}" for store, n in removed.items()) or "nothing found in any store"
    print(f"erased customer {token}: {counts}; report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="hn", description=__doc__)
    parser.add_argument("--traceback", action="store_true", help="on an error, show the full traceback")
    sub = parser.add_subparsers(dest="command", required=True)  # subcommands get the same parser class

    sim = sub.add_parser("simulate", help="generate the H.N store's landing files")
    sim.add_argument("--days", type=int, default=42)
    sim.add_argument("--users", type=int, default=4000)
    sim.add_argument("--products", type=int, default=160)
    sim.add_argument("--sessions-per-day", type=int, default=1200)
    sim.add_argument("--scenario", default="baseline", choices=SCENARIOS, help="the story the store tells")
    sim.add_argument("--drift-start-day", type=int, default=28)
    sim.add_argument("--dirty-rate", type=float, default=0.01)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--start-date", type=date.fromisoformat, default=date(2026, 9, 1))
    sim.add_argument("--out", help="output root (default: HN_HOME); files go to OUT/landing/<feed>/")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=cmd_simulate)

    rep = sub.add_parser("replay", help="continue the simulated store live against a running scoring service")
    rep.add_argument("--url", default="http://127.0.0.1:3001", help="the service (default: make serve's)")
    rep.add_argument("--days", type=int, default=7, help="days to add after the store's last simulated day")
    rep.add_argument("--scenario", default="baseline", choices=SCENARIOS, help="drifts from the first new day")
    rep.add_argument(
        "--speed", type=float, default=1440.0, help="simulated seconds per second (1440: a day a minute; 0: no waits)"
    )
    rep.add_argument(
        "--api-key", default=os.environ.get("HN_SERVING_API_KEY"), help="X-API-Key (default: $HN_SERVING_API_KEY)"
    )
    rep.add_argument("--concurrency", type=int, default=16, help="requests in flight at most")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.set_defaults(func=cmd_replay)

    load = sub.add_parser("load", help="land a public event log through its adapter")
    load.add_argument("source", choices=("rees46", "retailrocket"))
    load.add_argument("path")
    load.add_argument("--timezone", default="UTC", type=iana_timezone, help="IANA timezone of the log's visitors")
    load.set_defaults(func=cmd_load)

    env = sub.add_parser("env", help='print HN_HOME/DAGSTER_HOME exports (eval "$(hn env)")')
    env.set_defaults(func=cmd_env)

    erase = sub.add_parser("erase", help="erase one customer from every store (the erase_customer job)")
    erase.add_argument("customer_id", help="the customer's id as the landing files hold it")
    erase.add_argument("--reason", default="", help="why (e.g. the request's reference); kept in the report")
    erase.set_defaults(func=cmd_erase)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; any error ends as one line on stderr and exit code 2, never a traceback.

    A traceback tells the user of a command nothing they can act on; `hn --traceback ...` shows it
    to whoever debugs the code (rejected: always hiding it, which leaves a bug undiagnosable).
    Usage errors exit from the parser with the same one-line form.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        print(f"{parser.prog} {args.command}: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: Exception) -> str:
    """The error as one line: its message with line breaks folded, named by its type unless a CliError."""
    message = " ".join(str(exc).split())
    if isinstance(exc, CliError):
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
