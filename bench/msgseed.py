"""Seed data of messages to the court: work orders as ``MessageService.create`` and the later
changes write them (working time, weekdays only), the staff, and the checks."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from bench import caseseed as cs
from bench import filingseed as fs
from bench import shapes
from bench.seed import (
    Db,
    Numbers,
    SeedError,
    SignedIn,
    call,
    check_shapes,
    insert_batches,
    staff_login,
)
from models.workorders import WorkOrderStatus
from server.workorders import rules
from server.workorders.rules import to_ms
from server.workorders.store import SUMMARY_EXCLUDE, mine_filter, workorder_number

CATEGORIES = ("进度查询", "庭审安排", "证据材料", "缴费退费", "执行", "投诉", "其他")
MESSAGES_PATH = "/api/v1/messages"
STATS_PATH = "/api/v1/workorders/stats"
PAGE = 20
ASSIGNEES = 20  # judges the seeded orders are spread over
LATER = (  # the fields a reply, closing and rating fill in
    "first_replied_at first_reply_seconds first_reply_on_time closed_at closed_by close_note"
    " closed_on_time rating rating_score"
)
STAFF_BASE = (1 << 16) - 16  # X-Real-Ip numbers of the staff sign-ins


def deadlines(created: dt.datetime) -> dict[str, Any]:
    """``workorders.rules.deadlines`` on the court's calendar: three deadlines, six steps."""
    return rules.deadlines(shapes.calendar(), shapes.court().deadlines.workorder, created)


def applicable(status: str, replied: bool) -> set[str]:
    return {k.value for k in rules.applicable(WorkOrderStatus(status), replied)}


def swept(doc: dict[str, Any], now: dt.datetime) -> None:
    """What the sweep would have left by ``now`` (``schedule`` and ``_escalate``)."""
    kinds = applicable(doc["status"], doc["first_replied_at"] is not None)
    steps = [s for s in doc["steps"] if s["kind"] in kinds]
    due = [s for s in steps if s["at"] <= now]
    doc["escalations"] = [
        {"kind": s["kind"], "level": s["level"], "due_at": s["at"], "at": s["at"]} for s in due
    ]
    doc["escalation_level"] = max([0, *(s["level"] for s in due)])
    firsts = [s["at"] for s in steps if s["level"] == 1]
    rest = [s["at"] for s in steps if s["at"] > now]
    doc["overdue_at"] = min(firsts) if firsts else None
    doc["sweep_at"] = min(rest) if rest else None


@dataclass(frozen=True)
class Staff:
    judge: SignedIn
    supervisor: SignedIn
    assignees: list[str]  # the judge and the others orders are spread over


def make_staff(api: str, db: Db) -> Staff:
    now = dt.datetime.now(dt.UTC)

    def doc(role: str, name: str, supervisor: bool = False) -> dict[str, Any]:
        username = f"bench.{role}.{secrets.token_hex(4)}"
        return shapes.staff_doc(username, now, role, name, supervisor)

    judge = staff_login(api, db, doc("judge", "王法官"), STAFF_BASE)
    supervisor = staff_login(api, db, doc("clerk", "赵督办", True), STAFF_BASE + 1)
    others = [doc("judge", f"法官{i}") for i in range(ASSIGNEES - 1)]
    ids = db["users"].insert_many(others).inserted_ids
    return Staff(judge, supervisor, [judge.user_id, *(str(i) for i in ids)])


def api_case_with_judge(
    api: str, litigant: fs.Filer, clerk: SignedIn, judge: SignedIn, db: Db
) -> str:
    case_id = cs.api_case(api, litigant, clerk, db)
    body = {"judge_id": judge.user_id, "clerk_id": clerk.user_id}
    call(f"{api}/api/v1/cases/{case_id}/assign", body, clerk.token)
    return case_id


def message_body(case_id: str) -> dict[str, Any]:
    content = "请问本案何时开庭？能否线上开庭？"
    return {"case_id": case_id, "category": "庭审安排", "content": content}


def api_message(api: str, litigant: fs.Filer, case_id: str) -> dict[str, Any]:
    body = call(f"{api}{MESSAGES_PATH}", message_body(case_id), litigant.token, status=201)
    if body.get("status") != "assigned":
        raise SeedError(f"POST {MESSAGES_PATH}: not assigned: {body}")
    return body


