"""The collections the platform owns, and their indexes: leases (server/platform/lease.py),
idempotency keys (server/platform/idempotency.py), the audit log (server/platform/audit.py)
the numbering counters (server/platform/counters.py) and the rate-limit windows
(server/platform/ratelimit.py)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("leases", "idempotency", "audit", "counters", "rate_limits")

INDEXES: dict[str, list[IndexModel]] = {
    "idempotency": [
        IndexModel([("created_at", ASCENDING)], name="expire", expireAfterSeconds=24 * 3600),
    ],
    "rate_limits": [  # a window's counter goes once the window is over
        IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
    "audit": [
        IndexModel([("actor_id", ASCENDING), ("at", DESCENDING)], name="by_actor"),
        IndexModel([("target", ASCENDING), ("at", DESCENDING)], name="by_target"),
    ],
}
