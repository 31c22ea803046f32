"""The collections cases owns, and their indexes: cases, hearings and the rooms' day locks,
served documents and the acceptance documents still owed; server/cases/store.py alone reads
and writes them."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("cases", "hearings", "hearing_rooms", "served_documents", "documents_owed")

INDEXES: dict[str, list[IndexModel]] = {
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
        # GET /cases (server/cases/views.py): newest activity first, _id breaking ties, so
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
    # Hearings (server/cases/hearings.py): a room's day (the overlap check), a case's hearings
    # (by status), and tomorrow's hearings still to be reminded; each filter has its own.
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
    # Electronic service (server/cases/service_of_documents.py): a case's served documents.
    "served_documents": [
        IndexModel([("case_id", ASCENDING), ("_id", ASCENDING)], name="by_case"),
        # GET /documents/verify: a generated document by its 验证码 (uploads have none)
        IndexModel([("verify_code", ASCENDING)], name="verify_code", unique=True, sparse=True),
    ],
    # The acceptance documents still owed (server/filing/acceptance_documents.py): the
    # recovery sweep reads those owed for longer than its grace, oldest first.
    "documents_owed": [IndexModel([("since", ASCENDING)], name="by_since")],
}
