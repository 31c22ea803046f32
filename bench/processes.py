"""The edge and more than one process: the bare Tornado rows, and the same reads and a write
on ``microcourt serve --processes 2`` beside the one-process server (README)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench import raw
from bench.stack import Stack

if TYPE_CHECKING:
    from bench.run import Bench

#: the write row: one more allowed send of a subscribe-message template (an upsert, a read)
WRITE_PATH = "/api/v1/me/subscriptions"
WRITE_BODY = {"template_ids": ["dev-tmpl-case-update"]}


def runs(bench: Bench, tokens: Path) -> tuple[raw.WrkRun, raw.WrkRun, raw.WrkRun]:
    """wrk as the foundation rows run it: plain, with me.lua, with post.lua and the body."""
    o = bench.opts
    plain = raw.WrkRun(bench.wrk, o.threads, o.connections, o.duration)
    authed = replace(plain, script=raw.BENCH / "me.lua", script_args=(str(tokens),))
    body = bench.workdir / "subscriptions.json"
    body.write_text(json.dumps(WRITE_BODY))
    # slow answers of the writes (SecantusDB commits one at a time) measured, not dropped
    post = replace(
        plain, script=raw.BENCH / "post.lua", script_args=(str(tokens), str(body)), timeout=30
    )
    return plain, authed, post


def bare_row(bench: Bench, stack: Stack, processes: int, suffix: str = "") -> None:
    """The bare Tornado server on ``processes`` processes, measured, then stopped."""
    plain = raw.WrkRun(bench.wrk, bench.opts.threads, bench.opts.connections, bench.opts.duration)
    url = stack.bare(processes)
    bench.record_wrk(plain, f"bare tornado{suffix}", f"{url}/healthz", f"bare{suffix_key(suffix)}")
    stack.stop_one(f"bare{processes}")


def suffix_key(suffix: str) -> str:
    """ " 2p" -> "_2p", "" -> ""."""
    return f"_{suffix.strip()}" if suffix.strip() else ""


def two_processes(bench: Bench, stack: Stack, tokens: Path) -> None:
    """``serve --processes 2`` on the same database: bare, healthz, GET /me and the write."""
    with bench.stage("start microcourt serve --processes 2 on the same database"):
        api, _ = stack.serve("server2p", 2)
    plain, authed, post = runs(bench, tokens)
    bare_row(bench, stack, 2, " 2p")
    bench.record_wrk(plain, "healthz 2p", f"{api}/healthz", "healthz_2p")
    bench.record_wrk(authed, "GET /me 2p", f"{api}/api/v1/me", "me_2p")
    bench.record_wrk(post, "POST subscriptions 2p", f"{api}{WRITE_PATH}", "write_2p")
    with bench.stage("stop the two-process server"):
        stack.stop_one("server2p")
        if stack.exit_codes.get("server2p") != 0:
            raise RuntimeError(f"serve --processes 2 exited {stack.exit_codes.get('server2p')}")
