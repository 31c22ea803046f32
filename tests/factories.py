"""What the tests build again and again, in one place: the test constants and keys, people's ID
numbers, a complaint, a submitted filing, an accepted case (its documents served), an assigned
case, a paid notice, an open work order, a live feed, a running ``microcourt serve``. Test
modules import from here (and from tests.waiting), never from each other; fixtures live in
tests/conftest.py."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from miniapp_stubs.client import ApiSession, Feed, MiniProgram, Response, StaffConsole
from miniapp_stubs.emulator import Emulator
from server.identity.idnumber import check_char
from server.platform.crypto import Keys
from tests.waiting import until

Litigant = Callable[..., Awaitable[MiniProgram]]
Staff = Callable[..., Awaitable[StaffConsole]]
Phone = Callable[[], MiniProgram]

# ---- constants and keys

# Monday 2026-11-23 10:00 in Beijing: a working day, well inside office hours.
START = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
TUESDAY = "2026-11-24T{}:00+08:00"  # the day after the tests' Monday 2026-11-23 10:00
STAFF_PASSWORD = "correct-horse-battery"
TEST_KEYS = Keys(b"t" * 40, base64.b64decode(base64.b64encode(b"k" * 32)), b"h" * 40)
EMULATOR_SECRET = "emulator-test-secret"
PAY_MCHID = "1900000109"
PAY_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PAY_APIV3_KEY = "apiv3-test-key-0123456789abcdefg"  # 32 bytes
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LAWYER_ID = "11101201510123456"
# 100,000 yuan in dispute (Art. 13): 50 for the first 10,000, then 2.5% of 90,000 = 2,250.
FEE_100K = 230_000


@dataclass(frozen=True)
class PayKeys:
    merchant: str  # PEM, PKCS#8
    platform: str


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def id_number(birth: str = "19900101", region: str = "110105", seq: str = "123") -> str:
    """A valid 18-digit ID number (check digit computed)."""
    first = f"{region}{birth}{seq}"
    return first + check_char(first)


SELF_ID = id_number("19800101", "110105", "201")  # 张三, the plaintiff of most filings
DEFENDANT_ID = id_number("19750505", "110108", "302")  # 李四, the defendant of most filings


def run_aside(coro: Awaitable[Any]) -> Any:
    """Run a coroutine on a private loop, leaving the test's current IOLoop untouched
    (asyncio.run would unset it)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """November ``day`` (December once past 30), 2026, ``hour:minute`` in Beijing."""
    month, day = (11, day) if day <= 30 else (12, day - 30)
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- sessions


def uid(session: ApiSession) -> str:
    assert session.user is not None
    return str(session.user["id"])


def error(res: Response) -> tuple[int, str | None]:
    return res.status, res.error_code


async def relogin(*consoles: StaffConsole) -> None:
    """Staff sessions last 12 hours: sign in again after moving the clock on."""
    for console in consoles:
        assert console.user is not None
        assert (await console.login(console.user["username"], STAFF_PASSWORD)).status == 200


async def plaintiff(litigant: Litigant) -> MiniProgram:
    """张三, signed in with the verified identity SELF_ID."""
    mp = await litigant(identity=False)
    assert (await mp.verify_identity("张三", SELF_ID, "13800138000")).status == 200
    return mp


async def defendant(litigant: Litigant) -> MiniProgram:
    """李四, signed in with the verified identity DEFENDANT_ID."""
    mp = await litigant(identity=False)
    assert (await mp.verify_identity("李四", DEFENDANT_ID, "13900139000")).status == 200
    return mp


async def kinds(session: StaffConsole | MiniProgram) -> list[str]:
    """The kinds of the session's latest inbox notices."""
    res = await session.get("/api/v1/notifications?limit=50")
    assert res.status == 200, res.body
    return [n["kind"] for n in res.body["items"]]


async def open_feed(session: ApiSession, **kw: Any) -> Feed:
    """The session's live feed, past its ``ready`` greeting."""
    feed = await session.connect_feed(**kw)
    hello = await feed.next()
    assert hello is not None and hello["type"] == "ready", hello
    return feed


async def next_kind(feed: Feed) -> str:
    message = await feed.next(timeout=5)
    assert message is not None and message["type"] == "notification", message
    return str(message["notification"]["kind"])


