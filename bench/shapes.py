"""Filing and staff documents by the server's own builders and calendar; no I/O in here."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from models.filings import PartyIn, PartyType
from server.filing import parties
from server.filing.store import submit_update
from server.identity.idnumber import check_char
from server.platform.calendar import Calendars, CourtCalendar
from server.platform.config import CourtSettings, Settings, load_settings
from server.platform.crypto import FieldCipher

Cipher = FieldCipher
COURT = "bj-chaoyang"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GREEN_SHARE = 0.05
_REGIONS = ("110105", "110108", "110101", "110106", "130102", "310115", "320102", "410105")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰")
_CAUSES = ("民间借贷纠纷", "买卖合同纠纷", "劳动争议", "物业服务合同纠纷", "机动车交通事故责任纠纷")
_GREEN = ("elderly", "disabled", "migrant_wages", "military", "minor", "enterprise")


@cache
def settings() -> Settings:
    return load_settings()


def court() -> CourtSettings:
    found = settings().court(COURT)
    assert found is not None
    return found


@cache
def calendar() -> CourtCalendar:
    return Calendars(settings()).for_court(COURT)


def id_number(rng: random.Random, serial: int | None = None) -> str:
    """A valid resident ID number (GB 11643-1999); ``serial`` (< 10**6) makes it unique."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(50 * 365))
    if serial is None:
        head = f"{rng.choice(_REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    else:  # region and birth date from the serial: distinct serials, distinct numbers
        born = dt.date(1960, 1, 1) + dt.timedelta(days=serial % 9000)
        head = f"1101{serial // 9000 % 100:02d}{born:%Y%m%d}{serial % 1000:03d}"
    return head + check_char(head)


def person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str
    address: str


def person(rng: random.Random, name: str | None = None, number: str | None = None) -> Person:
    name, number = name or person_name(rng), number or id_number(rng)
    phone = f"13{rng.randrange(10)}{rng.randrange(10**8):08d}"
    street = rng.choice(("建国路", "朝阳北路", "中关村大街", "望京街", "三里屯路"))
    return Person(name, number, phone, f"北京市朝阳区{street}{rng.randrange(1, 300)}号")


def party_doc(p: Person, cipher: FieldCipher, with_phone: bool = True) -> dict[str, Any]:
    """A person's stored form, by ``server.filing.parties.party_doc`` itself."""
    fields = {**asdict(p), "phone": p.phone if with_phone else None}
    data = PartyIn(type=PartyType.person, **fields)
    found = parties.party_doc("plaintiffs", 0, data, {}, cipher, dt.date.today(), [])
    return found.model_dump()


def complaint_body(plaintiff: Person, defendant: Person, evidence: list[str]) -> dict[str, Any]:
    """The body of ``POST /api/v1/filings`` that ``draft_doc`` mirrors."""
    return {
        "court_id": COURT,
        "case_kind": "civil",
        "cause": _CAUSES[0],
        "plaintiffs": [{"type": "person", **asdict(plaintiff)}],
        "defendants": [{"type": "person", **asdict(defendant), "phone": None}],
        "claims": ["判令被告偿还借款本金100000元", "判令被告承担本案诉讼费用"],
        "facts": "2025年3月1日被告向原告借款10万元，约定2025年12月31日前归还，至今未还。",
        "amount_fen": 10_000_000,
        "evidence": evidence,
    }


def draft_doc(
    cipher: Cipher,
    filer_id: str,
    plaintiff: Person,
    defendant: Person,
    evidence: list[str],
    now: dt.datetime,
    cause: str = _CAUSES[0],
    green: list[str] | None = None,
) -> dict[str, Any]:
    """What ``FilingService.create`` inserts for ``complaint_body`` (+ ``green_channel``)."""
    body = complaint_body(plaintiff, defendant, evidence)
    plaintiffs = [party_doc(plaintiff, cipher)]
    return {
        **{k: body[k] for k in ("court_id", "case_kind")},
        **{"filer_id": filer_id, "as_agent": False, "green": bool(green), "cause": cause},
        **{"status": "draft", "version": 1, "created_at": now, "updated_at": now},
        "plaintiffs": plaintiffs,
        "defendants": [party_doc(defendant, cipher, with_phone=False)],
        **{k: body[k] for k in ("claims", "facts", "amount_fen", "evidence")},
        **({"green_channel": green} if green else {}),
        "party_hashes": sorted({p["id_hash"] for p in plaintiffs}),
    }


def review_deadline(submitted_at: dt.datetime, days: int | None = None) -> dt.datetime:
    """``FilingService.submit``'s deadline: ``days`` working days on the court's calendar."""
    deadlines = court().deadlines
    days = days or deadlines.review_days.get("civil", deadlines.default_review_days)
    return calendar().deadline_at(submitted_at, days)


def deadline_flag(deadline: dt.datetime, now: dt.datetime) -> str | None:
    """What the server's deadline sweep would have set by now (so it finds nothing to do)."""
    if deadline < now:
        return "overdue"
    cal = calendar()  # as ``ReviewService.sweep_deadlines``: due today or the next working day
    soon = cal.end_of_day(cal.next_working_day(cal.local_date(now) + dt.timedelta(days=1)))
    return "due_soon" if deadline <= soon else None


def submitted(doc: dict[str, Any], at: dt.datetime, deadline: dt.datetime) -> dict[str, Any]:
    """The draft after ``FilingService.submit``'s update (``submit_update``)."""
    update = submit_update(doc["filer_id"], "submitted", at, deadline)
    more = {"version": doc["version"] + 1, "decisions": [update["$push"]["decisions"]]}
    return {**doc, **update["$set"], **more}


def pending_doc(
    cipher: Cipher, rng: random.Random, filer_id: str, now: dt.datetime, backlog_days: float
) -> dict[str, Any]:
    """A filing submitted in the last ``backlog_days``, waiting for review."""
    at = now - dt.timedelta(seconds=rng.uniform(0, backlog_days * 86400))
    green = [rng.choice(_GREEN)] if rng.random() < GREEN_SHARE else None
    people, evidence = (person(rng), person(rng)), [str(ObjectId())]
    draft = draft_doc(cipher, filer_id, *people, evidence, at, rng.choice(_CAUSES), green)
    deadline = review_deadline(at)
    doc = submitted(draft, at + dt.timedelta(minutes=rng.uniform(1, 60)), deadline)
    doc["deadline_flag"] = deadline_flag(deadline, now)
    return doc


def staff_doc(
    role: str = "clerk", name: str = "王书记员", supervisor: bool = False
) -> dict[str, Any]:
    """``UserService.create_staff``'s document, a fresh username (``staff_login`` adds a hash)."""
    me = {"role": role, "username": f"bench.{role}.{secrets.token_hex(4)}", "name": name}
    court = {"court_id": COURT, "supervisor": supervisor, "division_head": False, "active": True}
    return {**me, **court, "password_hash": "", "created_at": dt.datetime.now(dt.UTC)}
