"""Seed data of online filing: pending filings, a clerk, filers (identity, one PDF) and
drafts, and the checks against what the API writes (see bench/README.md)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from bench import shapes
from bench.seed import Db, SeedError, SignedIn, api_login, call, insert_batches, staff_login
from bench.seed import check_shapes as check_shapes_of
from server.filing.store import QUEUE_SORT, queue_filter

BACKLOG_DAYS = 12  # pending filings were submitted over the last 12 days
QUEUE_FILTER = queue_filter(shapes.COURT)  # ReviewService.queue's, sorted by QUEUE_SORT
QUEUE_PAGE = 20  # the API's default limit
QUEUE_PATH = "/api/v1/review/filings"
FILER_BASE = 1 << 16  # X-Real-Ip numbers of the filers: after those of the /me users


@dataclass(frozen=True)
class Filer:
    token: str
    user_id: str
    person: shapes.Person
    file_id: str


@dataclass(frozen=True)
class Pending:
    count: int
    green: int
    seconds: float
    sample_id: ObjectId | None  # a seeded filing outside the green channel


def insert_pending(db: Db, cipher: shapes.Cipher, filer_ids: list[str], count: int) -> Pending:
    """``count`` filings submitted over the last days and not yet reviewed."""
    rng, now, began, green = (
        random.Random(20261123),
        dt.datetime.now(dt.UTC),
        time.perf_counter(),
        [0],
    )

    def docs() -> Iterator[dict[str, Any]]:
        for _ in range(count):
            doc = shapes.pending_doc(cipher, rng, rng.choice(filer_ids), now, BACKLOG_DAYS)
            green[0] += doc["green"]
            yield doc

    insert_batches(db["filings"], docs())
    sample = db["filings"].find_one({"status": "submitted", "green": False}, {"_id": 1})
    return Pending(count, green[0], time.perf_counter() - began, sample["_id"] if sample else None)


def make_clerk(api: str, db: Db) -> SignedIn:
    doc = shapes.staff_doc(f"bench.clerk.{secrets.token_hex(3)}", dt.datetime.now(dt.UTC))
    return staff_login(api, db, doc, FILER_BASE - 1)


def multipart(filename: str, data: bytes, purpose: str = "evidence") -> tuple[bytes, str]:
    """What ``wx.uploadFile`` sends (as ``miniapp_stubs.client.multipart``)."""
    boundary = f"----microcourt{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def make_filer(api: str, emulator: str, n: int) -> Filer:
    user = api_login(api, emulator, FILER_BASE + n)
    rng = random.Random(n)
    me = shapes.person(rng, number=shapes.id_number(rng, serial=n))
    body = {"name": me.name, "id_number": me.id_number, "phone": me.phone}
    call(f"{api}/api/v1/me/identity", body, user.token, method="PUT")
    pdf = multipart("借条.pdf", shapes.PDF + f"filer {n}".encode())
    uploaded = call(f"{api}/api/v1/files", token=user.token, raw=pdf, status=201)
    return Filer(user.token, user.user_id, me, uploaded["id"])


def make_filers(api: str, emulator: str, count: int, workers: int = 8) -> list[Filer]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda n: make_filer(api, emulator, n), range(1, count + 1)))


def insert_drafts(
    db: Db, cipher: shapes.Cipher, filers: list[Filer], sizes: list[int]
) -> list[list[tuple[str, ObjectId]]]:
    """Drafts round-robin over the filers, as (filer's token, draft id), in pools of ``sizes``."""
    rng, now = random.Random(7), dt.datetime.now(dt.UTC)
    owners = [filers[i % len(filers)] for i in range(sum(sizes))]
    docs = [
        shapes.draft_doc(cipher, f.user_id, f.person, shapes.person(rng), [f.file_id], now)
        for f in owners
    ]
    insert_batches(db["filings"], docs)  # pymongo sets each doc's _id
    pairs = [(f.token, d["_id"]) for f, d in zip(owners, docs, strict=True)]
    ends = list(itertools.accumulate(sizes))
    return [pairs[end - size : end] for size, end in zip(sizes, ends, strict=True)]


def api_filing(api: str, filer: Filer, db: Db) -> tuple[Any, Any]:
    """One draft created and submitted through the API; its stored form after each step."""
    body = shapes.complaint_body(filer.person, shapes.person(random.Random(1)), [filer.file_id])
    draft = call(f"{api}/api/v1/filings", body, filer.token, status=201)
    stored = db["filings"].find_one({"_id": ObjectId(draft["id"])})
    filed = call(f"{api}/api/v1/filings/{draft['id']}/submit", {}, filer.token)
    if filed.get("status") != "submitted":
        raise SeedError(f"submitted through the API: {filed}")
    return stored, db["filings"].find_one({"_id": ObjectId(draft["id"])})


def check_shapes(api: str, filer: Filer, seeded: tuple[ObjectId, ObjectId | None], db: Db) -> None:
    """The API's draft and filing against a seeded draft's and a pending filing's."""
    api_draft, api_filed = api_filing(api, filer, db)
    ours = [db["filings"].find_one({"_id": i}) for i in seeded]
    check_shapes_of("filings", [(api_draft, ours[0], "draft"), (api_filed, ours[1], "filed")])


def check_queue(api: str, clerk: SignedIn, db: Db) -> None:
    page = call(f"{api}{QUEUE_PATH}", token=clerk.token)
    raw = db["filings"].find(QUEUE_FILTER, {"_id": 1}).sort(QUEUE_SORT).limit(QUEUE_PAGE + 1)
    expected = [str(d["_id"]) for d in raw][:QUEUE_PAGE]
    got = [item["id"] for item in page.get("items", [])]
    if got != expected or not page.get("next_cursor"):
        raise SeedError(f"review queue: API {got[:3]}..., raw {expected[:3]}...")


QUEUE_COMMAND = {
    "find": "filings",
    "filter": QUEUE_FILTER,
    "sort": dict(QUEUE_SORT),
    "limit": QUEUE_PAGE + 1,
}
