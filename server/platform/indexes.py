"""The collections the platform owns, and their indexes: leases (server/platform/lease.py),
idempotency keys (server/platform/idempotency.py), the audit log (server/platform/audit.py)
and the numbering counters (server/platform/counters.py)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("leases", "idempotency", "audit", "counters")

INDEXES: dict[str, list[IndexModel]] = {
    "idempotency": [
        IndexModel([("created_at", ASCENDING)], name="expire", expireAfterSeconds=24 * 3600),
    ],
    "audit": [
        IndexModel([("actor_id", ASCENDING), ("at", DESCENDING)], name="by_actor"),
        IndexModel([("target", ASCENDING), ("at", DESCENDING)], name="by_target"),
    ],
}
