"""After the run: the verdicts on the server's log and exit, the table, the JSON file."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.loadgen import wrk_version
from bench.report import (
    RATIO_DEFINITIONS,
    Stage,
    scaling,
    summarize_log,
    table,
    target_line,
    write_json,
)
from bench.report import ratios as compute_ratios

if TYPE_CHECKING:
    from bench.run import Bench

OUT = Path(__file__).resolve().parent / "out"


def finish(bench: Bench, aborted: str) -> int:
    o = bench.opts
    log = summarize_log(bench.workdir / "server.log")
    bench.stages.append(check_log(log.levels, log.statuses))
    bench.stages.append(check_exit(bench.server_exit))
    OUT.mkdir(parents=True, exist_ok=True)
    problems = OUT / ("smoke-server-problems.jsonl" if o.smoke else "server-problems.jsonl")
    problems.write_text("".join(f"{line}\n" for line in log.problems))
    header = (
        f"microcourt bench{' (smoke)' if o.smoke else ''}: {o.users} users, "
        f"{o.tokens} signed in, {o.filings} pending filings, {o.filers} filers, "
        f"{o.cases}{f' then {o.cases_large}' if o.cases_large else ''} cases, "
        f"{o.connections} connections, {o.duration} s per load after {o.warmup} s warm-up, "
        f"wrk {min(o.threads, o.connections)} threads, {os.cpu_count()} CPUs"
    )
    target, met = target_line(bench.results)
    print("\n" + table(bench.results, header, o.filings, case_sizes(bench)) + "\n" + target)
    print("".join(f"- {note}\n" for note in bench.notes))
    failed = [s for s in bench.stages if not s.ok]
    print(f"stages: {len(bench.stages) - len(failed)} of {len(bench.stages)} passed")
    for s in failed:
        print(f"FAILED stage: {s.name}: {s.detail}")
    print_log_summary(log.levels, len(log.problems), problems)
    write_json(o.json_path, payload(bench, log.as_json(), met, aborted))
    print(f"bench: results written to {o.json_path}", flush=True)
    return 1 if failed or aborted else 0


def case_sizes(bench: Bench) -> list[int]:
    o = bench.opts
    return [o.cases, o.cases_large] if o.cases_large else [o.cases]


def check_log(levels: Any, statuses: Any) -> Stage:
    bad_levels = {k: v for k, v in levels.items() if k in ("error", "critical")}
    bad_status = {k: v for k, v in statuses.items() if int(k.rsplit(" ", 1)[1]) >= 400}
    ok = not bad_levels and not bad_status
    return Stage(
        "server log: no errors, no 4xx/5xx", ok, "" if ok else f"{bad_levels} {bad_status}"
    )


def check_exit(codes: dict[str, int | None]) -> Stage:
    ok = codes.get("server") == 0
    return Stage("server stopped cleanly on SIGTERM", ok, "" if ok else f"exit codes {codes}")


def print_log_summary(levels: Any, problems: int, path: Path) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "empty"
    print(f"server log: {counts}; {problems} warning/error/4xx/5xx lines -> {path}")


def payload(bench: Bench, log: dict[str, Any], met: bool | None, aborted: str) -> dict[str, Any]:
    o = bench.opts
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ok": not aborted and all(s.ok for s in bench.stages),
        "aborted": aborted or None,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(o).items()},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "wrk": wrk_version(bench.wrk) if bench.wrk else None,
        },
        "results": {k: r.as_json() for k, r in bench.results.items()},
        "ratios": compute_ratios(bench.results),
        "ratio_definitions": RATIO_DEFINITIONS,
        "case_p50_large_over_small": scaling(bench.results, case_sizes(bench)),
        "target": {"me_over_healthz_at_least": 0.70, "met": met},
        "seeding_and_checks": bench.facts,
        "notes": bench.notes,
        "stages": [asdict(s) for s in bench.stages],
        "server_exit_codes": bench.server_exit,
        "server_log": log,
        "wrk_output": bench.wrk_output,
    }
