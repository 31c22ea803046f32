"""``microcourt rollups rebuild``: the statistics' rollups built again from the orders, for
orders stored before the rollups existed (or to mend them), against the configured database
(the embedded one started for the purpose when none is configured)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from server.platform.config import Settings
from server.platform.db import close, ensure_indexes
from server.platform.mongo import connect
from server.workorders import rollups
from server.workorders.store import WorkOrderStore


async def rebuild_once(settings: Settings) -> int:
    """The cells written; the same orders give the same cells, so it may be run again."""
    async with AsyncExitStack() as stack:
        uri = settings.mongodb.uri
        if settings.mongodb.embedded:
            from server import devstack

            uri = await devstack.database_uri(settings, stack)
        client = connect(uri)
        try:
            db = client[settings.mongodb.database]
            await ensure_indexes(db)
            return await WorkOrderStore(db, rollups.zones(settings)).rebuild_rollups()
        finally:
            await close(client)
