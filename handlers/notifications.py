"""Notifications: the in-app inbox, subscribe-message quotas, and the live feed (WebSocket)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tornado import websocket

from handlers.base import OBJECT_ID, APIHandler, api, authenticated, idempotent
from models.notifications import (
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    SubscriptionsIn,
    SubscriptionsOut,
)
from server.notify.errors import WebsocketRequired
from server.platform.errors import Unauthorized

if TYPE_CHECKING:
    from asyncio import Future

    from server.identity.auth import Principal
    from server.notify.feed import FeedHub

MAX_CLIENT_MESSAGE_BYTES = 4096


class NotificationsHandler(APIHandler):
    @authenticated
    @api(query=NotificationQuery, response=NotificationPage)
    async def get(self) -> None:
        """GET /api/v1/notifications: my notices, newest first, cursor-paged.

        ``?unread=true`` lists unread ones only; ``unread`` in the answer counts them all.
        200; 400 bad cursor; 401 not signed in; 422 bad query.
        """
        query = self.parse_query(NotificationQuery)
        self.write_json(await self.services.notifications.list_for(self.caller, query))


class NotificationReadHandler(APIHandler):
    @authenticated
    @api(response=NotificationOut)
    async def post(self, notification_id: str) -> None:
        """POST /api/v1/notifications/{notification_id}/read: mark one of my notices read.

        200 the notice (marking it again changes nothing); 404 no such notice of mine;
        401 not signed in.
        """
        notice = await self.services.notifications.mark_read(self.caller, notification_id)
        self.write_json(notice)


class SubscriptionsHandler(APIHandler):
    @authenticated
    @idempotent
    @api(body=SubscriptionsIn, response=SubscriptionsOut)
    async def post(self) -> None:
        """POST /api/v1/me/subscriptions: sends granted by ``wx.requestSubscribeMessage``.

        Body: the WeChat template ids the user accepted (not our logical names); each adds
        one send of that template. 200 my remaining sends per template; 422 an unknown
        template id or a bad body; 401 not signed in.
        """
        data = self.parse_body(SubscriptionsIn)
        result = await self.services.notifications.add_subscriptions(self.caller, data.template_ids)
        self.write_json(result)


class FeedHandler(APIHandler, websocket.WebSocketHandler):
    """The live feed: ``{"type": "ready", "unread": n}`` once, then
    ``{"type": "notification", "notification": {...}}`` for each new notice of mine.
    A client may send ``{"type": "ping"}`` and gets ``{"type": "pong"}``."""

    token = ""
    _user_id = ""

    @property
    def hub(self) -> FeedHub:
        return self.services.feed

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.clear_header("Content-Type")  # a 101 has no body; write_error sets its own

    async def authenticate(self) -> Principal:
        """``Authorization: Bearer``, or ``?token=`` for clients that cannot set headers
        (the query string is never logged: the access log writes the path only)."""
        if self.principal is None:
            scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                token = self.get_query_argument("token", "")
            if not token.strip():
                raise Unauthorized()
            self.principal = await self.services.auth.authenticate(token.strip())
            self.token = token.strip()
        return self.principal

    @authenticated
    @api(status=101)
    async def get(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """GET /api/v1/ws: open the live feed of my new notices (WebSocket).

        101 upgraded; 400 not a WebSocket upgrade; 401 not signed in (Bearer header or
        ``?token=``); 426 unsupported WebSocket version.
        """
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise WebsocketRequired()
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        # The session comes from a bearer token, never from a cookie: a page of another
        # origin cannot ride on it, so the origin does not matter.
        return True

    @property
    def ping_interval(self) -> float:
        return self.services.settings.notifications.heartbeat_seconds

    @property
    def max_message_size(self) -> int:
        return MAX_CLIENT_MESSAGE_BYTES

    async def open(self, *args: str, **kwargs: str) -> None:
        self._user_id = self.me.id
        self.hub.add(self._user_id, self)
        unread = await self.services.notifications.unread_count(self.caller)
        self.send({"type": "ready", "unread": unread})

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            return
        if isinstance(data, dict) and data.get("type") == "ping":
            self.send({"type": "pong"})

    def on_close(self) -> None:
        if self._user_id:
            self.hub.discard(self._user_id, self)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a JSON message; a socket that closed meanwhile is simply skipped."""
        try:
            sent: Future[None] = self.write_message(json.dumps(message, ensure_ascii=False))
        except websocket.WebSocketClosedError:
            return
        sent.add_done_callback(lambda f: f.cancelled() or f.exception())


default_handlers = [
    (r"/api/v1/notifications", NotificationsHandler),
    (rf"/api/v1/notifications/(?P<notification_id>{OBJECT_ID})/read", NotificationReadHandler),
    (r"/api/v1/me/subscriptions", SubscriptionsHandler),
    (r"/api/v1/ws", FeedHandler),
]
