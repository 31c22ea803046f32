"""Browser tests of the staff console: the real app listening on a loopback port, Debian's
Chromium driven by Playwright, a real SecantusDB and the WeChat emulator.

One background thread runs an asyncio loop for the whole session. On it run the browser
(Playwright's async API, one Chromium per session) and, per test, a fresh stack: its own
database, emulator, application and HTTP server, with the live feed started as ``serve``
starts it. Tests are plain functions that hand coroutines to that loop (``court.run``), so
the server keeps serving while a test waits on the browser.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from miniapp_stubs.client import MiniProgram, StaffConsole
from miniapp_stubs.emulator import Emulator, PayOptions, start_emulator
from server.app import Services, make_app
from server.platform.config import Settings, load_settings
from server.platform.db import Database, ensure_indexes
from server.platform.mongo import connect
from server.wechat.miniprogram import WeChatAdapter
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import PayCredentials, load_private, public_pem
from tests.factories import (
    EMULATOR_SECRET,
    PAY_APIV3_KEY,
    PAY_MCHID,
    PAY_SERIAL,
    STAFF_PASSWORD,
    TEST_KEYS,
    PayKeys,
    id_number,
)

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
TIMEOUT_MS = 10_000


class ShiftedClock:
    """The wall clock, moved on by ``shift`` when a test needs tomorrow (the server's and
    WeChat Pay's clocks alike; the browser keeps the real time)."""

    def __init__(self) -> None:
        self.shift = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.shift

    def epoch(self) -> float:
        return self.now().timestamp()


class Loop:
    """An asyncio loop in a thread of its own, for the whole session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-loop")
        self.thread.daemon = True
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class BrowserSession:
    loop: Loop
    playwright: Playwright
    browser: Browser


@pytest.fixture(scope="session")
def browser_session() -> Iterator[BrowserSession]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `python3 tasks.py test` installs it (apt-get)")
    loop = Loop()

    async def start() -> BrowserSession:
        pw = await async_playwright().start()
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return BrowserSession(loop, pw, browser)

    session = loop.run(start())
    yield session

    async def stop() -> None:
        await session.browser.close()
        await session.playwright.stop()

    loop.run(stop())
    loop.close()


@dataclass
class Court:
    """One test's running stack, and the means to act on it from the test."""

    loop: Loop
    browser: Browser
    url: str
    settings: Settings
    services: Services
    db: Database
    emulator: Emulator
    clock: ShiftedClock
    test_name: str
    _counter: Any = field(default_factory=lambda: iter(range(1, 10_000)))
    _shots: int = 0

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run(coro, timeout)

    @property
    def console_url(self) -> str:
        return f"{self.url}/console/"

    async def staff(
        self,
        role: str = "clerk",
        court_id: str | None = "bj-chaoyang",
        name: str = "王书记员",
        supervisor: bool = False,
    ) -> tuple[str, str]:
        """A staff account straight in the database; its (username, id)."""
        username = f"{role}{next(self._counter)}"
        hashed = await self.services.users.passwords.hash(STAFF_PASSWORD)
        res = await self.db["users"].insert_one(
            {
                "role": role,
                "username": username,
                "name": name,
                "court_id": court_id,
                "supervisor": supervisor,
                "division_head": False,
                "active": True,
                "password_hash": hashed,
                "created_at": dt.datetime.now(dt.UTC),
            }
        )
        return username, str(res.inserted_id)

    async def api_staff(self, username: str) -> StaffConsole:
        console = StaffConsole(self.url)
        res = await console.login(username, STAFF_PASSWORD)
        assert res.status == 200, res.body
        return console

    async def litigant(self, name: str = "张三", seq: str = "201") -> MiniProgram:
        mp = MiniProgram(self.url, self.emulator.url)
        assert (await mp.login()).status == 200
        number = id_number("19800101", "110105", seq)
        res = await mp.verify_identity(name, number, "13800138000")
        assert res.status == 200, res.body
        return mp

    async def page(self) -> Page:
        context = await self.browser.new_context(
            viewport={"width": 1440, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        page.on("pageerror", lambda e: print(f"[browser error] {e}"))
        return page

    async def sign_in(self, page: Page, username: str) -> None:
        await page.goto(self.console_url)
        await page.get_by_placeholder("请输入用户名").fill(username)
        await page.get_by_placeholder("请输入密码").fill(STAFF_PASSWORD)
        await page.get_by_role("button", name="登 录").click()
        await page.wait_for_selector(".shell")

    async def shot(self, page: Page, step: str) -> Path:
        """A full-page screenshot in tests/screenshots/ (git ignores it)."""
        self._shots += 1
        SCREENSHOTS.mkdir(exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", step)
        path = SCREENSHOTS / f"{self.test_name}-{self._shots:02d}-{safe}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


async def _start_stack(
    mongo_uri: str, pay_keys: PayKeys, data_dir: Path
) -> tuple[HTTPServer, Court | None, Any]:
    settings = load_settings(server={"data_dir": data_dir})
    client = connect(mongo_uri)  # durable, as serve connects
    db = client[f"c_{uuid.uuid4().hex[:12]}"]
    await ensure_indexes(db)
    clock = ShiftedClock()
    options = PayOptions(platform_private_key_pem=pay_keys.platform, clock=clock.epoch)
    emulator = await start_emulator(settings.wechat.appid, EMULATOR_SECRET, pay=options)
    emulator.state.face.clock = clock.epoch  # face results are dated on the server's clock
    emulator.pay.add_merchant(
        PAY_MCHID,
        settings.wechatpay.appid,
        public_pem(load_private(pay_keys.merchant)),
        PAY_SERIAL,
        PAY_APIV3_KEY,
    )
    sockets = bind_sockets(0, "127.0.0.1")
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    credentials = PayCredentials(
        mchid=PAY_MCHID,
        appid=settings.wechatpay.appid,
        serial_no=PAY_SERIAL,
        private_key_pem=pay_keys.merchant,
        apiv3_key=PAY_APIV3_KEY,
        platform_public_key_pem=emulator.platform_public_key_pem,
        platform_public_key_id=emulator.platform_public_key_id,
    )
    wechatpay = WeChatPayAdapter.from_settings(
        settings, credentials, clock, api_base=emulator.url, notify_base_url=url
    )
    wechat = WeChatAdapter(settings.wechat.appid, EMULATOR_SECRET, emulator.url)
    app = make_app(settings, db, clock=clock, wechat=wechat, wechatpay=wechatpay, keys=TEST_KEYS)
    services: Services = app.settings["services"]
    services.feed.start()
    await asyncio.wait_for(services.feed.ready.wait(), 10)
    server = HTTPServer(app, max_body_size=settings.server.max_body_bytes)
    server.add_sockets(sockets)

    async def stop() -> None:
        server.stop()
        await server.close_all_connections()
        await services.acceptance_documents.stop()
        await services.feed.stop()
        await wechatpay.aclose()
        await wechat.aclose()
        await emulator.stop()
        await client.drop_database(db.name)
        await client.close()

    court = Court(
        loop=None,  # type: ignore[arg-type]  # set by the fixture
        browser=None,  # type: ignore[arg-type]
        url=url,
        settings=settings,
        services=services,
        db=db,
        emulator=emulator,
        clock=clock,
        test_name="",
    )
    return server, court, stop


@pytest.fixture
def court(
    browser_session: BrowserSession,
    mongo_uri: str,
    pay_keys: PayKeys,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Court]:
    """A running stack of its own (fresh database) and the session's browser."""
    loop = browser_session.loop
    _, court, stop = loop.run(_start_stack(mongo_uri, pay_keys, tmp_path))
    assert court is not None
    court.loop = loop
    court.browser = browser_session.browser
    court.test_name = request.node.name.removeprefix("test_")[:60]
    yield court

    async def close_contexts() -> None:
        for context in list(court.browser.contexts):
            await context.close()

    loop.run(close_contexts())
    loop.run(stop())


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds (never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def text_pdf(*pages: str) -> bytes:
    """A small, valid PDF: one page per text (ASCII, Helvetica), for pdf.js to draw and read."""
    count = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>",
    ]
    font = 3 + 2 * count
    for i, text in enumerate(pages):
        stream = f"BT /F1 28 Tf 72 700 Td ({text}) Tj ET 0 0 1 RG 4 w 72 660 450 -560 re S"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