# ---- filings


async def upload(mp: MiniProgram, name: str = "借条.pdf", purpose: str = "evidence") -> str:
    res = await mp.upload(PDF + name.encode(), name, purpose)
    assert res.status == 201, res.body
    return str(res.body["id"])


def complaint(evidence: list[str], **extra: Any) -> dict[str, Any]:
    """A complete complaint of 张三 against 李四 over a loan of 100,000 yuan."""
    body: dict[str, Any] = {
        "court_id": "bj-chaoyang",
        "case_kind": "civil",
        "cause": "民间借贷纠纷",
        "plaintiffs": [
            {
                "type": "person",
                "name": "张三",
                "id_number": SELF_ID,
                "phone": "13800138000",
                "address": "北京市朝阳区建国路1号",
            }
        ],
        "defendants": [
            {
                "type": "person",
                "name": "李四",
                "id_number": DEFENDANT_ID,
                "address": "北京市海淀区中关村大街2号",
            }
        ],
        "claims": ["判令被告偿还借款本金100000元", "判令被告承担本案诉讼费用"],
        "facts": "2025年3月1日被告向原告借款10万元，约定2025年12月31日前归还，至今未还。",
        "amount_fen": 10_000_000,
        "evidence": evidence,
    }
    body.update(extra)
    return body


async def submitted(mp: MiniProgram, **extra: Any) -> dict[str, Any]:
    """The complaint, with one piece of evidence, drafted and submitted by ``mp``."""
    draft = await mp.post("/api/v1/filings", complaint([await upload(mp)], **extra))
    assert draft.status == 201, draft.body
    res = await mp.post(f"/api/v1/filings/{draft.body['id']}/submit")
    assert res.status == 200, res.body
    return dict(res.body)


# ---- cases


#: the documents every acceptance serves (besides a 缴费通知书 for each fee notice)
ACCEPTANCE_DOCUMENTS = ("受理通知书", "诉讼权利义务告知书", "举证通知书")


