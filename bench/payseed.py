"""Seed data of fee payment (缴费): cases with a fee notice and a pending WeChat Pay order each,
shaped as the services write them, and the callbacks WeChat Pay would send when they are paid.

- ``notice_doc``: ``FeeNoticeService.issue`` at acceptance (fee kind, amounts and breakdown
  copied from a notice the API issued for the same claim and procedure; no served document:
  ``document_id`` None);
- ``payment_doc``: ``PaymentService.create`` after its JSAPI order (``open_for`` = the notice,
  a ``prepay_id``, expiring 30 minutes after it was made);
- the case: ``caseseed.case_doc``, accepted in the last three days (so the notice is not due);
- ``PayKeys``: the emulator's development keys, read from ``<data dir>/secrets.json`` where the
  server made them (platform private key, APIv3 key); ``callback``: a TRANSACTION.SUCCESS
  notification as WeChat Pay sends it (the transaction AES-256-GCM-encrypted with the APIv3
  key, the envelope signed with the platform key, SHA256withRSA over
  ``timestamp\\nnonce\\nbody\\n``), re-implemented here like ``shapes.Cipher``.

``payrun.check_shapes`` compares these with what the API and the emulator wrote in the same run.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.database import Database

from bench import caseseed as cs
from bench import filingseed as fs
from bench import shapes
from server.wechat.pay_config import dev_public_key_id

BEIJING = ZoneInfo("Asia/Shanghai")
NOTIFY_PATH = "/api/v1/payments/wechat/notify"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
ORDER_MINUTES = 30  # wechatpay.order_expire_minutes
RECENT_DAYS = 3  # the seeded cases were accepted (and their notices issued) this recently
PAYERS = 1000  # seeded litigants who pay, round-robin
_NONCE = string.ascii_letters + string.digits
FEE_FIELDS = ("fee_kind", "basis_amount_fen", "procedure", "full_fee_fen", "amount_fen")


# ---- WeChat Pay's side


@dataclass(frozen=True)
class PayKeys:
    """What the bench needs to call back as WeChat Pay: the platform key, its id, the APIv3
    key, and the merchant's and app's ids (taken from a callback the emulator sent)."""

    platform_key: rsa.RSAPrivateKey
    key_id: str
    apiv3_key: str
    mchid: str = ""
    appid: str = ""

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> PayKeys:
        stored = json.loads((data_dir / "secrets.json").read_text())
        pem = stored["wechatpay_platform_key"].encode()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(key, dev_public_key_id(key), stored["wechatpay_apiv3_key"])


def beijing(when: dt.datetime) -> str:
    """RFC 3339 in Beijing time, whole seconds, as WeChat Pay writes times."""
    return when.astimezone(BEIJING).replace(microsecond=0).isoformat()


def nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE) for _ in range(length))


def transaction(keys: PayKeys, payment: dict[str, Any], paid: dt.datetime) -> dict[str, Any]:
    """TRANSACTION.SUCCESS's resource for ``payment``, as the emulator's ``Order.as_json``."""
    total = payment["amount_fen"]
    day = paid.astimezone(BEIJING).strftime("%Y%m%d")
    number = f"4200{secrets.randbelow(10**6):06d}{day}{secrets.randbelow(10**10):010d}"
    return {
        "appid": keys.appid,
        "mchid": keys.mchid,
        "out_trade_no": payment["out_trade_no"],
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "attach": "",
        "amount": {"total": total, "currency": "CNY", "payer_currency": "CNY",
                   "payer_total": total},
        "payer": {"openid": payment["payer_openid"]},
        "promotion_detail": [],
        "transaction_id": number,
        "trade_type": "JSAPI",
        "bank_type": "OTHERS",
        "success_time": beijing(paid),
    }  # fmt: skip


def callback_body(keys: PayKeys, resource: dict[str, Any], now: dt.datetime) -> str:
    """The notification's JSON: the envelope, the resource sealed with the APIv3 key."""
    plain = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    iv = nonce(12)
    sealed = AESGCM(keys.apiv3_key.encode()).encrypt(iv.encode(), plain.encode(), b"transaction")
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": beijing(now),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(sealed).decode(),
            "nonce": iv,
            "associated_data": "transaction",
        },
    }
    return json.dumps(envelope, ensure_ascii=False)


@dataclass(frozen=True)
class Signed:
    """One delivery of a callback: its body and the platform's signature headers."""

    stamp: str
    nonce: str
    signature: str
    body: str

    def headers(self, keys: PayKeys) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": self.stamp,
            "Wechatpay-Nonce": self.nonce,
            "Wechatpay-Signature": self.signature,
            "Wechatpay-Serial": keys.key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def line(self) -> str:
        """One line of notify.lua's file (a JSON body holds no tab and no newline)."""
        return f"{self.stamp}\t{self.nonce}\t{self.signature}\t{self.body}\n"


