"""The collections filing owns, and their indexes: filings, drafts to decisions, and the review
queue's chunks (``queue_chunks``), read and written only by server/filing/store.py."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTIONS = ("filings", "filing_queue_chunks")  # the second: the queue's chunks, by court

INDEXES: dict[str, list[IndexModel]] = {
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
        # the deadline sweep: every field of its filter
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
}