async def documents_served(
    clerk: StaffConsole, case_id: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Wait for the acceptance documents of the case, made and served after the acceptance
    commits: the three notices, and a served 缴费通知书 on every fee notice. The case's
    documents as the clerk reads them; TimeoutError if they do not come."""

    async def served() -> list[dict[str, Any]] | None:
        res = await clerk.documents(case_id)
        assert res.status == 200, res.body
        docs = list(res.body["items"])
        fees = await clerk.fees(case_id)
        assert fees.status == 200, fees.body
        kinds = {d["kind"] for d in docs}
        notices_served = all(n["document_id"] for n in fees.body["notices"])
        return docs if kinds >= set(ACCEPTANCE_DOCUMENTS) and notices_served else None

    found: list[dict[str, Any]] = await until(served, timeout=timeout, every=0.05)
    return found


async def accepted(mp: MiniProgram, clerk: StaffConsole, **extra: Any) -> tuple[str, str]:
    """A filing by ``mp``, accepted by ``clerk``, its documents served: (case id, number)."""
    filing = await submitted(mp, **extra)
    res = await clerk.accept_filing(filing["id"])
    assert res.status == 200, res.body
    await documents_served(clerk, str(res.body["case_id"]))
    return str(res.body["case_id"]), str(res.body["case_no"])


async def accepted_case(
    litigant: Litigant,
    staff: Staff,
    consent: bool = True,
    filing: dict[str, Any] | None = None,
    **accept: Any,
) -> tuple[str, MiniProgram, MiniProgram, StaffConsole]:
    """A case from a filing by 张三 (consenting to electronic service unless told otherwise,
    with ``filing`` added to the complaint) against 李四, who has an account, accepted by a new
    clerk with ``accept``: (case id, plaintiff, defendant, clerk)."""
    plaintiff = await litigant(identity=False)
    assert (await plaintiff.verify_identity("张三", SELF_ID, "13800138000")).status == 200
    defendant = await litigant(identity=False)
    assert (await defendant.verify_identity("李四", DEFENDANT_ID)).status == 200
    clerk = await staff("clerk")
    submitted_filing = await submitted(
        plaintiff, consent_electronic_service=consent, **(filing or {})
    )
    res = await clerk.accept_filing(submitted_filing["id"], **accept)
    assert res.status == 200, res.body
    await documents_served(clerk, str(res.body["case_id"]))
    return str(res.body["case_id"]), plaintiff, defendant, clerk


async def assigned_case(
    client: MiniProgram, clerk: StaffConsole, judge: StaffConsole
) -> tuple[str, str]:
    """A filing by ``client``, accepted by ``clerk`` and assigned to ``judge``: (id, number)."""
    case_id, case_no = await accepted(client, clerk)
    res = await clerk.assign_case(case_id, uid(judge), uid(clerk))
    assert res.status == 200, res.body
    return case_id, case_no


async def lawyer_case(lawyer: MiniProgram, clerk: StaffConsole, admin: StaffConsole) -> str:
    """The lawyer, verified by ``admin``, files for 张三 and the clerk accepts: the case id."""
    res = await lawyer.register_lawyer(LAWYER_ID, "北京市某某律师事务所")
    assert (await admin.verify_lawyer(res.body["id"])).status == 200
    body = complaint([await upload(lawyer)], as_agent=True)
    body["power_of_attorney"] = await upload(lawyer, "授权委托书.pdf", "power_of_attorney")
    draft = await lawyer.create_filing(body)
    assert draft.status == 201, draft.body
    assert (await lawyer.submit_filing(draft.body["id"])).status == 200
    res = await clerk.accept_filing(draft.body["id"])
    assert res.status == 200, res.body
    await documents_served(clerk, str(res.body["case_id"]))
    return str(res.body["case_id"])


# ---- fees


async def notice_of(mp: MiniProgram, case_id: str) -> dict[str, Any]:
    """The case's one fee notice, as ``mp`` sees it."""
    res = await mp.fees(case_id)
    assert res.status == 200, res.body
    (notice,) = res.body["notices"]
    return dict(notice)


async def paid_case(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> tuple[str, dict[str, Any], MiniProgram, MiniProgram, StaffConsole]:
    """A case whose acceptance fee 张三 paid; the callbacks all delivered."""
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    order = await plaintiff.pay_notice(notice["id"])
    assert order.status == 201, order.body
    assert (await plaintiff.request_payment(order.body["pay_params"])).status == 200
    await emulator.pay.notifier.idle()
    return case_id, dict(order.body), plaintiff, defendant, clerk


async def paid_but_lost(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> tuple[str, MiniProgram, Any]:
    """A case whose fee 张三 paid at WeChat Pay, every callback of it lost on the way."""
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    order = await plaintiff.pay_notice(notice["id"])
    emulator.pay.notifier.dropped.add(f"MC{order.body['payment_id']}")
    assert (await plaintiff.request_payment(order.body["pay_params"])).status == 200
    await emulator.pay.notifier.idle()
    return case_id, plaintiff, order


# ---- work orders


async def written(
    mp: MiniProgram, content: str = "请问案件什么时候开庭？", **kw: Any
) -> dict[str, Any]:
    """A message (an open work order) sent by ``mp``, as returned."""
    res = await mp.send_message(content, **kw)
    assert res.status == 201, res.body
    return dict(res.body)


async def desk_message(
    mp: MiniProgram, content: str = "请问如何申请诉讼费缓交？", **kw: Any
) -> str:
    """A message without a case, to the service desk of 北京市朝阳区人民法院: its id."""
    kw.setdefault("category", "缴费退费")
    return str((await written(mp, content, court_id="bj-chaoyang", **kw))["id"])


# ---- a running ``microcourt serve``

READY = re.compile(r"^microcourt ready: api=(http://\S+) emulator=(http://\S+)$")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any MICROCOURT_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROCOURT_")}
    return {**env, **extra}


@contextmanager
def serving(
    data_dir: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``microcourt serve`` on a free port, ready: (process, API URL, emulator URL)."""
    # run from the data dir's parent with a relative --data-dir, as a user would
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--data-dir", data_dir.name],
        cwd=data_dir.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = READY.match(line)
        assert match, f"unexpected first line: {line!r}"
        yield proc, match[1], match[2]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class KeepRecords(logging.Handler):
    """A log handler that keeps what it is given (the access log's batches, in tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
