"""The outbox's rate, alone: subscribe messages sent per second, and each push's delivery
latency (queued -> sent), against the WeChat emulator, on a SecantusDB of its own.

    .venv/bin/python -m bench.outbox                 # burst 1000, then 20 s at 34 filings/s
    .venv/bin/python -m bench.outbox --burst 300 --seconds 5

Two figures, both from the server's own ``NotificationService`` and ``OutboxWorker``:

- **burst**: ``--burst`` pushes queued at once (each to a litigant with an openid and a
  quota), then one worker started; items per second from its start to the last sent;
- **paced**: the worker running, one notice a filing at ``--rate`` filings per second for
  ``--seconds``, each filing's started on time whatever became of the last (the filer's push,
  and the notice to the court's ``--clerks`` clerks, who have no openid, as a submission
  makes); p50/p99 of queued -> sent; with ``--writers N``, N connections writing beside it
  (a stand-in for the API's mixed writes under a soak).

The emulator runs in this process, as it runs in ``serve``'s (its handlers share the
worker's IOLoop and CPU); ``--emulator-process`` runs it in a process of its own instead, to
tell the outbox's cost from the emulator's. Ends are read from the items' ``finished_at``
(written by the worker), and the bench looks for the end only twice a second: SecantusDB
serves one query at a time, and a count of the open items every 50 ms (what it did before)
took a good share of the database's time from the worker it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from miniapp_stubs.emulator import Emulator, start_emulator
from server.devstack import EmbeddedDatabase
from server.notify.inbox import NotificationService
from server.notify.outbox import OutboxWorker
from server.platform.clock import UTC, SystemClock
from server.platform.config import load_settings
from server.platform.db import Database, ensure_indexes, in_transaction
from server.platform.mongo import connect
from server.wechat.miniprogram import WeChatAdapter

SECRET = "bench-outbox-secret"
TEMPLATE = "filing_decided"
OPEN = {"$in": ["pending", "sending"]}


def wx_users(emu: Emulator, template_id: str, n: int) -> list[str]:
    """``n`` WeChat users of the app, each having accepted ``template_id`` 10,000 times."""
    openids = []
    for _ in range(n):
        openid, _code = emu.state.login()
        emu.state.accept_subscriptions(openid, [template_id] * 10_000)
        openids.append(openid)
    return openids


def emulator_process(appid: str, template_id: str, n: int, conn: Connection) -> None:
    """``--emulator-process``: the emulator and its users in a process of its own."""

    async def serve() -> None:
        emu = await start_emulator(appid, SECRET)
        conn.send((emu.url, wx_users(emu, template_id, n)))
        await asyncio.Event().wait()

    asyncio.run(serve())


async def seed_users(
    db: Database, openids: list[str], template_id: str, clerks: int
) -> tuple[list[str], list[str]]:
    """Litigants with an openid and plenty of quota (ours and WeChat's); clerks without."""
    people: list[dict[str, Any]] = [
        {"_id": ObjectId(), "openid": openid, "role": "litigant", "active": True}
        for openid in openids
    ]
    staff = [{"_id": ObjectId(), "role": "clerk", "active": True} for _ in range(clerks)]
    await db["users"].insert_many(people + staff)
    await db["subscriptions"].insert_many(
        {
            "_id": f"{p['_id']}:{template_id}",
            "user_id": str(p["_id"]),
            "template_id": template_id,
            "quota": 10_000,
        }
        for p in people
    )
    return [str(p["_id"]) for p in people], [str(s["_id"]) for s in staff]


async def drained(db: Database, timeout: float) -> dt.datetime:
    """Once nothing is left to send: when the last item was finished."""
    end = time.monotonic() + timeout
    while await db["outbox"].count_documents({"status": OPEN}):
        if time.monotonic() > end:
            raise TimeoutError("outbox not drained")
        await asyncio.sleep(0.5)
    last = await db["outbox"].find_one({}, {"finished_at": 1}, sort=[("finished_at", -1)])
    return last["finished_at"] if last else dt.datetime.now(UTC)


async def latencies(db: Database, since: ObjectId) -> list[float]:
    done = db["outbox"].find({"_id": {"$gt": since}, "status": "sent"})
    return sorted([(d["finished_at"] - d["created_at"]).total_seconds() async for d in done])


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time used so far by process ``pid`` (this process if None), user and system:
    on a shared machine, CPU per item tells two runs apart where items/s cannot."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU used by the database and by this process (worker, and emulator unless apart)."""

    def __init__(self, db_pid: int | None) -> None:
        self.db_pid = db_pid
        self.start = (cpu_seconds(db_pid), cpu_seconds())

    def per_item(self, n: int) -> str:
        db, me = cpu_seconds(self.db_pid) - self.start[0], cpu_seconds() - self.start[1]
        return f"CPU per item: database {db * 1000 / n:.1f} ms, this process {me * 1000 / n:.1f} ms"


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


async def write_load(db: Database, writers: int, stop: asyncio.Event) -> int:
    """``--writers`` connections writing as fast as they can beside the outbox, each write a
    transaction like a submission's (a 1 KB document into a collection of three indexes, and a
    counter moved); how many committed. A stand-in for the API's mixed writes under a soak,
    not the API itself."""
    col = db["bench_load"]
    await col.create_index([("court", 1), ("created_at", -1)])
    await col.create_index([("owner", 1)])
    done = 0

    async def one(n: int) -> None:
        nonlocal done
        while not stop.is_set():

            async def work(session: AsyncClientSession) -> None:
                doc = {"court": n % 4, "owner": n, "created_at": dt.datetime.now(UTC)}
                await col.insert_one({**doc, "body": "x" * 1000}, session=session)
                await db["bench_counters"].update_one(
                    {"_id": n % 8}, {"$inc": {"n": 1}}, upsert=True, session=session
                )

            await in_transaction(db, work)
            done += 1

    await asyncio.gather(*(one(n) for n in range(writers)))
    return done


async def notice(note: NotificationService, user: str, clerks: list[str], n: int) -> None:
    body = f"第{n}号申请"
    await note.notify([user], "filing_accepted", "立案成功", body, template=TEMPLATE)
    await note.notify(clerks, "filing_submitted", "新的申请", body, template="filing_submitted")


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    embedded = EmbeddedDatabase("secantusd-py", tmp / "db", 60)
    uri = await embedded.start()
    batch = {"outbox_batch": args.batch} if args.batch else {}
    settings = load_settings(server={"data_dir": tmp}, notifications=batch)
    tid = settings.notifications.templates[TEMPLATE].template_id
    emu, child = None, None
    if args.emulator_process:
        mine, theirs = multiprocessing.Pipe()
        appid = settings.wechat.appid
        child = multiprocessing.Process(target=emulator_process, args=(appid, tid, 50, theirs))
        child.start()
        url, openids = mine.recv()
    else:
        emu = await start_emulator(settings.wechat.appid, SECRET)
        url, openids = emu.url, wx_users(emu, tid, 50)
    wechat = WeChatAdapter(settings.wechat.appid, SECRET, url)
    client = connect(uri)
    db = client["outbox_bench"]
    try:
        await ensure_indexes(db)
        users, clerks = await seed_users(db, openids, tid, args.clerks)
        worker = OutboxWorker(db, settings.notifications, wechat, SystemClock())
        note = NotificationService(db, settings, SystemClock(), on_enqueued=worker.wake)
        for n in range(args.burst):
            await notice(note, users[n % len(users)], clerks, n)
        queued = await db["outbox"].count_documents({"status": OPEN})
        db_pid = embedded.process.pid if embedded.process else None
        t0, cpu = dt.datetime.now(UTC), Cpu(db_pid)
        worker.start()
        burst = (await drained(db, 600) - t0).total_seconds()
        sent = await db["outbox"].count_documents({"status": "sent"})
        where = "its own process" if child else "this process"
        print(
            f"burst: {queued} queued ({sent} sent), {queued / burst:.0f} items/s "
            f"(emulator in {where}); {cpu.per_item(queued)}"
        )
        since, cpu, stop = ObjectId(), Cpu(db_pid), asyncio.Event()
        load = asyncio.ensure_future(write_load(db, args.writers, stop))
        # open loop: each filing's notices start on time, whether or not the last are written
        started, filings = time.monotonic(), []
        for n in range(int(args.rate * args.seconds)):
            filings.append(asyncio.ensure_future(notice(note, users[n % len(users)], clerks, n)))
            await asyncio.sleep(max(0.0, started + (n + 1) / args.rate - time.monotonic()))
        await asyncio.gather(*filings)
        took = time.monotonic() - started
        stop.set()
        writes = await load
        await drained(db, 600)
        lat = await latencies(db, since)
        beside = (
            f", beside {writes / took:.0f} writes/s of {args.writers} writers" if writes else ""
        )
        print(
            f"paced at {args.rate}/s for {args.seconds} s (took {took:.1f} s{beside}): "
            f"{len(lat)} sent, "
            f"p50 {pct(lat, 0.5):.3f} s, p99 {pct(lat, 0.99):.3f} s, max {lat[-1]:.3f} s; "
            f"{cpu.per_item(len(lat))} (the notices' writes included)"
        )
        await worker.stop()
    finally:
        await client.close()
        await wechat.aclose()
        if emu is not None:
            await emu.stop()
        if child is not None:
            child.terminate()
            child.join()
        await embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=1000, help="pushes queued at once")
    parser.add_argument("--rate", type=float, default=34.0, help="filings per second, paced")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long, paced")
    parser.add_argument("--batch", type=int, default=0, help="outbox_batch (config's if 0)")
    parser.add_argument("--clerks", type=int, default=3, help="clerks told of each filing")
    parser.add_argument(
        "--writers", type=int, default=0, help="connections writing beside, paced phase"
    )
    parser.add_argument(
        "--emulator-process", action="store_true", help="the emulator in a process of its own"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
