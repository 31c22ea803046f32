"""Messages to the court (联系法官): a party writes, follows up, reads and rates; the court's
staff answer in the same thread (POST /messages/{id}/replies)."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.common import Page
from models.users import STAFF_ROLES, Role
from models.workorders import (
    MessageCreate,
    MessageQuery,
    RatingIn,
    ReplyIn,
    WorkOrderOut,
    WorkOrderSummary,
)

PARTIES = (Role.litigant, Role.lawyer)
EVERYONE = (*PARTIES, *sorted(STAFF_ROLES))
MESSAGE = rf"/api/v1/messages/(?P<message_id>{OBJECT_ID})"


class MessagesHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(body=MessageCreate, response=WorkOrderOut, status=201)
    async def post(self) -> None:
        """POST /api/v1/messages: write to the judge of a case of mine (or, without a case,
        to a court's service desk); it becomes a work order with its number and deadlines.

        201 the message; 404 a case not mine; 422 empty or over-long content, unknown
        category or court, attachments not mine, content flagged by WeChat's check (nothing
        stored); 429 too many messages; 503 the content check is unavailable.
        """
        data = self.parse_body(MessageCreate)
        order = await self.services.messages.create(self.caller, data)
        self.write_json(order, status=201)

    @needs_role(*PARTIES)
    @api(query=MessageQuery, response=Page[WorkOrderSummary])
    async def get(self) -> None:
        """GET /api/v1/messages: my messages, newest first, with their state and deadlines,
        cursor-paged. 200; 400 bad cursor; 422 bad filter."""
        query = self.parse_query(MessageQuery)
        self.write_json(await self.services.messages.list_mine(self.caller, query))


class MessageHandler(APIHandler):
    @needs_role(*EVERYONE)
    @api(response=WorkOrderOut)
    async def get(self, message_id: str) -> None:
        """GET /api/v1/messages/{id}: the thread (message, follow-ups and answers), its
        deadlines and state; for the sender, and for staff who may see the order (audited).
        200; 404 not yours."""
        self.write_json(await self.services.messages.detail(self.caller, message_id))


class RepliesHandler(APIHandler):
    @needs_role(*EVERYONE)
    @idempotent
    @api(body=ReplyIn, response=WorkOrderOut, status=201)
    async def post(self, message_id: str) -> None:
        """POST /api/v1/messages/{id}/replies {content, attachments}: the sender's follow-up
        (content-checked) or the court's answer (its assignee or a supervisor).

        201 the thread; 403 staff neither assignee nor supervisor; 404 not yours; 409 closed
        or the thread is full; 422 bad content or attachments, flagged content; 429.
        """
        data = self.parse_body(ReplyIn)
        caller = self.caller
        if caller.is_staff:
            order = await self.services.workorder_admin.reply(caller, message_id, data)
        else:
            order = await self.services.messages.follow_up(caller, message_id, data)
        self.write_json(order, status=201)


class RatingHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(body=RatingIn, response=WorkOrderOut)
    async def post(self, message_id: str) -> None:
        """POST /api/v1/messages/{id}/rating {score 1-5, comment}: 回访, once the message is
        closed. 200; 404 not yours; 409 not closed yet, or rated already; 422 bad score."""
        data = self.parse_body(RatingIn)
        self.write_json(await self.services.messages.rate(self.caller, message_id, data))


default_handlers = [
    (r"/api/v1/messages", MessagesHandler),
    (MESSAGE, MessageHandler),
    (rf"{MESSAGE}/replies", RepliesHandler),
    (rf"{MESSAGE}/rating", RatingHandler),
]
