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

from argon2 import PasswordHasher
from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

from bench import shapes
from bench.seed import SeedError, SignedIn, api_login, http_json, phone_ip
from server.filing.review import QUEUE_SORT, queue_filter

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


def client(db_uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(db_uri, tz_aware=True)


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
    username, password = f"bench.clerk.{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    now = dt.datetime.now(dt.UTC)
    db["users"].insert_one(shapes.staff_doc(username, PasswordHasher().hash(password), now))
    status, body = http_json(
        f"{api}/api/v1/auth/staff-login",
        {"username": username, "password": password},
        {"X-Real-Ip": phone_ip(FILER_BASE - 1)},
    )
    if status != 200:
        raise SeedError(f"POST /api/v1/auth/staff-login: HTTP {status} {body}")
    return SignedIn(token=body["token"], user_id=body["user"]["id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    status, body = http_json(
        f"{api}/api/v1/me/identity",
        {"name": me.name, "id_number": me.id_number, "phone": me.phone},
        bearer(user.token),
        method="PUT",
    )
    if status != 200:
        raise SeedError(f"PUT /api/v1/me/identity: HTTP {status} {body}")
    pdf = multipart("借条.pdf", shapes.PDF + f"filer {n}".encode())
    status, body = http_json(f"{api}/api/v1/files", headers=bearer(user.token), raw=pdf)
    if status != 201:
        raise SeedError(f"POST /api/v1/files: HTTP {status} {body}")
    return Filer(user.token, user.user_id, me, body["id"])


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


def shape(value: Any, path: str = "") -> dict[str, str]:
    """Every key path of a document with the type of its value; lists by their first item."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, item in value.items():
            found.update(shape(item, f"{path}.{key}" if path else str(key)))
        return found or {path: "dict"}
    if isinstance(value, list) and value:
        return shape(value[0], f"{path}[]")
    return {path: type(value).__name__}


def shape_diff(api_doc: dict[str, Any], seeded: dict[str, Any]) -> list[str]:
    """Key paths one has and the other lacks, and types that differ (None matches any)."""
    a, b = shape(api_doc), shape(seeded)
    problems = [f"only the API writes {k}" for k in sorted(a.keys() - b.keys())]
    problems += [f"only the bench writes {k}" for k in sorted(b.keys() - a.keys())]
    problems += [
        f"{k}: API {a[k]}, bench {b[k]}"
        for k in sorted(a.keys() & b.keys())
        if a[k] != b[k] and "NoneType" not in (a[k], b[k])
    ]
    return problems


def api_filing(api: str, filer: Filer, db: Database[dict[str, Any]]) -> tuple[Any, Any]:
    """One draft created and submitted through the API; its stored form after each step."""
    rng = random.Random(1)
    body = shapes.complaint_body(filer.person, shapes.person(rng), [filer.file_id])
    status, draft = http_json(f"{api}/api/v1/filings", body, bearer(filer.token))
    if status != 201:
        raise SeedError(f"POST /api/v1/filings: HTTP {status} {draft}")
    stored = db["filings"].find_one({"_id": ObjectId(draft["id"])})
    path = f"/api/v1/filings/{draft['id']}/submit"
    status, filed = http_json(f"{api}{path}", {}, bearer(filer.token))
    if status != 200 or filed.get("status") != "submitted":
        raise SeedError(f"POST {path}: HTTP {status} {filed}")
    return stored, db["filings"].find_one({"_id": ObjectId(draft["id"])})


def check_shapes(
    api: str, filer: Filer, seeded: tuple[ObjectId, ObjectId | None], db: Database[dict[str, Any]]
) -> None:
    """The API's draft and filed documents have the keys and types of the seeded ones
    (``seeded``: a draft's id and a pending filing's id)."""
    api_draft, api_filed = api_filing(api, filer, db)
    seeded_draft, seeded_filed = (db["filings"].find_one({"_id": i}) for i in seeded)
    problems = shape_diff(api_draft, seeded_draft or {})
    problems += shape_diff(api_filed, seeded_filed or {})
    if problems:
        raise SeedError("seeded filings differ from the API's: " + "; ".join(problems))


def check_queue(api: str, clerk: SignedIn, db: Database[dict[str, Any]]) -> None:
    """The API's first page is the raw query's first filings, in the same order."""
    status, page = http_json(f"{api}{QUEUE_PATH}", headers=bearer(clerk.token))
    if status != 200:
        raise SeedError(f"GET {QUEUE_PATH}: HTTP {status} {page}")
    raw = db["filings"].find(QUEUE_FILTER, {"_id": 1}).sort(QUEUE_SORT).limit(QUEUE_PAGE + 1)
    expected = [str(d["_id"]) for d in raw][:QUEUE_PAGE]
    got = [item["id"] for item in page.get("items", [])]
    if got != expected or not page.get("next_cursor"):
        raise SeedError(f"review queue: API {got[:3]}..., raw {expected[:3]}...")


def explain_queue(db: Database[dict[str, Any]]) -> list[dict[str, Any]]:
    """The winning plan of the queue's first-page query, outermost stage first."""
    command = {
        "find": "filings",
        "filter": QUEUE_FILTER,
        "sort": dict(QUEUE_SORT),
        "limit": QUEUE_PAGE + 1,
    }
    plan = db.command("explain", command, verbosity="queryPlanner")["queryPlanner"]["winningPlan"]
    stages = []
    while plan:
        stages.append(plan)
        plan = plan.get("inputStage")
    return stages
