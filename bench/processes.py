"""The edge and more than one process: the bare Tornado rows, and the same reads and a write
on ``microcourt serve --processes 2`` beside the one-process server (README)."""

from __future__ import annotations

import json
import statistics
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


#: the edge rows' loads, each this many times, in turns (bare, healthz, /me; then backwards):
#: on a shared machine one load may fall in another's busy second, so each row is the median
ROUNDS = 3


def edge_rows(bench: Bench, stack: Stack, plain: raw.WrkRun, authed: raw.WrkRun) -> None:
    """bare tornado, healthz and GET /me, on one process each, loaded in turns ``ROUNDS``
    times with the same wrk options; each row the load of median requests/s, every
    round's figures in the notes."""
    o = bench.opts
    loads = [
        ("bare tornado", "bare", plain, f"{stack.bare(1)}/healthz"),
        ("healthz", "healthz", plain, f"{stack.api}/healthz"),
        ("GET /me", "me", authed, f"{stack.api}/api/v1/me"),
    ]
    runs: dict[str, list[raw.LoadResult]] = {key: [] for _, key, _, _ in loads}
    for turn in range(ROUNDS):
        for name, key, run, url in loads if turn % 2 == 0 else loads[::-1]:
            bench.say_load(name)
            try:  # each server warmed up before its first load only
                result, output = run.run(name, url, o.warmup if turn == 0 else 0)
            except OSError as e:
                result, output = raw.LoadResult(name, problem=f"cannot run wrk: {e}"), ""
            runs[key].append(result)
            bench.wrk_output[f"{name} #{turn + 1}"] = output
    stack.stop_one("bare1")
    for name, key, _, _ in loads:
        found = runs[key]
        failed = [r for r in found if not r.ok]
        bench.record(failed[0] if failed else _median(found), key)
        bench.fact(f"{name} requests/s by round", [round(r.rps, 1) for r in found])
    _note_rounds(bench, runs)


def _median(results: list[raw.LoadResult]) -> raw.LoadResult:
    """The load of median requests/s (ROUNDS is odd)."""
    ranked = sorted(results, key=lambda r: r.rps)
    return ranked[len(ranked) // 2]


def _note_rounds(bench: Bench, runs: dict[str, list[raw.LoadResult]]) -> None:
    rounds = zip(runs["bare"], runs["healthz"], runs["me"], strict=True)
    shown = [
        f"{b.rps:.0f}/{h.rps:.0f}/{m.rps:.0f} ({h.rps / b.rps:.2f}, {m.rps / h.rps:.2f})"
        for b, h, m in rounds
        if b.rps and h.rps
    ]
    bench.note(
        f"edge rows in {ROUNDS} rounds, bare/healthz/me requests/s (healthz÷bare, me÷healthz): "
        + "; ".join(shown)
        + "; the table's rows are each row's median (per-round ratios' medians "
        + f"{_median_ratio(runs, 'healthz', 'bare')}, {_median_ratio(runs, 'me', 'healthz')})"
    )


def _median_ratio(runs: dict[str, list[raw.LoadResult]], num: str, den: str) -> str:
    ratios = [n.rps / d.rps for n, d in zip(runs[num], runs[den], strict=True) if d.rps]
    return f"{statistics.median(ratios):.2f}" if ratios else "-"


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
