"""Seed data: some users signed in through the real API, the rest inserted with pymongo.

Each API sign-in plays a different phone: the server runs with ``server.behind_proxy`` (as behind
the reverse proxy of production), so each login carries its own ``X-Real-Ip`` from the RFC 2544
benchmarking range 198.18.0.0/15 and the per-IP login limit applies per simulated phone.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import secrets
import string
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo import MongoClient

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
BATCH = 1000


class SeedError(Exception):
    pass


@dataclass(frozen=True)
class SignedIn:
    token: str
    user_id: str


@dataclass(frozen=True)
class Seeded:
    signed_in: list[SignedIn]
    user_ids: list[ObjectId]


def http_json(
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    raw: tuple[bytes, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, Any]]:
    """One request with urllib; (status, parsed JSON body). GET without a body, else POST;
    ``raw`` is (body, content type) for anything but JSON."""
    data, content_type = raw or (None, "")
    if body is not None:
        data, content_type = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def phone_ip(n: int) -> str:
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 256}"


def api_login(api: str, emulator: str, n: int) -> SignedIn:
    """What the mini-program does at launch: wx.login (emulator), then our wx-login."""
    status, phone = http_json(f"{emulator}/_emulator/wx/login", {})
    if status != 200:
        raise SeedError(f"emulator wx.login: HTTP {status} {phone}")
    status, body = http_json(
        f"{api}/api/v1/auth/wx-login", {"code": phone["code"]}, {"X-Real-Ip": phone_ip(n)}
    )
    if status != 200:
        raise SeedError(f"POST /api/v1/auth/wx-login: HTTP {status} {body}")
    return SignedIn(token=body["token"], user_id=body["user"]["id"])


def sign_in(api: str, emulator: str, count: int, workers: int = 8) -> list[SignedIn]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda n: api_login(api, emulator, n), range(1, count + 1)))


def _random_id(length: int, prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length - len(prefix)))


def user_doc(aes: AESGCM, now: dt.datetime) -> dict[str, Any]:
    """A litigant as ``UserService.upsert_wx_user`` stores one after a first WeChat login."""
    session_key = base64.b64encode(secrets.token_bytes(16)).decode()  # as WeChat's
    nonce = os.urandom(12)
    created = now - dt.timedelta(seconds=random.randint(0, 365 * 86400))
    return {
        "openid": _random_id(28, "o"),
        "unionid": _random_id(28, "o"),
        "role": "litigant",
        "active": True,
        "created_at": created,
        "last_login_at": created,
        "session_key_enc": nonce + aes.encrypt(nonce, session_key.encode(), b"session_key"),
    }


def insert_users(db_uri: str, database: str, count: int, data_key: bytes) -> None:
    aes = AESGCM(data_key)
    now = dt.datetime.now(dt.UTC)
    client: MongoClient[dict[str, Any]] = MongoClient(db_uri, tz_aware=True)
    try:
        users = client[database]["users"]
        for start in range(0, count, BATCH):
            docs = [user_doc(aes, now) for _ in range(min(BATCH, count - start))]
            users.insert_many(docs, ordered=False)
    finally:
        client.close()


def litigant_ids(db_uri: str, database: str) -> list[ObjectId]:
    client: MongoClient[dict[str, Any]] = MongoClient(db_uri)
    try:
        cursor = client[database]["users"].find({"role": "litigant"}, {"_id": 1})
        return [doc["_id"] for doc in cursor]
    finally:
        client.close()
