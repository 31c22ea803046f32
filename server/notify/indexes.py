"""The collections notify owns, and their indexes: the in-app inbox (written by inbox.py,
watched by feed.py), the outbox of subscribe messages and the users' subscription quotas
(inbox.py writes them, outbox.py sends and spends them), all through server/notify/store.py."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("inbox", "outbox", "subscriptions")

INDEXES: dict[str, list[IndexModel]] = {
    "inbox": [
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="by_user"),
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING)], name="unread_by_user"),
        # every notice has a dedupe_key (its own id when the caller gave none)
        IndexModel([("user_id", ASCENDING), ("dedupe_key", ASCENDING)], name="dedupe", unique=True),
    ],
    "outbox": [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        # SMS delivery receipts name the provider's serial number (server/notify/sms.py).
        # Sparse, on fields only SMS items carry: every update rewrites every index entry of
        # its document on the embedded database, so a subscribe message (two updates each,
        # claim and outcome) must have entries in ``due`` and ``_id`` only.
        IndexModel([("serial_no", ASCENDING)], name="sms_serial_sparse", sparse=True),
        IndexModel([("phone", ASCENDING)], name="sms_by_phone", sparse=True),
    ],
    "subscriptions": [IndexModel([("user_id", ASCENDING)], name="by_user")],
}
