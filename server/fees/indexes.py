"""The collections fees owns, and their indexes: fee notices, payments and refunds, read and
written by server/fees/store.py alone (each index names the store's query it serves)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

COLLECTIONS = ("fee_notices", "payments", "refunds")

INDEXES: dict[str, list[IndexModel]] = {
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
        # refunds WeChat Pay has not settled yet, oldest first (the refund sweep)
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)], name="processing_sweep"),
        IndexModel(
            [("case_id", ASCENDING), ("payer_id", ASCENDING), ("_id", ASCENDING)],
            name="by_case_payer",
        ),
    ],
    "fee_notices": [
        IndexModel([("case_id", ASCENDING), ("_id", ASCENDING)], name="by_case"),
        # the overdue sweep filters on all three (an index holding every filtered field)
        IndexModel(
            [("status", ASCENDING), ("overdue_at", ASCENDING), ("due_at", ASCENDING)],
            name="overdue_sweep",
        ),
    ],
}
