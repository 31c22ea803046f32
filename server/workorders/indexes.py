"""The collection workorders owns, and its indexes: messages and their work orders, read and
written by server/workorders/store.py alone."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("workorders", "workorder_rollups")

INDEXES: dict[str, list[IndexModel]] = {
    # a sender's list, a judge's or clerk's (assigned to them; on their cases), a supervisor's
    # court list by status, assignee or overdue, the statistics' (court_id, created_at) range,
    # the sweep.
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
        # 1+N: a caller's orders by their verified phone, the SMS link, the desk's own
        IndexModel([("caller_phone", ASCENDING), ("_id", DESCENDING)], name="by_caller_phone"),
        IndexModel([("link_token", ASCENDING)], name="by_link"),
        IndexModel([("opened_by", ASCENDING), ("_id", DESCENDING)], name="by_opener"),
    ],
    # the statistics' rollups (server/workorders/rollups.py): a grouping's cells of a range
    # of days, for one court or several
    "workorder_rollups": [
        IndexModel([("by", ASCENDING), ("court_id", ASCENDING), ("day", ASCENDING)], name="cells"),
    ],
}
