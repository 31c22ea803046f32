"""The database, its transactions, the read-decide-write of one document, and every index the
application's queries rely on. What the embedded database needs is in ``server.platform.mongo``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("microcourt.db")

Database = AsyncDatabase[dict[str, Any]]

INDEXES: dict[str, list[IndexModel]] = {
    # Uniqueness of optional fields by sparse indexes, not partial ones: SecantusDB's planner
    # passes over a partial index whose filter is $exists/$type (a collection scan instead).
    # The fields are left out, never stored as null, where they do not apply.
    "users": [
        IndexModel([("openid", ASCENDING)], name="openid_sparse", unique=True, sparse=True),
        IndexModel([("username", ASCENDING)], name="username_sparse", unique=True, sparse=True),
        IndexModel(
            [("identity.id_hash", ASCENDING)], name="id_hash_sparse", unique=True, sparse=True
        ),
        IndexModel([("court_id", ASCENDING), ("_id", DESCENDING)], name="by_court"),
        # NotificationService.court_staff; not partial, as SecantusDB's planner passes over
        # partial indexes whose filter is $exists/$type (a collection scan instead)
        IndexModel([("court_id", ASCENDING), ("role", ASCENDING)], name="staff_by_court_role"),
        IndexModel([("lawyer.status", ASCENDING), ("_id", ASCENDING)], name="lawyers_by_status"),
        # WorkOrderService.overseers: who hears of a court's unassigned and overdue orders
        IndexModel(
            [("court_id", ASCENDING), ("supervisor", ASCENDING), ("active", ASCENDING)],
            name="supervisors",
        ),
        IndexModel(
            [("court_id", ASCENDING), ("division_head", ASCENDING), ("active", ASCENDING)],
            name="division_heads",
        ),
    ],
    "revocations": [
        IndexModel([("revoked_at", ASCENDING)], name="by_revoked_at"),
        IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
    "filings": [
        IndexModel([("filer_id", ASCENDING), ("_id", DESCENDING)], name="by_filer"),
        IndexModel(
            [
                ("court_id", ASCENDING),
                ("status", ASCENDING),
                ("green", DESCENDING),
                ("review_deadline", ASCENDING),
                ("_id", ASCENDING),
            ],
            name="review_queue",
        ),
        IndexModel([("party_hashes", ASCENDING)], name="by_party"),
        # the deadline sweep: every field of its filter (SecantusDB uses an index only then)
        IndexModel(
            [
                ("court_id", ASCENDING),
                ("status", ASCENDING),
                ("review_deadline", ASCENDING),
                ("deadline_flag", ASCENDING),
            ],
            name="deadline_sweep",
        ),
    ],
    "cases": [
        IndexModel([("case_no", ASCENDING)], name="case_no_unique", unique=True),
        IndexModel(
            [
                ("court_id", ASCENDING),
                ("type_code", ASCENDING),
                ("year", ASCENDING),
                ("seq", ASCENDING),
            ],
            name="number_unique",
            unique=True,
        ),
        IndexModel([("filing_id", ASCENDING)], name="filing_unique", unique=True),
        # GET /cases (server/case_views.py): newest activity first, _id breaking ties, so
        # that each index gives the whole sort order and a page reads only its own rows.
        IndexModel(
            [("party_user_ids", ASCENDING), ("last_activity_at", DESCENDING), ("_id", DESCENDING)],
            name="party_activity",
        ),
        IndexModel(
            [("agent_ids", ASCENDING), ("last_activity_at", DESCENDING), ("_id", DESCENDING)],
            name="agent_activity",
        ),
        IndexModel(
            [("court_id", ASCENDING), ("last_activity_at", DESCENDING), ("_id", DESCENDING)],
            name="court_activity",
        ),
        IndexModel(
            [
                ("court_id", ASCENDING),
                ("status", ASCENDING),
                ("last_activity_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="court_status_activity",
        ),
        IndexModel(
            [
                ("court_id", ASCENDING),
                ("judge_id", ASCENDING),
                ("last_activity_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="court_judge_activity",
        ),
    ],
    # Hearings (server/hearings.py): a room's day (the overlap check), a case's hearings
    # (by status), and tomorrow's hearings still to be reminded. SecantusDB's planner uses
    # an index only when it holds every field of the filter, so each filter has its own.
    "hearings": [
        IndexModel(
            [("court_id", ASCENDING), ("room", ASCENDING), ("starts_at", ASCENDING)],
            name="room_schedule",
        ),
        IndexModel(
            [("case_id", ASCENDING), ("status", ASCENDING), ("starts_at", ASCENDING)],
            name="by_case",
        ),
        IndexModel(
            [("court_id", ASCENDING), ("reminder_pending", ASCENDING), ("starts_at", ASCENDING)],
            name="reminders",
        ),
    ],
    # Electronic service (server/service_of_documents.py): a case's served documents.
    "payments": [
        IndexModel([("out_trade_no", ASCENDING)], name="out_trade_no_unique", unique=True),
        # one open order per fee notice: the field is set while pending and removed after
        IndexModel([("open_for", ASCENDING)], name="open_for_sparse", unique=True, sparse=True),
        # a case's payments (staff) or a payer's on it: equality fields first, then the order
        IndexModel(
            [("case_id", ASCENDING), ("payer_id", ASCENDING), ("_id", ASCENDING)],
            name="by_case_payer",
        ),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="expiry_sweep"),
        IndexModel([("status", ASCENDING), ("paid_at", ASCENDING)], name="paid_on_day"),
    ],
    "refunds": [
        IndexModel([("out_refund_no", ASCENDING)], name="out_refund_no_unique", unique=True),
        IndexModel(
            [("case_id", ASCENDING), ("payer_id", ASCENDING), ("_id", ASCENDING)],
            name="by_case_payer",
        ),
    ],
    "fee_notices": [
        IndexModel([("case_id", ASCENDING), ("_id", ASCENDING)], name="by_case"),
        # the overdue sweep filters on all three (SecantusDB wants every filtered field)
        IndexModel(
            [("status", ASCENDING), ("overdue_at", ASCENDING), ("due_at", ASCENDING)],
            name="overdue_sweep",
        ),
    ],
    "served_documents": [
        IndexModel([("case_id", ASCENDING), ("_id", ASCENDING)], name="by_case"),
    ],
    # Messages and their work orders (server/workorders.py and beside it): a sender's list,
    # a judge's or clerk's (assigned to them; on their cases), a supervisor's court list by
    # status, assignee or overdue, the statistics' (court_id, created_at) range, the sweep.
    "workorders": [
        IndexModel([("no", ASCENDING)], name="no_unique", unique=True),
        IndexModel([("sender_id", ASCENDING), ("_id", DESCENDING)], name="by_sender"),
        IndexModel([("case_staff_ids", ASCENDING), ("_id", DESCENDING)], name="by_case_staff"),
        IndexModel([("court_id", ASCENDING), ("_id", DESCENDING)], name="by_court"),
        IndexModel(
            [("court_id", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)],
            name="court_status",
        ),
        IndexModel(
            [("court_id", ASCENDING), ("assignee_id", ASCENDING), ("_id", DESCENDING)],
            name="court_assignee",
        ),
        IndexModel([("court_id", ASCENDING), ("overdue_at", ASCENDING)], name="court_overdue"),
        IndexModel([("court_id", ASCENDING), ("created_at", ASCENDING)], name="stats"),
        IndexModel([("sweep_at", ASCENDING)], name="sweep"),
    ],
    "idempotency": [
        IndexModel([("created_at", ASCENDING)], name="expire", expireAfterSeconds=24 * 3600),
    ],
    # GridFS bucket "files": the driver's own two indexes (same keys, so it finds them and
    # creates none), and the owner lookup of FileService.check_owned.
    "files.files": [
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)]),
        IndexModel([("metadata.owner_id", ASCENDING), ("_id", ASCENDING)], name="by_owner"),
    ],
    "files.chunks": [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True),
    ],
    # Notifications (server/notifications.py, server/outbox.py, server/feed.py).
    "inbox": [
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="by_user"),
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING)], name="unread_by_user"),
        # every notice has a dedupe_key (its own id when the caller gave none)
        IndexModel([("user_id", ASCENDING), ("dedupe_key", ASCENDING)], name="dedupe", unique=True),
    ],
    "outbox": [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
    ],
    "subscriptions": [IndexModel([("user_id", ASCENDING)], name="by_user")],
    "audit": [
        IndexModel([("actor_id", ASCENDING), ("at", DESCENDING)], name="by_actor"),
        IndexModel([("target", ASCENDING), ("at", DESCENDING)], name="by_target"),
    ],
}


T = TypeVar("T")
D = TypeVar("D")

#: how many times a read-decide-write reads again after losing a race before it answers 409
ATTEMPTS = 3


async def in_transaction(db: Database, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (retried by the driver on transient conflicts)."""
    async with db.client.start_session() as session:
        return await session.with_transaction(work)


