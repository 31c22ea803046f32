"""SMS to callers without the mini-program (1+N): Tencent Cloud SMS, sent through the outbox.

``SmsAdapter`` calls Tencent Cloud SMS's ``SendSms`` (API 2021-01-11, TC3-HMAC-SHA256
signed) with the official SDK (``tencentcloud-sdk-python-sms``). The SDK is blocking
(``requests``), so each call runs in the default executor, never on the IOLoop. With no
secret id configured the same SDK speaks to the emulator (``miniapp_stubs/sms_emulator.py``)
over plain HTTP.

``SmsService.queue`` puts an item of kind ``sms`` into the durable ``outbox`` in the
caller's transaction; the outbox worker hands such items to ``SmsService.deliver``. Rate
limits (30 s for the same content, per hour, per day) and transient faults are tried again
later with the outbox's backoff; other refusals are final. Delivery receipts (the status
callback Tencent posts to us) are matched on the provider's serial number and phone; each
outcome goes to ``on_result`` (the work orders record it on their order).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111 import sms_client

from models.notifications import OutboxStatus
from server.notify.store import OutboxStore
from server.platform.clock import Clock
from server.platform.config import SmsSettings
from server.platform.db import Database

if TYPE_CHECKING:
    from server.notify.outbox import OutboxWorker

log = logging.getLogger("microcourt.sms")

SMS_KIND = "sms"
BEIJING = ZoneInfo("Asia/Shanghai")
# worth another try later: per-number rate limits, throttling, the provider's own faults
TRANSIENT_PREFIXES = ("LimitExceeded.PhoneNumber", "RequestLimitExceeded", "InternalError")
TRANSIENT_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})
EMULATOR_SECRET_ID = "AKIDemulator00000000000000000000000"
EMULATOR_SECRET_KEY = "emulator-secret-key"

Outcome = dict[str, Any]
OnResult = Callable[[dict[str, Any], Outcome], Awaitable[None]]


class SmsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or self.code.startswith(TRANSIENT_PREFIXES)


@dataclass(frozen=True)
class Sent:
    serial_no: str
    fee: int


class SmsAdapter:
    """Tencent Cloud SMS's SendSms, one number at a time, off the IOLoop."""

    def __init__(
        self, config: SmsSettings, secret_id: str, secret_key: str, endpoint: str, scheme: str
    ) -> None:
        self.config = config
        self._credential = credential.Credential(secret_id, secret_key)
        http = HttpProfile(protocol=scheme, endpoint=endpoint, reqTimeout=config.timeout_seconds)
        self._profile = ClientProfile(httpProfile=http)

    @classmethod
    def from_settings(cls, config: SmsSettings, emulator_url: str | None = None) -> SmsAdapter:
        """The real service, or (no secret id) the emulator at ``emulator_url``."""
        if not config.emulated:
            return cls(config, config.secret_id, config.secret_key, config.endpoint, "https")
        # no emulator running (a second process in tests): sends fail and the outbox retries
        scheme, _, host = (emulator_url or f"https://{config.endpoint}").partition("://")
        return cls(config, EMULATOR_SECRET_ID, EMULATOR_SECRET_KEY, host, scheme)

    async def send(self, phone: str, template_id: str, params: Sequence[str], ref: str) -> Sent:
        """One SMS; ``SmsError`` with Tencent's code when refused (per number or whole)."""
        call = functools.partial(self._send_blocking, phone, template_id, list(params), ref)
        return await asyncio.get_running_loop().run_in_executor(None, call)

    def _send_blocking(self, phone: str, template_id: str, params: list[str], ref: str) -> Sent:
        client = sms_client.SmsClient(self._credential, self.config.region, self._profile)
        req = sms_models.SendSmsRequest()
        req.PhoneNumberSet = [f"+86{phone}"]
        req.SmsSdkAppId = self.config.sdk_app_id
        req.SignName = self.config.sign_name
        req.TemplateId = template_id
        req.TemplateParamSet = params
        req.SessionContext = ref
        try:
            # the raw answer: this SDK version hands back an empty model for an Error answer
            answer = json.loads(client.call("SendSms", req._serialize()))["Response"]
        except TencentCloudSDKException as e:
            raise SmsError(e.get_code() or "ClientNetworkError", e.get_message() or "") from None
        except (ValueError, KeyError, TypeError):
            raise SmsError("ServerNetworkError", "unreadable answer") from None
        if "Error" in answer:
            raise SmsError(str(answer["Error"].get("Code")), str(answer["Error"].get("Message")))
        status = sms_models.SendStatus()
        status._deserialize((answer.get("SendStatusSet") or [{}])[0])
        if status.Code != "Ok":
            raise SmsError(str(status.Code), str(status.Message))
        return Sent(status.SerialNo, int(status.Fee or 0))


