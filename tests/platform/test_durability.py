"""Nothing acknowledged is lost when the database process dies (issue 18, point 1).

The embedded database is killed with SIGKILL while concurrent writers are still writing, plain
and transactional; started again on the same files, every write the driver acknowledged is
there. Without ``--sync-on-commit`` and the client's ``j: true``, 15-19 acknowledged writes
were lost per kill.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import PyMongoError

from server.devstack import EmbeddedDatabase
from server.platform.config import load_settings
from server.platform.mongo import connect

WRITERS = 8


async def _pair(coll: Any, key: str, session: Any) -> None:
    await coll.insert_one({"_id": key}, session=session)
    await coll.insert_one({"_id": key + "-pair"}, session=session)


async def _write_until_killed(uri: str) -> tuple[set[str], set[str]]:
    """Write plain and transactional documents until the database dies; the ids of the
    writes that were acknowledged, by kind."""
    client = connect(uri, timeout_ms=500)
    coll = client["durability"]["writes"]
    plain: set[str] = set()
    txn: set[str] = set()

    async def writer(w: int) -> None:
        for k in range(10_000):
            key = f"{w}-{k}"
            try:
                if k % 2:
                    await coll.insert_one({"_id": key})
                    plain.add(key)
                else:
                    async with (
                        client.start_session() as session,
                        await session.start_transaction(),
                    ):
                        await _pair(coll, key, session)
                    txn.add(key)
            except PyMongoError:
                return

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    await client.close()
    return plain, txn


def test_settings_ask_for_durable_writes() -> None:
    concern = load_settings().mongodb.write_concern.concern
    assert concern.document == {"w": "majority", "j": True, "wtimeout": 10000}
    client = connect("mongodb://127.0.0.1:1/?directConnection=true", concern)
    assert client.write_concern.document["j"] is True
    assert client.write_concern.document["w"] == "majority"


@pytest.mark.gen_test(timeout=120)
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    embedded = EmbeddedDatabase("secantusd-py", tmp_path, 60)
    uri = await embedded.start()
    assert embedded.process is not None
    writing = asyncio.create_task(_write_until_killed(uri))
    await asyncio.sleep(2.0)
    embedded.process.send_signal(signal.SIGKILL)
    await asyncio.get_running_loop().run_in_executor(None, embedded.process.wait)
    plain, txn = await writing
    assert len(plain) > 20 and len(txn) > 20, (len(plain), len(txn))

    uri = await embedded.start()
    client = connect(uri)
    try:
        stored: set[Any] = set(await client["durability"]["writes"].distinct("_id"))
    finally:
        await client.close()
        await embedded.stop()
    assert plain - stored == set()
    assert txn - stored == set()
    # a transaction is all or nothing
    assert {
        k
        for k in stored
        if isinstance(k, str) and not k.endswith("-pair") and int(k.split("-")[1]) % 2 == 0
    } == {k[: -len("-pair")] for k in stored if isinstance(k, str) and k.endswith("-pair")}
