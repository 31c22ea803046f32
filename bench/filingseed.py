"""Seed data of online filing: pending filings, a clerk, filers with a verified identity and an
uploaded PDF, and drafts for them to submit.

Bulk documents go in with pymongo (``shapes`` shapes them as the server does); everything a user
does first (sign-in, identity, upload, one draft and its submission) goes through the API, and
``check_shapes`` compares what the API wrote with what was seeded.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from bench import shapes
from bench.seed import SeedError, SignedIn, api_login, call, explain, staff_login
from bench.seed import check_shapes as check_shapes_of
from server.filing.store import QUEUE_SORT, queue_filter

BATCH = 5000
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


def insert_pending(
    db: Database[dict[str, Any]], cipher: shapes.Cipher, filer_ids: list[str], count: int
) -> Pending:
    """``count`` filings submitted over the last days and not yet reviewed, in batches."""
    rng = random.Random(20261123)
    now = dt.datetime.now(dt.UTC)
    began, green, sample = time.perf_counter(), 0, None
    for start in range(0, count, BATCH):
        batch = [
            shapes.pending_doc(cipher, rng, rng.choice(filer_ids), now, BACKLOG_DAYS)
            for _ in range(min(BATCH, count - start))
        ]
        green += sum(d["green"] for d in batch)
        ids = db["filings"].insert_many(batch, ordered=False).inserted_ids
        sample = sample or next(
            (i for i, d in zip(ids, batch, strict=True) if not d["green"]), None
        )
    return Pending(count, green, time.perf_counter() - began, sample)


# ---- people


def make_clerk(api: str, db: Database[dict[str, Any]]) -> SignedIn:
    """A clerk of the court, inserted with an argon2 hash, signed in through the API."""
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
    """Sign in, verify an identity (PUT /me/identity), upload one PDF of evidence."""
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


# ---- drafts


def insert_drafts(
    db: Database[dict[str, Any]], cipher: shapes.Cipher, filers: list[Filer], count: int
) -> list[tuple[str, ObjectId]]:
    """``count`` drafts, round-robin over the filers, as (filer's token, draft id)."""
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    pairs: list[tuple[str, ObjectId]] = []
    for start in range(0, count, BATCH):
        owners = [filers[i % len(filers)] for i in range(start, min(start + BATCH, count))]
        batch = [
            shapes.draft_doc(cipher, f.user_id, f.person, shapes.person(rng), [f.file_id], now)
            for f in owners
        ]
        ids = db["filings"].insert_many(batch, ordered=False).inserted_ids
        pairs += [(f.token, i) for f, i in zip(owners, ids, strict=True)]
    return pairs


def split(
    pairs: list[tuple[str, ObjectId]], sizes: list[int]
) -> Iterator[list[tuple[str, ObjectId]]]:
    start = 0
    for size in sizes:
        yield pairs[start : start + size]
        start += size


# ---- what the API writes, compared with what was seeded


def api_filing(api: str, filer: Filer, db: Database[dict[str, Any]]) -> tuple[Any, Any]:
    """One draft created and submitted through the API; its stored form after each step."""
    body = shapes.complaint_body(filer.person, shapes.person(random.Random(1)), [filer.file_id])
    draft = call(f"{api}/api/v1/filings", body, filer.token, status=201)
    stored = db["filings"].find_one({"_id": ObjectId(draft["id"])})
    filed = call(f"{api}/api/v1/filings/{draft['id']}/submit", {}, filer.token)
    if filed.get("status") != "submitted":
        raise SeedError(f"submitted through the API: {filed}")
    return stored, db["filings"].find_one({"_id": ObjectId(draft["id"])})


def check_shapes(
    api: str, filer: Filer, seeded: tuple[ObjectId, ObjectId | None], db: Database[dict[str, Any]]
) -> None:
    """The API's draft and filed documents have the keys and types of the seeded ones
    (``seeded``: a draft's id and a pending filing's id)."""
    api_draft, api_filed = api_filing(api, filer, db)
    ours = [db["filings"].find_one({"_id": i}) for i in seeded]
    check_shapes_of("filings", [(api_draft, ours[0], "draft"), (api_filed, ours[1], "filed")])


def check_queue(api: str, clerk: SignedIn, db: Database[dict[str, Any]]) -> None:
    """The API's first page is the raw query's first filings, in the same order."""
    page = call(f"{api}{QUEUE_PATH}", token=clerk.token)
    raw = db["filings"].find(QUEUE_FILTER, {"_id": 1}).sort(QUEUE_SORT).limit(QUEUE_PAGE + 1)
    expected = [str(d["_id"]) for d in raw][:QUEUE_PAGE]
    got = [item["id"] for item in page.get("items", [])]
    if got != expected or not page.get("next_cursor"):
        raise SeedError(f"review queue: API {got[:3]}..., raw {expected[:3]}...")


def explain_queue(db: Database[dict[str, Any]]) -> str:
    """The plan of the queue's first-page query."""
    command = {
        "find": "filings",
        "filter": QUEUE_FILTER,
        "sort": dict(QUEUE_SORT),
        "limit": QUEUE_PAGE + 1,
    }
    return explain(db, command)