def order_doc(
    rng: random.Random,
    seq: int,
    created: dt.datetime,
    sender: str,
    assignee: str | None,
    case: tuple[str, str] | None,
) -> dict[str, Any]:
    """What ``MessageService.create`` inserts (number ``seq`` of its year)."""
    year = created.astimezone(shapes.SHANGHAI).year
    question = f"请问第{rng.randrange(1, 999)}号问题如何处理？"
    content = question + "请尽快答复。" * rng.randrange(1, 8)
    first = {"id": str(ObjectId()), "by": sender, "side": "sender", "name": None}
    doc = {
        "_id": ObjectId(),
        "no": workorder_number(year, shapes.court().code, seq),
        "seq": seq,
        "year": year,
        "court_id": shapes.COURT,
        "sender_id": sender,
        "sender_name": shapes.person_name(rng),
        "case_id": case[0] if case else None,
        "case_no": case[1] if case else None,
        "case_staff_ids": [assignee] if case and assignee else [],
        "category": rng.choice(CATEGORIES),
        "status": "assigned" if assignee else "pending",
        "assignee_id": assignee,
        "assigned_at": created if assignee else None,
        "thread": [{**first, "content": content, "attachments": [], "at": created}],
        "excerpt": content[:60],
        "attachments": [],
        "content_check": {"suggest": "pass", "label": 100, "trace_id": secrets.token_hex(8)},
        **deadlines(created),
        **dict.fromkeys(LATER.split()),
        **{"escalations": [], "escalation_level": 0, "assignments": [], "version": 1},
        "created_at": created,
        "updated_at": created,
    }
    swept(doc, created)
    return doc


