"""Crashes under write load (issue 18, point 6): ``serve`` as a user runs it, its embedded
database (or the API itself) killed with SIGKILL while filers submit and send messages and a
clerk accepts, each with an Idempotency-Key; then ``serve`` started again on the same data
(at once: it waits for the dying database to let go of its files).

Every acknowledged write is there; every key retried replays what it was answered, or runs
now, or (its work committed but its answer lost with the process) says so, 409
``idempotency_answer_lost``; no key did its work twice (one work order per message key);
case numbers are gapless."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from miniapp_stubs.client import MiniProgram, Response, StaffConsole
from tests.factories import PDF, SELF_ID, clean_env, complaint, id_number, serving
from tests.platform.test_serve import children
from tests.waiting import until

FILERS = 4
DRAFTS = 8  # 张三's filings, submitted concurrently
MESSAGES = 2  # each filer's messages to the court's desk
PASSWORD = "first-admin-password"
DONE = (200, 201)


@dataclass
class Ledger:
    """Every keyed request sent: its key's first answer, and the acknowledged ones."""

    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: dict[str, tuple[ApiCall, str, dict[str, Any] | None]] = field(default_factory=dict)

    def acked(self) -> dict[str, Any]:
        return {k: body for k, (status, body) in self.answers.items() if status in DONE}


ApiCall = MiniProgram | StaffConsole


async def keyed(
    ledger: Ledger, who: ApiCall, key: str, path: str, body: dict[str, Any] | None = None
) -> Response | None:
    ledger.requests[key] = (who, path, body)
    try:
        res = await who.post(path, body, headers={"Idempotency-Key": key})
    except Exception:  # the API died under us: not acknowledged
        ledger.answers[key] = (0, None)
        return None
    ledger.answers[key] = (res.status, res.body)
    return res


async def prepare(api: str, emulator: str) -> tuple[list[MiniProgram], list[str], StaffConsole]:
    admin = StaffConsole(api)
    assert (await admin.login("admin", PASSWORD)).status == 200
    made = await admin.create_staff(
        username="crash-clerk",
        password=PASSWORD,
        name="王书记",
        role="clerk",
        court_id="bj-chaoyang",
    )
    assert made.status == 201, made.body
    clerk = StaffConsole(api)
    assert (await clerk.login("crash-clerk", PASSWORD)).status == 200
    filers, drafts = [], []
    for n in range(FILERS):  # 张三 files; each of them sends messages
        mp = MiniProgram(api, emulator)
        assert (await mp.login()).status == 200
        name, number = ("张三", SELF_ID) if n == 0 else ("钱七", id_number(seq=f"{n:03d}"))
        assert (await mp.verify_identity(name, number)).status == 200
        filers.append(mp)
        for _ in range(DRAFTS if n == 0 else 0):
            up = await mp.upload(PDF + b"evidence", "借条.pdf", "evidence")
            draft = await mp.post("/api/v1/filings", complaint([up.body["id"]]))
            assert draft.status == 201, draft.body
            drafts.append((len(filers) - 1, draft.body["id"]))
    return filers, [f"{n}:{fid}" for n, fid in drafts], clerk


async def load(
    ledger: Ledger, filers: list[MiniProgram], drafts: list[str], clerk: StaffConsole
) -> None:
    """Submit every draft, accept each one submitted, send messages: all at once."""

    async def file_and_accept(entry: str) -> None:
        n, fid = entry.split(":")
        res = await keyed(ledger, filers[int(n)], f"submit-{fid}", f"/api/v1/filings/{fid}/submit")
        if res is not None and res.status == 200:
            path = f"/api/v1/review/filings/{fid}/accept"
            await keyed(ledger, clerk, f"accept-{fid}", path, {"procedure": "ordinary"})

    async def message(n: int, m: int) -> None:
        body = {"category": "进度查询", "content": f"请问进度{m}", "court_id": "bj-chaoyang"}
        await keyed(ledger, filers[n], f"message-{n}-{m}-x", "/api/v1/messages", body)

    await asyncio.gather(
        *(file_and_accept(d) for d in drafts),
        *(message(n, m) for n in range(FILERS) for m in range(MESSAGES)),
    )