class LostRace(Exception):
    """A conditional write found the document no longer as it was read: read again."""


def won(raw: T | None) -> T:
    """The result of a conditional write (``change_one``), or ``LostRace`` if it matched
    nothing."""
    if raw is None:
        raise LostRace
    return raw


async def read_decide_write(
    read: Callable[[], Awaitable[D]],
    decide_write: Callable[[D], Awaitable[T]],
    busy: Callable[[], Exception],
    attempts: int = ATTEMPTS,
) -> T:
    """Change one document by what its current state allows, safe against concurrent writers.

    ``read`` loads it (raising its 404); ``decide_write`` decides from the state read
    (raising the typed 403/409/422 that state calls for) and writes conditionally on it (the
    version or the status read; ``won`` of a ``change_one``), raising ``LostRace`` when the
    condition no longer holds: a transaction around the write is then aborted with it, and
    the document read again and decided anew. After ``attempts`` lost races, ``busy()`` (a
    409) is raised.
    """
    for _ in range(attempts):
        doc = await read()
        try:
            return await decide_write(doc)
        except LostRace:
            continue
    raise busy()


async def ensure_indexes(db: Database) -> None:
    """Create every index, and drop the ones this code no longer names; safe to run on every
    start-up and from every process."""
    for collection, models in INDEXES.items():
        wanted = {m.document["name"] for m in models} | {"_id_"}
        existing = [ix["name"] async for ix in await db[collection].list_indexes()]
        for name in set(existing) - wanted:
            await db[collection].drop_index(name)
            log.info("dropped index %s.%s", collection, name)
        await db[collection].create_indexes(models)
    log.info("indexes ready on %d collections", len(INDEXES))
