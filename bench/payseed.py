"""Seed data of fee payment: cases with a fee notice and a pending WeChat Pay order each, as
the services write them, and the callbacks WeChat Pay sends (see bench/README.md)."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId
from cryptography.hazmat.primitives.asymmetric import rsa
from pymongo.database import Database

from bench import caseseed as cs
from bench import shapes
from bench.seed import BATCH, Numbers
from miniapp_stubs.wechatpay_crypto import load_private
from miniapp_stubs.wechatpay_notify import envelope, signed_headers
from miniapp_stubs.wechatpay_state import Order as PayOrder
from miniapp_stubs.wechatpay_state import transaction_id
from models.fee_notices import FeeNoticeDoc, NoticeStatus
from models.payments import PaymentDoc, PaymentStatus
from server.wechat.pay_config import dev_public_key_id

NOTIFY_PATH = "/api/v1/payments/wechat/notify"
ORDER_MINUTES = 30  # wechatpay.order_expire_minutes
RECENT_DAYS = 3  # the seeded cases were accepted (and their notices issued) this recently
PAYERS = 1000  # seeded litigants who pay, round-robin
FEE_FIELDS = ("fee_kind", "basis_amount_fen", "procedure", "full_fee_fen", "amount_fen")


@dataclass(frozen=True)
class PayKeys:
    """The emulator's development keys (from the server's data directory), the merchant's
    and app's ids (from a callback the emulator sent)."""

    platform_key: rsa.RSAPrivateKey
    key_id: str
    apiv3_key: str
    mchid: str = ""
    appid: str = ""

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> PayKeys:
        stored = json.loads((data_dir / "secrets.json").read_text())
        key = load_private(stored["wechatpay_platform_key"])
        return cls(key, dev_public_key_id(key), stored["wechatpay_apiv3_key"])

    def transaction(self, payment: dict[str, Any], paid: dt.datetime) -> dict[str, Any]:
        """TRANSACTION.SUCCESS's resource for ``payment``, by the emulator's ``Order``."""
        request = {
            "appid": self.appid,
            "out_trade_no": payment["out_trade_no"],
            "attach": "",
            "amount": {"total": payment["amount_fen"]},
            "openid": payment["payer_openid"],
        }
        at = paid.timestamp()
        order = PayOrder(self.mchid, request, at, at, "", at, "SUCCESS", transaction_id(at), at)
        return order.as_json()

    def callback(self, resource: dict[str, Any], now: dt.datetime) -> str:
        """The notification's JSON body, by the emulator's ``envelope``."""
        kind, at = "TRANSACTION.SUCCESS", now.timestamp()
        return envelope(self.apiv3_key, kind, resource, at, str(uuid.uuid4()))

    def headers(self, body: str) -> dict[str, str]:
        """A delivery of ``body`` now, by the emulator's ``signed_headers``."""
        signed = signed_headers(self.platform_key, self.key_id, body, time.time())
        return {"Content-Type": "application/json", **signed}

    def line(self, body: str) -> str:
        """One line of notify.lua's file, signed now (a JSON body holds no tab, no newline)."""
        h = self.headers(body)
        parts = ("Timestamp", "Nonce", "Signature")
        return "\t".join([*(h[f"Wechatpay-{p}"] for p in parts), body]) + "\n"


def notice_doc(
    case: dict[str, Any], fees: dict[str, Any], payer_id: str, issued: dt.datetime
) -> dict[str, Any]:
    """``FeeNoticeService.issue``'s document, the amounts of ``fees`` (the API's notice)."""
    return FeeNoticeDoc(
        id=ObjectId(),
        case_id=str(case["_id"]),
        case_no=case["case_no"],
        court_id=case["court_id"],
        **{k: fees[k] for k in FEE_FIELDS},
        breakdown=fees["breakdown"],
        status=NoticeStatus.pending,
        payer_ids=[payer_id],
        issued_at=issued,
        due_at=shapes.review_deadline(issued, shapes.court().deadlines.fee_due_days),
    ).model_dump(by_alias=True)


def payment_doc(
    notice: dict[str, Any], payer: tuple[str, str], court_name: str, made: dt.datetime
) -> dict[str, Any]:
    """``PaymentService.create``'s document (with ``open_for`` and the prepay_id)."""
    oid = ObjectId()
    stamp = made.astimezone(shapes.SHANGHAI).strftime("%Y%m%d%H%M%S")
    doc = PaymentDoc(
        id=oid,
        out_trade_no=f"MC{oid}",
        fee_notice_id=str(notice["_id"]),
        case_id=notice["case_id"],
        case_no=notice["case_no"],
        court_id=notice["court_id"],
        payer_id=payer[0],
        payer_openid=payer[1],
        amount_fen=notice["amount_fen"] - notice["paid_fen"],
        description=f"{court_name}诉讼费-{notice['case_no']}"[:120],
        status=PaymentStatus.pending,
        prepay_id=f"wx{stamp}{secrets.token_hex(10)}",
        expires_at=made + dt.timedelta(minutes=ORDER_MINUTES),
        created_at=made,
        updated_at=made,
    )
    return {**doc.model_dump(by_alias=True), "open_for": str(notice["_id"])}


@dataclass
class Order:
    payment: dict[str, Any]
    notice_id: ObjectId
    case_id: ObjectId


@dataclass
class PaySeeder:
    """Inserts cases, notices and orders in batches; ``orders`` in insertion order."""

    db: Database[dict[str, Any]]
    cipher: shapes.Cipher
    fees: dict[str, Any]  # the API's notice: amounts and breakdown
    court_name: str
    staff_id: str
    orders: list[Order] = field(default_factory=list)
    seconds: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def payers(self) -> list[tuple[str, str]]:
        found = self.db["users"].find({"role": "litigant"}, {"openid": 1}).limit(PAYERS)
        return [(str(d["_id"]), d["openid"]) for d in found if d.get("openid")]

    def insert(self, count: int) -> list[Order]:
        began = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        payers, made, numbers = self.payers(), [], cs.case_numbers(self.db)
        for start in range(0, count, BATCH):
            batch = [
                self._order(now, numbers, payers[i % len(payers)])
                for i in range(start, min(start + BATCH, count))
            ]
            for name, i in (("cases", 0), ("fee_notices", 1), ("payments", 2)):
                self.db[name].insert_many([docs[i] for docs in batch], ordered=False)
            made += [Order(p, n["_id"], c["_id"]) for c, n, p in batch]
        numbers.commit()
        self.orders += made
        self.seconds += time.perf_counter() - began
        return made

    def _order(
        self, now: dt.datetime, numbers: Numbers, payer: tuple[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        rng = self.rng
        at = now - dt.timedelta(seconds=rng.uniform(600, RECENT_DAYS * 86400))
        seq = numbers.next(at.astimezone(shapes.SHANGHAI).year)
        plaintiff, procedure = (shapes.person(rng), payer[0]), self.fees["procedure"]
        case = cs.case_doc(self.cipher, rng, seq, at, plaintiff, payer[0], self.staff_id, procedure)
        case["amount_fen"] = self.fees["basis_amount_fen"]
        notice = notice_doc(case, self.fees, payer[0], at)
        ordered = now - dt.timedelta(seconds=rng.uniform(0, 60))
        return case, notice, payment_doc(notice, payer, self.court_name, ordered)
