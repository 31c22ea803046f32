"""The access log, gathered in batches: still one JSON line per request, with its fields."""

from __future__ import annotations

import json
import logging

import pytest

from server.platform.observe import ACCESS, JSONFormatter, access_log
from tests.factories import KeepRecords


@pytest.mark.gen_test
async def test_a_batch_is_one_record_and_one_line_per_request() -> None:
    keep, level = KeepRecords(), access_log.level
    access_log.addHandler(keep)
    access_log.setLevel(logging.INFO)
    try:
        ACCESS.flush()
        keep.records.clear()
        ACCESS.add({"request_id": "r1", "path": '/健康"z', "status": 200, "user": None})
        ACCESS.add({"request_id": "r2", "path": "/b", "status": 404, "user": "u"})
        assert keep.records == []  # not yet: the batch waits for its timer
        ACCESS.flush()
    finally:
        access_log.removeHandler(keep)
        access_log.setLevel(level)
    (record,) = keep.records
    lines = [json.loads(line) for line in JSONFormatter().format(record).split("\n")]
    assert [(x["request_id"], x["path"], x["status"], x["user"]) for x in lines] == [
        ("r1", '/健康"z', 200, None),
        ("r2", "/b", 404, "u"),
    ]
    assert all(x["logger"] == "microcourt.access" and x["msg"] == "request" for x in lines)
    assert all(x["ts"].endswith("Z") and len(x["ts"]) == 24 for x in lines)
