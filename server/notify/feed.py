"""The live feed: each new inbox notice goes to every open WebSocket of its recipient, in
whichever process the socket is connected to.

One task per process follows the ``inbox`` collection's inserts through a MongoDB change
stream (resuming after errors) and hands each notice to the local sockets of its user. Where
the server offers no change streams it polls ``_id > last seen`` instead; ObjectIds of
different processes are only roughly ordered, so in that mode a notice can miss the live
feed (never the inbox). A second task re-checks each socket's session every heartbeat and
closes the sockets of signed-out or expired sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bson import ObjectId
from pymongo.errors import OperationFailure, PyMongoError

from models.notifications import notification_out
from server.notify.store import InboxStore
from server.platform.config import NotificationSettings
from server.platform.db import Database
from server.platform.errors import Unauthorized
from server.platform.periodic import cancel

log = logging.getLogger("microcourt.feed")

POLL_BATCH = 500
RETRY_SECONDS = 1.0
GOING_AWAY = 1001
SESSION_ENDED = 4401  # WebSocket close code: the session behind the socket is no longer valid


class FeedSocket(Protocol):
    """What the hub needs of a connected socket."""

    token: str

    def send(self, message: dict[str, Any]) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class FeedHub:
    def __init__(
        self,
        db: Database,
        config: NotificationSettings,
        check_token: Callable[[str], Awaitable[Any]],
        *,
        change_streams: bool = True,
    ) -> None:
        self.inbox = InboxStore(db)
        self.config = config
        self.check_token = check_token
        self.use_change_streams = change_streams
        self.ready = asyncio.Event()  # set once the listener follows new inserts
        self.mode = ""  # "change_stream" or "polling" once ready
        self._sockets: dict[str, set[FeedSocket]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._resume: Any = None

    # ---- local sockets

    def add(self, user_id: str, socket: FeedSocket) -> None:
        self._sockets.setdefault(user_id, set()).add(socket)

    def discard(self, user_id: str, socket: FeedSocket) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[user_id]

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    def dispatch(self, doc: dict[str, Any]) -> int:
        """Send one inbox document to its recipient's sockets here; how many got it."""
        sockets = self._sockets.get(str(doc.get("user_id")))
        if not sockets:
            return 0
        notice = notification_out(doc).model_dump(mode="json")
        message = {"type": "notification", "notification": notice}
        for socket in list(sockets):
            socket.send(message)
        return len(sockets)

    # ---- background tasks

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="feed-listener"),
                asyncio.create_task(self._check_sessions_forever(), name="feed-sessions"),
            ]

    async def stop(self) -> None:
        """Stop following the inbox and close the sockets here (1001: clients reconnect,
        possibly to another process)."""
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                socket.close(GOING_AWAY, "server shutting down")
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*(cancel(task) for task in tasks))
        self.ready.clear()

    async def _listen(self) -> None:
        if not self.use_change_streams:
            await self._poll_forever()
            return
        while True:
            try:
                await self._follow_stream()
            except OperationFailure as e:
                if self.mode != "change_stream":  # never opened: the server has none
                    log.warning("change streams unavailable (code %s): polling instead", e.code)
                    await self._poll_forever()
                    return
                self._resume = None  # e.g. resume history lost: go on from now
            except PyMongoError as e:
                log.warning("inbox change stream interrupted: %s", type(e).__name__)
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow_stream(self) -> None:
        stream = await self.inbox.watch_inserts(self._resume)
        async with stream:
            self.mode = "change_stream"
            self.ready.set()
            async for change in stream:
                self._resume = change["_id"]
                self._dispatch_safely(change.get("fullDocument") or {})

    async def _poll_forever(self) -> None:
        last = await self._newest_id()
        self.mode = "polling"
        self.ready.set()
        while True:
            try:
                last = await self.poll_once(last)
            except PyMongoError as e:
                log.warning("inbox poll failed: %s", type(e).__name__)
            await asyncio.sleep(self.config.feed_poll_seconds)

    async def _newest_id(self) -> ObjectId | None:
        return await self.inbox.newest_id()

    async def poll_once(self, after: ObjectId | None) -> ObjectId | None:
        """Dispatch inbox documents with ``_id > after``; the last ``_id`` seen."""
        async for doc in self.inbox.inserted_after(after, POLL_BATCH):
            self._dispatch_safely(doc)
            after = doc["_id"]
        return after

    def _dispatch_safely(self, doc: dict[str, Any]) -> None:
        try:
            self.dispatch(doc)
        except Exception:  # one bad document must not end the feed of everyone else
            log.exception("feed dispatch failed for %s", doc.get("_id"))

    async def check_sessions(self) -> int:
        """Close the sockets whose session has ended (logout, expiry); how many were closed."""
        closed = 0
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                try:
                    await self.check_token(socket.token)
                except Unauthorized:
                    socket.close(SESSION_ENDED, "session ended")
                    closed += 1
        return closed

    async def _check_sessions_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                await self.check_sessions()
            except PyMongoError as e:
                log.warning("feed session check failed: %s", type(e).__name__)
