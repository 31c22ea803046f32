"""The ``microcourt`` command."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Any

from server.platform.config import ConfigError, Settings, load_settings
from server.platform.observe import setup_logging


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {text}")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microcourt", description="移动微法院 backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (and, by default, its embedded services)")
    serve.add_argument("--host", help="listen address (server.host)")
    serve.add_argument("--port", type=int, help="listen port, 0 for any free one (server.port)")
    serve.add_argument("--data-dir", type=Path, help="embedded database and dev keys")
    serve.add_argument("--config", type=Path, help="config file (default: config.yaml)")
    serve.add_argument(
        "--processes",
        type=_positive,
        help="N server processes on one port and one database, under a parent that keeps the "
        "embedded database and the emulator (without it: one process does all); "
        "see server/processes.py",
    )
    rec = sub.add_parser(
        "reconcile",
        help="对账: compare a day's WeChat Pay trade bill with our payments and refunds",
        description="Lists what WeChat Pay says was paid (or refunded) on the day and we do "
        "not, and the reverse; mends the first kind unless --dry-run. Needs mongodb.uri and a "
        "real merchant (wechatpay.*). Exit 0: nothing found; 1: findings (JSON on stdout).",
    )
    rec.add_argument("--date", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    rec.add_argument("--dry-run", action="store_true", help="report only, mend nothing")
    rec.add_argument("--config", type=Path, help="config file (default: config.yaml)")
    roll = sub.add_parser(
        "rollups",
        help="the work-order statistics' rollups: rebuild them from the orders",
        description="rebuild: every rollup cell built again from the work orders (for orders "
        "stored before the rollups existed); idempotent. Run it with the server stopped.",
    )
    roll.add_argument("action", choices=["rebuild"])
    roll.add_argument("--config", type=Path, help="config file (default: config.yaml)")
    roll.add_argument("--data-dir", type=Path, help="embedded database (server.data_dir)")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    server = {
        k: v
        for k, v in (
            ("host", getattr(args, "host", None)),
            ("port", getattr(args, "port", None)),
            ("data_dir", args.data_dir),
        )
        if v is not None
    }
    return {"server": server} if server else {}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.config:
        os.environ["MICROCOURT_CONFIG"] = str(args.config)
    try:
        overrides = _overrides(args) if args.command in ("serve", "rollups") else {}
        settings = load_settings(**overrides)
    except ConfigError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 2
    if args.command == "reconcile":
        return _reconcile(settings, args.date, mend=not args.dry_run)
    if args.command == "rollups":
        return _rollups(settings)
    setup_logging(
        settings.server.log_file, logging.DEBUG if settings.server.debug else logging.INFO
    )
    from server.main import main as serve

    try:
        if args.processes is not None:
            from server.processes import supervise

            return asyncio.run(supervise(settings, args.processes))
        asyncio.run(serve(settings))
    except ConfigError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not _embedded_failed(e):
            raise
        print(f"microcourt: {e}", file=sys.stderr)
        return 1
    return 0


def _embedded_failed(e: Exception) -> bool:
    """The embedded database would not start: the development stack, imported only when
    something is embedded or emulated, is then loaded."""
    devstack = sys.modules.get("server.devstack")
    return devstack is not None and isinstance(e, devstack.EmbeddedDatabaseError)


def _reconcile(settings: Settings, day: dt.date, *, mend: bool) -> int:
    setup_logging(settings.server.log_file, logging.INFO)
    if settings.mongodb.embedded or settings.wechatpay.emulated:
        print(
            "microcourt: reconcile needs mongodb.uri and a real merchant (wechatpay.mchid); "
            "with the embedded defaults use POST /api/v1/admin/reconcile on the running server",
            file=sys.stderr,
        )
        return 2
    from server.fees.reconcile import reconcile_once

    try:
        report = asyncio.run(reconcile_once(settings, day, mend=mend))
    except ConfigError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2))
    return 0 if report.clean else 1


def _rollups(settings: Settings) -> int:
    setup_logging(settings.server.log_file, logging.INFO)
    from server.workorders.backfill import rebuild_once

    try:
        cells = asyncio.run(rebuild_once(settings))
    except Exception as e:
        if not _embedded_failed(e):
            raise
        print(f"microcourt: {e}", file=sys.stderr)
        return 1
    print(f"rollups rebuilt: {cells} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
