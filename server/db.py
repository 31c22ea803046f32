"""The MongoDB client, and every index the application's queries rely on."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("microcourt.db")

Database = AsyncDatabase[dict[str, Any]]

_EXISTS_STR = {"$exists": True, "$type": "string"}

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel(
            [("openid", ASCENDING)],
            name="openid_unique",
            unique=True,
            partialFilterExpression={"openid": _EXISTS_STR},
        ),
        IndexModel(
            [("username", ASCENDING)],
            name="username_unique",
            unique=True,
            partialFilterExpression={"username": _EXISTS_STR},
        ),
        IndexModel(
            [("identity.id_hash", ASCENDING)],
            name="identity_hash_unique",
            unique=True,
            partialFilterExpression={"identity.id_hash": _EXISTS_STR},
        ),
        IndexModel(
            [("court_id", ASCENDING), ("_id", DESCENDING)],
            name="staff_by_court",
            partialFilterExpression={"court_id": _EXISTS_STR},
        ),
        IndexModel([("lawyer.status", ASCENDING), ("_id", ASCENDING)], name="lawyers_by_status"),
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
        IndexModel(
            [("party_user_ids", ASCENDING), ("last_activity_at", DESCENDING)], name="by_party_user"
        ),
        IndexModel([("court_id", ASCENDING), ("last_activity_at", DESCENDING)], name="by_court"),
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
        # a key pattern of its own (ascending _id), as two indexes may not share one
        IndexModel(
            [("user_id", ASCENDING), ("_id", ASCENDING)],
            name="unread_by_user",
            partialFilterExpression={"read": False},
        ),
        IndexModel(
            [("user_id", ASCENDING), ("dedupe_key", ASCENDING)],
            name="dedupe_unique",
            unique=True,
            partialFilterExpression={"dedupe_key": _EXISTS_STR},
        ),
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


def connect(uri: str, timeout_ms: int = 5000) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        appname="microcourt",
    )


async def ensure_indexes(db: Database) -> None:
    """Create every index; safe to run on every start-up and from every process."""
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
    log.info("indexes ready on %d collections", len(INDEXES))
