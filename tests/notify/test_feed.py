"""The live feed (GET /api/v1/ws): authenticated WebSockets that receive each new inbox notice
of their user, whichever process created it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import Application

from miniapp_stubs.client import ApiSession
from server.app import Services
from server.notify.feed import FeedHub
from server.platform.config import Settings
from server.platform.db import Database
from tests.factories import Litigant, Staff, open_feed, uid
from tests.waiting import until


async def started(hub: FeedHub) -> FeedHub:
    hub.start()
    await asyncio.wait_for(hub.ready.wait(), 10)
    return hub


@pytest.mark.gen_test(timeout=30)
async def test_a_notice_made_by_another_process_reaches_my_socket(
    litigant: Litigant, services: Services, other_app: Application
) -> None:
    mp, someone = await litigant(), await litigant()
    other: Services = other_app.settings["services"]
    hub = await started(services.feed)
    try:
        assert hub.mode == "change_stream"
        feed = await open_feed(mp)
        await other.notifications.notify([uid(someone)], "case_update", "别人的通知", "内容")
        await other.notifications.notify(
            [uid(mp)], "case_update", "开庭通知", "定于12月1日开庭", data={"case_id": "c1"}
        )
        message = await feed.next(timeout=3)
        assert message is not None and message["type"] == "notification"
        notice = message["notification"]
        assert (notice["title"], notice["data"]) == ("开庭通知", {"case_id": "c1"})
        listed = (await mp.notifications()).body["items"][0]
        assert notice == listed  # the same shape as the inbox
        with pytest.raises(TimeoutError):
            await feed.next(timeout=0.3)  # nothing else: someone's notice was not mine
        feed.close()
    finally:
        await hub.stop()


@pytest.mark.gen_test(timeout=30)
async def test_staff_see_new_filings_live(staff: Staff, services: Services) -> None:
    clerk = await staff("clerk")
    hub = await started(services.feed)
    try:
        feed = await open_feed(clerk)
        await services.notifications.notify_court_staff(
            "bj-chaoyang", ["clerk"], "filing_submitted", "新的网上立案申请", "张三：民间借贷纠纷"
        )
        message = await feed.next(timeout=3)
        assert message is not None and message["notification"]["kind"] == "filing_submitted"
        feed.close()
    finally:
        await hub.stop()


@pytest.mark.gen_test(timeout=30)
async def test_the_token_may_come_in_the_query_and_unread_is_counted(
    litigant: Litigant, services: Services
) -> None:
    mp = await litigant()
    await services.notifications.notify([uid(mp)], "case_update", "一", "内容")
    feed = await mp.connect_feed(via_query=True)
    assert await feed.next() == {"type": "ready", "unread": 1}
    await feed.send({"type": "ping"})
    assert await feed.next() == {"type": "pong"}
    assert services.feed.connections == 1
    feed.close()
    await until(lambda: services.feed.connections == 0)
    assert services.feed.connections == 0


@pytest.mark.gen_test(timeout=30)
async def test_unauthenticated_sockets_are_refused_with_401(
    api_url: str, litigant: Litigant, caplog: pytest.LogCaptureFixture
) -> None:
    anonymous = ApiSession(api_url)
    for kw in ({}, {"token": "forged.token.value"}, {"token": "forged", "via_query": True}):
        with pytest.raises(HTTPClientError) as refused:
            await anonymous.connect_feed(**kw)
        assert refused.value.code == 401
        assert refused.value.response is not None
        body = json.loads(refused.value.response.body)
        assert body["error"]["code"] in ("unauthorized", "invalid_token"), body
    assert "forged" not in caplog.text  # the query string is never logged
    plain = await (await litigant()).get("/api/v1/ws")
    assert (plain.status, plain.error_code) == (400, "websocket_required")
    assert (await anonymous.get("/api/v1/ws")).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_a_socket_is_closed_when_its_session_ends(
    litigant: Litigant, services: Services
) -> None:
    mp, stays = await litigant(), await litigant()
    feed, other_feed = await open_feed(mp), await open_feed(stays)
    assert (await mp.logout()).status == 204
    assert await services.feed.check_sessions() == 1
    assert await feed.next() is None
    assert feed.close_code == 4401
    await services.notifications.notify([uid(stays)], "case_update", "仍然在线", "内容")
    services.feed.dispatch(await services.db["inbox"].find_one({"user_id": uid(stays)}) or {})
    message = await other_feed.next()
    assert message is not None and message["notification"]["title"] == "仍然在线"
    other_feed.close()


class _Socket:
    def __init__(self) -> None:
        self.token = ""
        self.got: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.got.append(message)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Not needed here."""


@pytest.mark.gen_test(timeout=30)
async def test_without_change_streams_the_feed_polls(
    litigant: Litigant, services: Services, settings: Settings, db: Database
) -> None:
    mp = await litigant()
    await services.notifications.notify([uid(mp)], "case_update", "旧的", "内容")
    config = settings.notifications.model_copy(update={"feed_poll_seconds": 0.05})
    hub = await started(FeedHub(db, config, services.auth.authenticate, change_streams=False))
    socket = _Socket()
    try:
        assert hub.mode == "polling"
        hub.add(uid(mp), socket)
        await services.notifications.notify([uid(mp)], "case_update", "新的", "内容")
        await until(lambda: socket.got)
    finally:
        await hub.stop()
    assert [m["notification"]["title"] for m in socket.got] == ["新的"]  # not the old one
