"""The ``microcourt`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from server.config import ConfigError, load_settings
from server.embedded import EmbeddedDatabaseError
from server.observe import setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microcourt", description="移动微法院 backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (and, by default, its embedded services)")
    serve.add_argument("--host", help="listen address (server.host)")
    serve.add_argument("--port", type=int, help="listen port, 0 for any free one (server.port)")
    serve.add_argument("--data-dir", type=Path, help="embedded database and dev keys")
    serve.add_argument("--config", type=Path, help="config file (default: config.yaml)")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    server = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("data_dir", args.data_dir))
        if v is not None
    }
    return {"server": server} if server else {}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.config:
        os.environ["MICROCOURT_CONFIG"] = str(args.config)
    try:
        settings = load_settings(**_overrides(args))
    except ConfigError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 2
    setup_logging(
        settings.server.log_file, logging.DEBUG if settings.server.debug else logging.INFO
    )
    from server.main import main as serve

    try:
        asyncio.run(serve(settings))
    except ConfigError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 2
    except EmbeddedDatabaseError as e:
        print(f"microcourt: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