@dataclass
class OrderSeeder:
    """Work orders of one court, numbered per year as the server's counter would."""

    db: Db
    senders: list[str]
    assignees: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    numbers: Numbers | None = None
    count: int = 0
    seconds: float = 0.0

    def order(
        self,
        created: dt.datetime,
        *,
        sender: str | None = None,
        assignee: str | None = None,
        case: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        created = to_ms(created)
        self.numbers = self.numbers or Numbers(self.db, f"workorder_no|{shapes.COURT}")
        seq = self.numbers.next(created.astimezone(shapes.SHANGHAI).year)
        sender = sender or self.rng.choice(self.senders)
        return order_doc(self.rng, seq, created, sender, assignee, case)

    def advance(self, doc: dict[str, Any], status: str, now: dt.datetime) -> dict[str, Any]:
        """Take a new order to ``status`` as the API would, then as the sweep by ``now``."""
        if status in ("replied", "closed"):
            self._reply(doc, now)
        if status == "closed":
            self._close(doc, now)
        swept(doc, now)
        return doc

    def _reply(self, doc: dict[str, Any], now: dt.datetime) -> None:
        at = to_ms(doc["created_at"] + dt.timedelta(seconds=self.rng.uniform(60, 4 * 86400)))
        at = min(at, now)
        reply = {"id": str(ObjectId()), "side": "court", "by": doc["assignee_id"], "at": at}
        doc["thread"].append({**doc["thread"][0], **reply, "name": "王法官", "content": "已收到"})
        doc.update(
            status="replied",
            first_replied_at=at,
            updated_at=at,
            version=2,
            first_reply_seconds=(at - doc["created_at"]).total_seconds(),
            first_reply_on_time=at <= doc["first_reply_due_at"],
        )

    def _close(self, doc: dict[str, Any], now: dt.datetime) -> None:
        after = dt.timedelta(hours=self.rng.uniform(1, 48))
        at = min(to_ms(doc["first_replied_at"] + after), now)
        doc.update(
            status="closed",
            closed_at=at,
            closed_by=doc["assignee_id"],
            closed_on_time=at <= doc["close_due_at"],
            updated_at=at,
            version=3,
        )
        if self.rng.random() < 0.7:
            score = self.rng.choice((5, 5, 5, 4, 4, 3, 2, 1))
            doc.update(rating={"score": score, "comment": None, "at": at}, rating_score=score)

    def insert(self, docs: Iterable[dict[str, Any]]) -> None:
        began = time.perf_counter()
        self.count += insert_batches(self.db["workorders"], docs)
        if self.numbers:
            self.numbers.commit()
        self.seconds += time.perf_counter() - began

    def history(self, total: int, now: dt.datetime) -> float:
        began = time.perf_counter()
        left = total - self.db["workorders"].estimated_document_count()
        self.insert(self._past(now) for _ in range(left))
        return time.perf_counter() - began

    def _past(self, now: dt.datetime) -> dict[str, Any]:
        created = now - dt.timedelta(seconds=self.rng.uniform(3600, 365 * 86400))
        roll = self.rng.random()
        assignee = None if roll < 0.08 else self.rng.choice(self.assignees)
        status = "assigned" if roll < 0.2 else "replied" if roll < 0.35 else "closed"
        status = "pending" if assignee is None else status
        return self.advance(self.order(created, assignee=assignee), status, now)


def check_shape(db: Db, api_id: str, seeded: dict[str, Any]) -> None:
    api_doc = db["workorders"].find_one({"_id": ObjectId(api_id)})
    check_shapes("work orders", [(api_doc, seeded, "work order")])


def first_page(db: Db, sender: str) -> list[str]:
    cursor = db["workorders"].find(mine_filter(sender), SUMMARY_EXCLUDE).sort("_id", -1)
    return [str(d["_id"]) for d in cursor.limit(PAGE + 1)][:PAGE]


def check_list(api: str, token: str, db: Db, sender: str) -> None:
    page = call(f"{api}{MESSAGES_PATH}", token=token)
    got, expected = [m["id"] for m in page.get("items", [])], first_page(db, sender)
    if got != expected or len(got) != PAGE:
        raise SeedError(f"GET {MESSAGES_PATH}: API {got[:3]}..., raw {expected[:3]}...")


def overdue_doc(seeder: OrderSeeder, due: dt.datetime, far: dt.datetime) -> dict[str, Any]:
    """Unassigned, its assignment deadline passed at ``due``, every other step at ``far``."""
    doc = seeder.order(due - dt.timedelta(hours=1))
    far = to_ms(far)
    for step in doc["steps"]:
        step["at"] = due if (step["kind"], step["level"]) == ("assign", 1) else far
    doc.update(
        assign_due_at=due, first_reply_due_at=far, close_due_at=far, overdue_at=due, sweep_at=due
    )
    return doc


def hold_sweep(db: Db, hold: bool) -> None:
    """Take the server's sweep lease for the bench, or give it back (expired)."""
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=1) if hold else now - dt.timedelta(seconds=1)
    db["leases"].update_one(
        {"_id": "workorder-sweep"}, {"$set": {"owner": "bench", "expires_at": until}}, upsert=True
    )


def wait_swept(db: Db, last: list[ObjectId], timeout: float) -> None:
    """Until the last orders inserted are escalated (the sweep takes them in order)."""
    until = time.monotonic() + timeout
    # by _id alone: SecantusDB scans the collection for {_id: {$in}} with any other field
    query = {"_id": {"$in": last}}
    while any(
        d["escalation_level"] == 0 for d in db["workorders"].find(query, {"escalation_level": 1})
    ):
        if time.monotonic() > until:
            raise SeedError(f"orders still not escalated after {timeout:.0f} s")
        time.sleep(0.25)


def escalation_waits(
    db: Db, far: dt.datetime, since: dt.datetime, count: int
) -> tuple[float, float]:
    """p50 and p99 (ms) of the waits from ``since`` to each escalation, once each of the
    ``count`` orders was escalated once and its supervisor told once."""
    for _ in range(120):
        found = db["workorders"].find({"sweep_at": to_ms(far)}, {"escalations": 1})
        waits = sorted(
            (d["escalations"][0]["at"] - since).total_seconds() * 1000
            for d in found
            if len(d["escalations"]) == 1
        )
        told = db["inbox"].count_documents({"kind": "workorder_escalated"})
        if len(waits) == count and told == count:
            return waits[len(waits) // 2], waits[max(0, -(-99 * len(waits) // 100) - 1)]
        time.sleep(5)
    raise SeedError(f"{len(waits)} orders escalated once and {told} notices, expected {count}")
