"""The collections identity owns, and their indexes: accounts and revoked sessions, both read
and written by server/identity/store.py only (``UserStore``, ``RevocationStore``) for
``UserService``, ``Directory`` (the other capabilities' lookups) and ``AuthService``."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("users", "revocations", "face_results")

INDEXES: dict[str, list[IndexModel]] = {
    # Uniqueness of optional fields by sparse indexes, not partial ones (a partial index whose
    # filter is $exists/$type is passed over by the embedded database's planner). The fields
    # are left out, never stored as null, where they do not apply.
    "users": [
        IndexModel([("openid", ASCENDING)], name="openid_sparse", unique=True, sparse=True),
        IndexModel([("username", ASCENDING)], name="username_sparse", unique=True, sparse=True),
        IndexModel(
            [("identity.id_hash", ASCENDING)], name="id_hash_sparse", unique=True, sparse=True
        ),
        IndexModel([("court_id", ASCENDING), ("_id", DESCENDING)], name="by_court"),
        # UserStore.staff_ids (a court's staff by role, for notices)
        IndexModel([("court_id", ASCENDING), ("role", ASCENDING)], name="staff_by_court_role"),
        IndexModel([("lawyer.status", ASCENDING), ("_id", ASCENDING)], name="lawyers_by_status"),
        # UserStore.flagged_staff_ids: who hears of a court's unassigned and overdue orders
        IndexModel(
            [("court_id", ASCENDING), ("supervisor", ASCENDING), ("active", ASCENDING)],
            name="supervisors",
        ),
        IndexModel(
            [("court_id", ASCENDING), ("division_head", ASCENDING), ("active", ASCENDING)],
            name="division_heads",
        ),
    ],
    # FaceResultStore: _id is the result's digest (uniqueness for free); kept a year
    "face_results": [
        IndexModel([("at", ASCENDING)], name="expire", expireAfterSeconds=366 * 86400)
    ],
    "revocations": [
        IndexModel([("revoked_at", ASCENDING)], name="by_revoked_at"),
        IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
}
