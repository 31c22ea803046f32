"""The outbox's rate, alone: subscribe messages sent per second, and each push's delivery
latency (queued -> sent), against the WeChat emulator, on a SecantusDB of its own.

    .venv/bin/python -m bench.outbox                 # burst 1000, then 20 s at 34 filings/s
    .venv/bin/python -m bench.outbox --burst 300 --seconds 5

Two figures, both from the server's own ``NotificationService`` and ``OutboxWorker``:

- **burst**: ``--burst`` pushes queued at once (each to a litigant with an openid and a
  quota), then one worker started; items per second from its start to the last sent;
- **paced**: the worker running, one notice a filing at ``--rate`` filings per second for
  ``--seconds`` (the filer's push, and the notice to the court's ``--clerks`` clerks, who have
  no openid, as a submission makes); p50/p99 of queued -> sent.

The emulator runs in this process, as it runs in ``serve``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bson import ObjectId

from miniapp_stubs.emulator import start_emulator
from server.devstack import EmbeddedDatabase
from server.notify.inbox import NotificationService
from server.notify.outbox import OutboxWorker
from server.platform.clock import SystemClock
from server.platform.config import load_settings
from server.platform.db import Database, ensure_indexes
from server.platform.mongo import connect
from server.wechat.miniprogram import WeChatAdapter

SECRET = "bench-outbox-secret"
TEMPLATE = "filing_decided"
OPEN = {"$in": ["pending", "sending"]}


async def seed_users(db: Database, emu: Any, template_id: str, litigants: int, clerks: int) -> Any:
    """Litigants with an openid and plenty of quota (ours and WeChat's); clerks without."""
    people: list[dict[str, Any]] = []
    for _ in range(litigants):
        openid, _code = emu.state.login()
        emu.state.accept_subscriptions(openid, [template_id] * 10_000)
        people.append({"_id": ObjectId(), "openid": openid, "role": "litigant", "active": True})
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


async def drained(db: Database, timeout: float) -> None:
    end = time.monotonic() + timeout
    while await db["outbox"].count_documents({"status": OPEN}):
        if time.monotonic() > end:
            raise TimeoutError("outbox not drained")
        await asyncio.sleep(0.05)


async def latencies(db: Database, since: ObjectId) -> list[float]:
    done = db["outbox"].find({"_id": {"$gt": since}, "status": "sent"})
    return sorted([(d["finished_at"] - d["created_at"]).total_seconds() async for d in done])


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


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
    emu = await start_emulator(settings.wechat.appid, SECRET)
    wechat = WeChatAdapter(settings.wechat.appid, SECRET, emu.url)
    client = connect(uri)
    db = client["outbox_bench"]
    try:
        await ensure_indexes(db)
        tid = settings.notifications.templates[TEMPLATE].template_id
        users, clerks = await seed_users(db, emu, tid, 50, args.clerks)
        worker = OutboxWorker(db, settings.notifications, wechat, SystemClock())
        note = NotificationService(db, settings, SystemClock(), on_enqueued=worker.wake)
        for n in range(args.burst):
            await notice(note, users[n % len(users)], clerks, n)
        queued = await db["outbox"].count_documents({"status": OPEN})
        t0 = time.monotonic()
        worker.start()
        await drained(db, 600)
        burst = time.monotonic() - t0
        sent = await db["outbox"].count_documents({"status": "sent"})
        print(f"burst: {queued} queued ({sent} sent), {queued / burst:.0f} items/s")
        since = ObjectId()
        for n in range(int(args.rate * args.seconds)):
            await notice(note, users[n % len(users)], clerks, n)
            await asyncio.sleep(1 / args.rate)
        await drained(db, 600)
        lat = await latencies(db, since)
        print(
            f"paced at {args.rate}/s for {args.seconds} s: {len(lat)} sent, "
            f"p50 {pct(lat, 0.5):.3f} s, p99 {pct(lat, 0.99):.3f} s, max {lat[-1]:.3f} s"
        )
        await worker.stop()
    finally:
        await client.close()
        wechat.close()
        await emu.stop()
        await embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=1000, help="pushes queued at once")
    parser.add_argument("--rate", type=float, default=34.0, help="filings per second, paced")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long, paced")
    parser.add_argument("--batch", type=int, default=0, help="outbox_batch (config's if 0)")
    parser.add_argument("--clerks", type=int, default=3, help="clerks told of each filing")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
