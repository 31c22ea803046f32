"""Filing-related documents shaped exactly as the server writes them; no I/O in here.

- ``Cipher``: ``server.platform.crypto.FieldCipher``
  (AES-256-GCM under the run's data key, HMAC-SHA256
  under its hash key), so seeded ID numbers decrypt and match like the server's own.
- ``draft_doc``: what ``FilingService.create`` inserts for the complaint of ``complaint_body``;
  ``submitted``: the same after ``FilingService.submit``; ``pending_doc``: a seeded pending one.
- ``inbox_doc``/``outbox_doc``: what ``NotificationService.notify`` writes for the clerks.

``filingseed.check_shapes`` compares these with documents the API itself wrote in the same run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import random
import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

COURT = "bj-chaoyang"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SUBMIT_TEMPLATE_ID = "dev-tmpl-filing-submitted"  # config.yaml notifications.templates
GREEN_SHARE = 0.05
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_REGIONS = ("110105", "110108", "110101", "110106", "130102", "310115", "320102", "410105")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰")
_CAUSES = ("民间借贷纠纷", "买卖合同纠纷", "劳动争议", "物业服务合同纠纷", "机动车交通事故责任纠纷")
_GREEN = ("elderly", "disabled", "migrant_wages", "military", "minor", "enterprise")


class Cipher:
    """``server.platform.crypto.FieldCipher``, re-implemented: the bench imports nothing
    from the server."""

    def __init__(self, data_key: bytes, hash_key: str) -> None:
        self._aes = AESGCM(data_key)
        self._hash_key = hash_key.encode()

    def encrypt(self, text: str, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aes.encrypt(nonce, text.encode(), context)

    def keyed_hash(self, text: str) -> str:
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()


def id_number(rng: random.Random, serial: int | None = None) -> str:
    """A valid resident ID number (GB 11643-1999); ``serial`` (< 10**6) makes it unique."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(50 * 365))
    if serial is None:
        head = f"{rng.choice(_REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    else:  # region and birth date from the serial: distinct serials, distinct numbers
        born = dt.date(1960, 1, 1) + dt.timedelta(days=serial % 9000)
        head = f"1101{serial // 9000 % 100:02d}{born:%Y%m%d}{serial % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(head, _WEIGHTS, strict=True))
    return head + "10X98765432"[total % 11]


def person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def phone(rng: random.Random) -> str:
    return f"13{rng.randrange(10)}{rng.randrange(10**8):08d}"


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str
    address: str


def person(rng: random.Random, name: str | None = None, number: str | None = None) -> Person:
    street = rng.choice(("建国路", "朝阳北路", "中关村大街", "望京街", "三里屯路"))
    return Person(
        name=name or person_name(rng),
        id_number=number or id_number(rng),
        phone=phone(rng),
        address=f"北京市朝阳区{street}{rng.randrange(1, 300)}号",
    )


def party_doc(p: Person, cipher: Cipher, with_phone: bool = True) -> dict[str, Any]:
    """``PartyDoc(...).model_dump()`` of a person, as ``server.filing.parties.party_doc``
    makes it."""
    return {
        "party_id": secrets.token_hex(6),
        "type": "person",
        "name": p.name,
        "id_cipher": cipher.encrypt(p.id_number, b"id_number"),
        "id_hash": cipher.keyed_hash(p.id_number),
        "id_masked": p.id_number[:3] + "*" * 11 + p.id_number[-4:],
        "credit_code": None,
        "phone": p.phone if with_phone else None,
        "address": p.address,
        "legal_representative": None,
        "user_id": None,
    }


def complaint_body(plaintiff: Person, defendant: Person, evidence: list[str]) -> dict[str, Any]:
    """The body of ``POST /api/v1/filings`` that ``draft_doc`` mirrors."""
    return {
        "court_id": COURT,
        "case_kind": "civil",
        "cause": _CAUSES[0],
        "plaintiffs": [
            {"type": "person", "name": plaintiff.name, "id_number": plaintiff.id_number,
             "phone": plaintiff.phone, "address": plaintiff.address}
        ],
        "defendants": [
            {"type": "person", "name": defendant.name, "id_number": defendant.id_number,
             "address": defendant.address}
        ],
        "claims": ["判令被告偿还借款本金100000元", "判令被告承担本案诉讼费用"],
        "facts": "2025年3月1日被告向原告借款10万元，约定2025年12月31日前归还，至今未还。",
        "amount_fen": 10_000_000,
        "evidence": evidence,
    }  # fmt: skip


