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
