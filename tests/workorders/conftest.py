"""Every work-order test ends by checking that the statistics' rollups, kept in each order
change's transaction, are what the orders make of them built afresh."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tornado.ioloop import IOLoop

from server.workorders.rollups import normal, packed


@pytest.fixture(autouse=True)
def rollups_agree(request: pytest.FixtureRequest, io_loop: IOLoop) -> Iterator[None]:
    if "app" not in request.fixturenames:  # no server, no orders
        yield
        return
    store = request.getfixturevalue("services").workorders.store  # torn down after this
    yield

    async def compare() -> None:
        kept = {cid: normal(c) for cid, c in (await store.cells_kept()).items()}
        built = {cid: normal(packed(c)) for cid, c in (await store.cells_from_orders()).items()}
        kept = {cid: c for cid, c in kept.items() if c["g"]}
        assert kept == built

    io_loop.run_sync(compare)
