"""What every part shares: users, HTTP calls, staff sign-in, numbers, plans, shapes."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import os
import random
import secrets
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from bson import ObjectId
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo import MongoClient
from pymongo.database import Database

if TYPE_CHECKING:
    from bench.run import Bench

Db = Database[dict[str, Any]]
BATCH = 5000  # documents per insert_many


class SeedError(Exception):
    pass


@dataclass(frozen=True)
class SignedIn:
    token: str
    user_id: str


def client(db_uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(db_uri, tz_aware=True)


def call(
    url: str,
    body: dict[str, Any] | bytes | None = None,
    token: str | None = None,
    *,
    status: int = 200,
    method: str | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One request (GET without a body, else POST: a dict as JSON, bytes as they are) with
    ``token`` as the bearer; the JSON answer, or SeedError unless ``status``."""
    headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    if isinstance(body, dict):
        body, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            got, answer = response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        got, answer = e.code, json.loads(e.read() or b"{}")
    if got != status:
        raise SeedError(f"{request.get_method()} {url}: HTTP {got} {answer}")
    return dict(answer)


def check_page(url: str, token: str, expected: list[str], timeout: float = 30) -> None:
    """The API's first page (20, and more after) is the raw query's, in the same order."""
    page = call(url, token=token, timeout=timeout)
    got = [item["id"] for item in page.get("items", [])]
    if got != expected or len(got) != 20 or not page.get("next_cursor"):
        raise SeedError(f"GET {url}: API {got[:3]}... ({len(got)}), raw {expected[:3]}...")


def _login(url: str, body: dict[str, Any], n: int) -> SignedIn:
    """Signed in from phone ``n``'s address (198.18.0.0/15: benchmarking)."""
    phone = f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 256}"
    found = call(url, body, headers={"X-Real-Ip": phone})
    return SignedIn(token=found["token"], user_id=found["user"]["id"])


def api_login(api: str, emulator: str, n: int) -> SignedIn:
    return phone_login(api, emulator, n)[0]


def phone_login(api: str, emulator: str, n: int) -> tuple[SignedIn, str]:
    """Signed in, and the phone's openid (what the face-verification control path needs)."""
    phone = call(f"{emulator}/_emulator/wx/login", {})
    return _login(f"{api}/api/v1/auth/wx-login", {"code": phone["code"]}, n), phone["openid"]


def staff_login(api: str, db: Database[dict[str, Any]], doc: dict[str, Any], n: int) -> SignedIn:
    """A staff member inserted with an argon2 hash of a fresh password, signed in."""
    password = secrets.token_urlsafe(16)
    db["users"].insert_one({**doc, "password_hash": PasswordHasher().hash(password)})
    body = {"username": doc["username"], "password": password}
    return _login(f"{api}/api/v1/auth/staff-login", body, n)


@dataclass
class Numbers:
    """Numbers per year from the server's counter ``{prefix}|{year}``; ``commit`` moves it on."""

    db: Database[dict[str, Any]]
    prefix: str
    seqs: Counter[int] = field(default_factory=Counter)

    def next(self, year: int) -> int:
        if not self.seqs[year]:
            found = self.db["counters"].find_one({"_id": f"{self.prefix}|{year}"}) or {}
            self.seqs[year] = int(found.get("seq", 0))
        self.seqs[year] += 1
        return self.seqs[year]

    def commit(self) -> None:
        for year, seq in self.seqs.items():
            moved = {"$max": {"seq": seq}}
            self.db["counters"].update_one({"_id": f"{self.prefix}|{year}"}, moved, upsert=True)
        self.seqs.clear()  # the API counts on meanwhile: read the counters again next time


def explain(db: Db, command: dict[str, Any]) -> str:
    """The winning plan of a find or of an aggregation's first stage, ``STAGE(index) <- ...``."""
    found = db.command("explain", command, verbosity="queryPlanner")
    top = (found.get("stages") or [{}])[0].get("$cursor", found)
    plan = top.get("queryPlanner", {}).get("winningPlan", {})
    stages = []
    while plan:
        index = f"({plan['indexName']})" if plan.get("indexName") else ""
        stages.append(f"{plan.get('stage', '?')}{index}")
        plan = plan.get("inputStage")
    return " <- ".join(stages) or "unknown"


def check_plan(bench: Bench, db: Db, what: str, command: dict[str, Any]) -> None:
    """``explain`` of ``command`` printed and kept; SeedError unless it uses an index."""
    with bench.stage(f"explain {what}: IXSCAN"):
        plan = explain(db, command)
        bench.fact(f"plan of {what}", plan)
        bench.note(f"plan of {what}: {plan}")
        if "IXSCAN" not in plan:
            raise SeedError(f"{what} uses no index: {plan}")


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


def check_shapes(what: str, pairs: list[tuple[Any, Any, str]]) -> None:
    """SeedError unless each (the API's document, the seeded one, its name) have the same key
    paths and value types (None matches any type): the seed follows the server."""
    problems: list[str] = []
    for theirs, ours, name in pairs:
        a, b = shape(theirs or {}), shape(ours or {})
        problems += [f"{name}: only the API writes {k}" for k in sorted(a.keys() - b.keys())]
        problems += [f"{name}: only the bench writes {k}" for k in sorted(b.keys() - a.keys())]
        typed = [k for k in sorted(a.keys() & b.keys()) if "NoneType" not in (a[k], b[k])]
        problems += [f"{name}: {k}: API {a[k]}, bench {b[k]}" for k in typed if a[k] != b[k]]
    if problems:
        raise SeedError(f"seeded {what} differ from the API's: " + "; ".join(problems))


def user_doc(aes: AESGCM, now: dt.datetime) -> dict[str, Any]:
    """A litigant as ``UserService.upsert_wx_user`` stores one after a first WeChat login."""
    session_key = base64.b64encode(secrets.token_bytes(16)).decode()  # as WeChat's
    nonce = os.urandom(12)
    created = now - dt.timedelta(seconds=random.randint(0, 365 * 86400))
    return {
        "openid": "o" + secrets.token_urlsafe(21)[:27],  # 28 characters, as WeChat's
        "unionid": "o" + secrets.token_urlsafe(21)[:27],
        "role": "litigant",
        "active": True,
        "created_at": created,
        "last_login_at": created,
        "session_key_enc": nonce + aes.encrypt(nonce, session_key.encode(), b"session_key"),
    }


def insert_users(db: Db, count: int, data_key: bytes) -> list[ObjectId]:
    """``count`` litigants inserted; the ids of every litigant."""
    aes, now = AESGCM(data_key), dt.datetime.now(dt.UTC)
    insert_batches(db["users"], (user_doc(aes, now) for _ in range(count)))
    return [doc["_id"] for doc in db["users"].find({"role": "litigant"}, {"_id": 1})]


def insert_batches(collection: Any, docs: Iterable[dict[str, Any]], size: int = BATCH) -> int:
    """``docs`` inserted unordered, ``size`` at a time; how many."""
    it, count = iter(docs), 0
    while batch := list(itertools.islice(it, size)):
        collection.insert_many(batch, ordered=False)
        count += len(batch)
    return count