def draft_doc(
    cipher: Cipher, filer_id: str, plaintiff: Person, defendant: Person, evidence: list[str],
    now: dt.datetime, cause: str = _CAUSES[0], green: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What ``FilingService.create`` inserts for ``complaint_body`` (+ ``green_channel``)."""
    body = complaint_body(plaintiff, defendant, evidence)
    plaintiffs = [party_doc(plaintiff, cipher)]
    doc: dict[str, Any] = {
        "court_id": COURT,
        "case_kind": "civil",
        "filer_id": filer_id,
        "as_agent": False,
        "green": bool(green),
        "status": "draft",
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "cause": cause,
        "plaintiffs": plaintiffs,
        "defendants": [party_doc(defendant, cipher, with_phone=False)],
        "claims": body["claims"],
        "facts": body["facts"],
        "amount_fen": body["amount_fen"],
        "evidence": evidence,
    }
    if green:
        doc["green_channel"] = green
    doc["party_hashes"] = sorted({p["id_hash"] for p in plaintiffs})
    return doc


def end_of_day(day: dt.date) -> dt.datetime:
    last = dt.datetime.combine(day, dt.time(23, 59, 59, 999_000), tzinfo=SHANGHAI)
    return last.astimezone(dt.UTC)


def review_deadline(submitted_at: dt.datetime, days: int = 7) -> dt.datetime:
    """End of the ``days``-th working day after submission (weekends only: close enough)."""
    day = submitted_at.astimezone(SHANGHAI).date()
    while days:
        day += dt.timedelta(days=1)
        days -= day.weekday() < 5
    return end_of_day(day)


def deadline_flag(deadline: dt.datetime, now: dt.datetime) -> str | None:
    """What the server's deadline sweep would have set by now (so it finds nothing to do)."""
    if deadline < now:
        return "overdue"
    soon = end_of_day(now.astimezone(SHANGHAI).date() + dt.timedelta(days=4))
    return "due_soon" if deadline <= soon else None


def submitted(doc: dict[str, Any], at: dt.datetime, deadline: dt.datetime) -> dict[str, Any]:
    """The draft after ``FilingService.submit``'s find_one_and_update."""
    return {
        **doc,
        "status": "submitted",
        "version": doc["version"] + 1,
        "submitted_at": at,
        "review_deadline": deadline,
        "deadline_flag": None,
        "updated_at": at,
        "decisions": [{"action": "submitted", "by": doc["filer_id"], "at": at}],
    }


def pending_doc(
    cipher: Cipher, rng: random.Random, filer_id: str, now: dt.datetime, backlog_days: float
) -> dict[str, Any]:
    """A filing submitted at a random time in the last ``backlog_days``, waiting for review;
    5 % through the green channel."""
    at = now - dt.timedelta(seconds=rng.uniform(0, backlog_days * 86400))
    green = [rng.choice(_GREEN)] if rng.random() < GREEN_SHARE else None
    plaintiff = person(rng)
    evidence = [str(ObjectId())]
    draft = draft_doc(
        cipher, filer_id, plaintiff, person(rng), evidence, at, rng.choice(_CAUSES), green
    )
    deadline = review_deadline(at)
    doc = submitted(draft, at + dt.timedelta(minutes=rng.uniform(1, 60)), deadline)
    doc["deadline_flag"] = deadline_flag(deadline, now)
    return doc


def local_day(when: dt.datetime) -> str:
    return when.astimezone(SHANGHAI).strftime("%Y年%m月%d日")


def announcement(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Title, body and data of the clerks' notice in ``FilingService._announce``."""
    names = "、".join(p["name"] for p in doc["plaintiffs"][:2])
    body = f"{names}：{doc['cause']}，请在{local_day(doc['review_deadline'])}前审查"
    return "新的网上立案申请", body, {"filing_id": str(doc["_id"]), "green_channel": doc["green"]}


def inbox_doc(user_id: str, doc: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    title, body, data = announcement(doc)
    return {
        "_id": ObjectId(),
        "user_id": user_id,
        "kind": "filing_submitted",
        "title": title,
        "body": body,
        "data": data,
        "page": f"pages/review/detail?id={doc['_id']}",
        "template": "filing_submitted",
        "read": False,
        "read_at": None,
        "created_at": now,
        "dedupe_key": f"filing:{doc['_id']}:submitted:{doc['version']}",
    }


def _cut(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def outbox_doc(notice: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    rendered = {
        "thing1": {"value": _cut(notice["title"])},
        "thing2": {"value": _cut(notice["body"])},
        "time3": {"value": now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")},
    }
    return {
        "notification_id": notice["_id"],
        "user_id": notice["user_id"],
        "template": "filing_submitted",
        "template_id": SUBMIT_TEMPLATE_ID,
        "data": rendered,
        "page": notice["page"],
        "status": "pending",
        "attempts": 0,
        "quota_taken": False,
        "next_attempt_at": now,
        "created_at": now,
    }


def staff_doc(username: str, password_hash: str, now: dt.datetime) -> dict[str, Any]:
    """A clerk of the court, as ``UserService.create_staff`` stores one."""
    return {
        "role": "clerk",
        "username": username,
        "name": "王书记员",
        "court_id": COURT,
        "supervisor": False,
        "division_head": False,
        "active": True,
        "password_hash": password_hash,
        "created_at": now,
    }