def sign(keys: PayKeys, body: str) -> Signed:
    """A delivery of ``body`` now: the timestamp the server checks (±5 minutes), a fresh
    nonce, SHA256withRSA with the platform key."""
    stamp, once = str(int(time.time())), nonce()
    message = f"{stamp}\n{once}\n{body}\n".encode()
    raw = keys.platform_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return Signed(stamp, once, base64.b64encode(raw).decode(), body)


# ---- our side: cases, notices, orders


def notice_doc(
    case: dict[str, Any], fees: dict[str, Any], payer_id: str, issued: dt.datetime
) -> dict[str, Any]:
    """``FeeNoticeDoc`` of ``FeeNoticeService.issue`` for ``case`` (no fee relief), the
    amounts of ``fees`` (a notice the API issued for the same claim and procedure)."""
    return {
        "_id": ObjectId(),
        "case_id": str(case["_id"]),
        "case_no": case["case_no"],
        "court_id": case["court_id"],
        "kind": "acceptance",
        **{k: fees[k] for k in FEE_FIELDS},
        "paid_fen": 0,
        "breakdown": fees["breakdown"],
        "relief": None,
        "status": "pending",
        "payer_ids": [payer_id],
        "issued_at": issued,
        "due_at": shapes.review_deadline(issued, shapes.court().deadlines.fee_due_days),
        "overdue_at": None,
        "paid_at": None,
        "document_id": None,
        "version": 1,
    }


def payment_doc(
    notice: dict[str, Any], payer: tuple[str, str], court_name: str, made: dt.datetime
) -> dict[str, Any]:
    """``PaymentDoc`` as ``PaymentService.create`` inserts it at ``made`` (with
    ``open_for``), after ``_prepay`` stored the prepay_id."""
    oid = ObjectId()
    payer_id, openid = payer
    stamp = made.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    return {
        "_id": oid,
        "out_trade_no": f"MC{oid}",
        "fee_notice_id": str(notice["_id"]),
        "case_id": notice["case_id"],
        "case_no": notice["case_no"],
        "court_id": notice["court_id"],
        "payer_id": payer_id,
        "payer_openid": openid,
        "amount_fen": notice["amount_fen"] - notice["paid_fen"],
        "description": f"{court_name}诉讼费-{notice['case_no']}"[:120],
        "status": "pending",
        "prepay_id": f"wx{stamp}{secrets.token_hex(10)}",
        "expires_at": made + dt.timedelta(minutes=ORDER_MINUTES),
        "transaction_id": None,
        "paid_at": None,
        "refundable_fen": 0,
        "refunded_fen": 0,
        "created_at": made,
        "updated_at": made,
        "version": 1,
        "open_for": str(notice["_id"]),
    }


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
        payers, made = self.payers(), []
        seqs: dict[int, int] = {}
        for start in range(0, count, fs.BATCH):
            batch = [
                self._order(now, seqs, payers[i % len(payers)])
                for i in range(start, min(start + fs.BATCH, count))
            ]
            self.db["cases"].insert_many([c for c, _, _ in batch], ordered=False)
            self.db["fee_notices"].insert_many([n for _, n, _ in batch], ordered=False)
            self.db["payments"].insert_many([p for _, _, p in batch], ordered=False)
            made += [Order(p, n["_id"], c["_id"]) for c, n, p in batch]
        for year, seq in seqs.items():  # as the acceptances' $inc would have left them
            self.db["counters"].update_one({"_id": _counter(year)}, {"$max": {"seq": seq}},
                                           upsert=True)  # fmt: skip
        self.orders += made
        self.seconds += time.perf_counter() - began
        return made

    def _order(
        self, now: dt.datetime, seqs: dict[int, int], payer: tuple[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        rng = self.rng
        at = now - dt.timedelta(seconds=rng.uniform(600, RECENT_DAYS * 86400))
        year = at.astimezone(shapes.SHANGHAI).year
        if year not in seqs:
            seqs[year] = int((self.db["counters"].find_one({"_id": _counter(year)}) or {})
                             .get("seq", 0))  # fmt: skip
        seqs[year] += 1
        case = cs.case_doc(
            self.cipher, rng, seqs[year], at, (shapes.person(rng), payer[0]), payer[0],
            self.staff_id, procedure=self.fees["procedure"],
        )  # fmt: skip
        case["amount_fen"] = self.fees["basis_amount_fen"]
        notice = notice_doc(case, self.fees, payer[0], at)
        ordered = now - dt.timedelta(seconds=rng.uniform(0, 60))
        return case, notice, payment_doc(notice, payer, self.court_name, ordered)


def _counter(year: int) -> str:
    return f"case_no|{shapes.COURT}|{cs.TYPE_CODE}|{year}"
