"""`hn`: the platform's command line (simulate a store, land public logs, set up the environment)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import date
from pathlib import Path

from hn_assets.settings import REPO_ROOT, Settings, get_settings


def ensure_instance(settings: Settings) -> Path:
    """DAGSTER_HOME under HN_HOME holding the repo's dagster.yaml (Dagster reads it only from there)."""
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
    print(
        f"simulated {summary.days} days: {summary.sessions:,} sessions, {summary.events:,} events, "
        f"{summary.purchases:,} purchases ({summary.conversion_rate:.2%} of human sessions), "
        f"{summary.files} landing files under {out / 'landing'}"
    )
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from hn_assets.adapters import ADAPTERS

    settings = get_settings()
    settings.ensure_dirs()
    path = Path(args.path)
    if not path.is_file():
        print(f"hn load: no such file: {path}", file=sys.stderr)
        return 2
    try:
        result = ADAPTERS[args.source](path, settings.landing_dir, timezone=args.timezone)
    except ValueError as exc:
        print(f"hn load: {exc}", file=sys.stderr)
        return 2
    print(f"landed {result.rows:,} {args.source} events ({result.flagged:,} flagged for quarantine) at {result.path}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.ensure_dirs()
    home = ensure_instance(settings)
    print(f"export HN_HOME={settings.home}\nexport DAGSTER_HOME={home}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="generate the H.N store's landing files")
    sim.add_argument("--days", type=int, default=42)
    sim.add_argument("--users", type=int, default=4000)
    sim.add_argument("--products", type=int, default=160)
    sim.add_argument("--sessions-per-day", type=int, default=1200)
    sim.add_argument("--scenario", default="baseline", help="baseline | young_mobile_influx | price_shock")
    sim.add_argument("--drift-start-day", type=int, default=28)
    sim.add_argument("--dirty-rate", type=float, default=0.01)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--start-date", type=date.fromisoformat, default=date(2026, 9, 1))
    sim.add_argument("--out", help="output root (default: HN_HOME); files go to OUT/landing/<feed>/")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=cmd_simulate)

    load = sub.add_parser("load", help="land a public event log through its adapter")
    load.add_argument("source", choices=("rees46", "retailrocket"))
    load.add_argument("path")
    load.add_argument("--timezone", default="UTC", help="IANA timezone of the log's visitors")
    load.set_defaults(func=cmd_load)

    env = sub.add_parser("env", help='print HN_HOME/DAGSTER_HOME exports (eval "$(hn env)")')
    env.set_defaults(func=cmd_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