def receipt_time(raw: Any, fallback: dt.datetime) -> dt.datetime:
    """``user_receive_time`` ("2026-11-24 10:00:03", Beijing time) as UTC."""
    try:
        local = dt.datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return fallback
    return local.replace(tzinfo=BEIJING).astimezone(dt.UTC)


class SmsService:
    """Queues SMS into the outbox, sends them for the outbox worker, takes the receipts."""

    def __init__(
        self,
        db: Database,
        config: SmsSettings,
        adapter: SmsAdapter,
        clock: Clock,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = OutboxStore(db)
        self.config = config
        self.adapter = adapter
        self.clock = clock
        self.on_enqueued = on_enqueued
        self.on_result: OnResult | None = None  # set by the work orders (server/app.py)

    async def queue(
        self,
        phone: str,
        template: str,
        params: Sequence[str],
        ref: dict[str, Any],
        session: AsyncClientSession | None,
        item_id: ObjectId | None = None,
    ) -> ObjectId:
        """One SMS into the outbox, in the caller's transaction; its item id."""
        now = self.clock.now()
        oid = item_id or ObjectId()
        item: dict[str, Any] = {
            "_id": oid,
            "kind": SMS_KIND,
            "phone": phone,
            "template": template,
            "template_id": self.config.templates[template],
            "params": [str(p) for p in params],
            "ref": ref,
            "status": OutboxStatus.pending.value,
            "attempts": 0,
            "serial_no": None,
            "receipt": None,
            "next_attempt_at": now,
            "created_at": now,
        }
        await self.outbox.insert_new([item], session)
        if self.on_enqueued is not None:
            self.on_enqueued()
        return oid

    async def deliver(self, worker: OutboxWorker, item: dict[str, Any]) -> None:
        """Send a claimed item (the outbox worker's call); retry, finish or fail it, the
        outcome written before a receipt parked meanwhile is looked for."""
        try:
            sent = await self.adapter.send(
                item["phone"], item["template_id"], item["params"], str(item["_id"])
            )
        except SmsError as e:
            note = f"{e.code}: {e.message[:200]}"
            if e.transient and item["attempts"] < worker.config.max_attempts:
                await worker.outbox.release_many(worker.owner, [worker._retry_later(item, note)])
                return
            log.warning("SMS %s failed: %s", item["_id"], note)
            failed = worker._finish(item, OutboxStatus.failed, last_error=note)
            await worker.outbox.release_many(worker.owner, [failed])
            await self._tell(item, {"status": "failed", "error": note})
            return
        done = worker._finish(item, OutboxStatus.sent, serial_no=sent.serial_no)
        await worker.outbox.release_many(worker.owner, [done])
        await self._tell(item, {"status": "sent", "serial_no": sent.serial_no})
        parked = await self.outbox.parked_sms_receipt(sent.serial_no, item["phone"])
        if parked is not None:  # the receipt came before we stored the serial number
            await self._apply({**item, "serial_no": sent.serial_no}, parked)

    async def receipts(self, reports: list[dict[str, Any]]) -> int:
        """Tencent's status callback: a list of reports {sid, mobile, report_status,
        user_receive_time, errmsg, description}; the number recorded. A report may come
        before our worker has stored the serial number SendSms answered: it is parked if an
        SMS to that number is in flight, and applied when the send is recorded. Reports that
        name no SMS of ours are ignored (serial number and phone must both match)."""
        recorded = 0
        for report in reports:
            sid, phone = str(report.get("sid") or ""), str(report.get("mobile") or "")[-11:]
            if not sid:
                continue
            item = await self.outbox.sms_by_serial(sid, phone)
            if item is None:
                # The send may be recorded between the two looks (its status is then no
                # longer in flight and nothing is parked): look again either way.
                await self.outbox.park_sms_receipt(sid, phone, report)
                item = await self.outbox.sms_by_serial(sid, phone)
            if item is not None and await self._apply(item, report):
                recorded += 1
        return recorded

    async def _apply(self, item: dict[str, Any], report: dict[str, Any]) -> bool:
        """Record a report on its item and tell its owner, once; whether this was the first."""
        delivered = report.get("report_status") == "SUCCESS"
        at = receipt_time(report.get("user_receive_time"), self.clock.now())
        receipt = {"delivered": delivered, "at": at, "errmsg": report.get("errmsg")}
        if not await self.outbox.sms_receipt(item["_id"], receipt):
            return False  # a repeated report
        outcome: Outcome = {"status": "delivered" if delivered else "failed", "at": at}
        if not delivered:
            outcome["error"] = f"{report.get('errmsg')}: {report.get('description')}"
        await self._tell(item, {**outcome, "serial_no": item.get("serial_no")})
        return True

    async def _tell(self, item: dict[str, Any], outcome: Outcome) -> None:
        if self.on_result is not None:
            await self.on_result({**item["ref"], "sms_id": str(item["_id"])}, outcome)