async def retry(who: ApiCall, path: str, body: Any, key: str) -> Response:
    """Retry ``key`` as a client does: again while its claim lapses (a request that died
    with the database holds it for seconds) and after a 503 (the database just restarted on
    a loaded machine)."""

    async def answered() -> Response | None:
        res = await who.post(path, body, headers={"Idempotency-Key": key})
        return None if res.error_code == "idempotency_in_progress" or res.status == 503 else res

    found: Response = await until(answered, timeout=20, every=0.5)
    return found


def read(path: str) -> str:
    return Path(path).read_text()


async def crash_run(tmp_path: Path, victim: str) -> None:
    env = clean_env(MICROCOURT_ADMIN_PASSWORD=PASSWORD)
    ledger = Ledger()
    with serving(tmp_path, env) as (proc, api, emulator):
        filers, drafts, clerk = await prepare(api, emulator)
        running = asyncio.ensure_future(load(ledger, filers, drafts, clerk))
        while len(ledger.acked()) < 4 and not running.done():
            await asyncio.sleep(0.01)
        db = [
            c for c in children(proc.pid) if "secantusd" in Path(f"/proc/{c}/cmdline").read_text()
        ]
        os.kill(db[0] if victim == "database" else proc.pid, signal.SIGKILL)
        await running
        if victim == "database":
            proc.send_signal(signal.SIGTERM)
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
    # at once: the database of the killed serve may still be letting go of its files
    with serving(tmp_path, env) as (proc, api, emulator):
        clerk.api_url = api
        for mp in filers:  # the new emulator meets them again (its content check asks)
            mp.api_url, mp.emulator_url = api, emulator
            assert (await mp.login(mp.openid)).status == 200
        await check(ledger, filers, drafts, clerk)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


async def check(
    ledger: Ledger, filers: list[MiniProgram], drafts: list[str], clerk: StaffConsole
) -> None:
    owner = {fid: filers[int(n)] for n, fid in (d.split(":") for d in drafts)}
    for key in ledger.acked():  # every acknowledged write is there
        kind, _, fid = key.partition("-")
        if kind in ("submit", "accept"):
            filing = await owner[fid].get(f"/api/v1/filings/{fid}")
            wanted = ("submitted", "accepted") if kind == "submit" else ("accepted",)
            assert filing.body["status"] in wanted, (key, filing.body)
    applied: dict[str, bool] = {}
    for key, (who, path, body) in ledger.requests.items():  # every key retried
        first_status, first_body = ledger.answers[key]
        again = await retry(who, path, body, key)
        if first_status in DONE:
            assert (again.status, again.body) == (first_status, first_body), key
            assert again.headers.get("Idempotent-Replayed") == "true"
        else:
            assert again.status in DONE or again.error_code in (
                "idempotency_answer_lost",
                "filing_not_pending",
            ), (key, again.status, again.body)
        applied[key] = again.status in DONE or again.error_code == "idempotency_answer_lost"
    for n, mp in enumerate(filers):  # one work order per message key, never two
        mine = (await mp.get("/api/v1/messages?limit=50")).body["items"]
        keys = [k for k in applied if k.startswith(f"message-{n}-") and applied[k]]
        assert len(mine) == len(keys), (n, mine, keys)
    numbers = []
    for entry in drafts:  # every accepted filing has its number, gapless
        n, fid = entry.split(":")
        filing = (await filers[int(n)].get(f"/api/v1/filings/{fid}")).body
        assert filing["status"] in ("draft", "submitted", "accepted")
        if filing["status"] == "accepted":
            numbers.append(int(filing["case_no"].split("初")[1].rstrip("号")))
    assert sorted(numbers) == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("victim", ["database", "api"])
def test_acknowledged_writes_survive_a_kill(tmp_path: Path, victim: str) -> None:
    asyncio.run(asyncio.wait_for(crash_run(tmp_path, victim), 120))
