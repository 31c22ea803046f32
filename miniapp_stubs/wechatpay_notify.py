"""Callbacks as WeChat Pay sends them: encrypted, signed, posted in the background, retried.

WeChat Pay posts a notification until the merchant answers 200 or 204, on the schedule 15s,
15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h; and it may post the same
notification again after a success. The emulator keeps that schedule scaled down by
``time_scale`` (real seconds) and posts ``repeats_after_success`` extra copies, so tests see
both behaviours quickly. Timestamps in the signed headers follow the emulator's clock.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs.wechatpay_rules import beijing

# seconds between attempts: 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h
RETRY_SCHEDULE: tuple[int, ...] = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600)
RETRY_SCHEDULE += (10800, 10800, 10800, 21600, 21600)
SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}


@dataclass
class Attempt:
    at: float  # emulator clock
    status: int | None  # None: no HTTP answer (connection refused, timeout)
    body: str
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": beijing(self.at),
            "status": self.status,
            "body": self.body,
            "error": self.error,
        }


@dataclass
class Delivery:
    """One notification and every attempt to post it."""

    id: str
    event_type: str
    url: str
    out_trade_no: str
    out_refund_no: str | None
    body: str  # the JSON posted, identical on every attempt
    resource: dict[str, Any]  # the plaintext of the encrypted resource
    attempts: list[Attempt] = field(default_factory=list)
    dropped: bool = False
    done: bool = False

    @property
    def delivered(self) -> bool:
        return any(a.status in (200, 204) for a in self.attempts)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "url": self.url,
            "out_trade_no": self.out_trade_no,
            "out_refund_no": self.out_refund_no,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "done": self.done,
            "attempts": [a.as_json() for a in self.attempts],
            "resource": self.resource,
        }


def envelope(
    apiv3_key: str, event_type: str, resource: dict[str, Any], now: float, notification_id: str
) -> str:
    """A notification's JSON body: the envelope, ``resource`` sealed with the APIv3 key."""
    original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
    plain = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    sealed = wpc.encrypt_resource(apiv3_key, plain, original_type)
    return json.dumps(
        {
            "id": notification_id,
            "create_time": beijing(now),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": SUMMARIES[event_type],
            "resource": {"original_type": original_type, **sealed},
        },
        ensure_ascii=False,
    )


def signed_headers(key: rsa.RSAPrivateKey, key_id: str, body: str, now: float) -> dict[str, str]:
    """The platform's signature headers for ``body`` at ``now`` (a fresh nonce)."""
    stamp, nonce = str(int(now)), wpc.nonce()
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": wpc.sign(key, wpc.response_message(stamp, nonce, body)),
        "Wechatpay-Serial": key_id,
        "Wechatpay-Signature-Type": wpc.SCHEME,
    }


class Notifier:
    """Builds, signs and posts notifications; every task it starts ends with ``stop()``."""

    def __init__(
        self,
        clock: Callable[[], float],
        platform_key: rsa.RSAPrivateKey,
        platform_key_id: str,
        *,
        time_scale: float,
        repeats_after_success: int,
        timeout: float,
    ) -> None:
        self.clock = clock
        self.platform_key = platform_key
        self.platform_key_id = platform_key_id
        # platform-certificate mode: (the certificate's key, its serial) sign instead
        self.signer: tuple[rsa.RSAPrivateKey, str] | None = None
        self.schedule = [delay * time_scale for delay in RETRY_SCHEDULE]
        self.repeats_after_success = repeats_after_success
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self.dropped: set[str] = set()  # out_trade_no whose notifications get lost
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def send(
        self,
        apiv3_key: str,
        url: str,
        event_type: str,
        resource: dict[str, Any],
        out_trade_no: str,
        out_refund_no: str | None = None,
    ) -> Delivery:
        notification_id = str(uuid.uuid4())
        body = envelope(apiv3_key, event_type, resource, self.clock(), notification_id)
        delivery = Delivery(
            notification_id, event_type, url, out_trade_no, out_refund_no, body, resource
        )
        self.deliveries.append(delivery)
        self._spawn(self._run(delivery))
        return delivery

    def signed_headers(self, body: str, timestamp: float | None = None) -> dict[str, str]:
        """The platform's signature headers for ``body`` (responses and callbacks alike)."""
        stamp = self.clock() if timestamp is None else timestamp
        key, key_id = self.signer or (self.platform_key, self.platform_key_id)
        return signed_headers(key, key_id, body, stamp)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` real seconds on the running loop (until ``stop``)."""
        handles: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(handles[0])
            action()

        handles.append(asyncio.get_running_loop().call_later(delay, fire))
        self._timers.add(handles[0])

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every notification has finished its schedule (tests)."""
        async with asyncio.timeout(timeout):
            while self._tasks or self._timers:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, delivery: Delivery) -> None:
        try:
            delays = iter(self.schedule)
            while not await self._attempt(delivery):
                delay = next(delays, None)
                if delay is None or delivery.dropped:
                    return
                await asyncio.sleep(delay)
            for _ in range(self.repeats_after_success):
                await asyncio.sleep(self.schedule[0] if self.schedule else 0)
                await self._attempt(delivery)
        finally:
            delivery.done = True

    async def _attempt(self, delivery: Delivery) -> bool:
        if delivery.out_trade_no in self.dropped:
            delivery.dropped = True  # lost on the way: the merchant never sees it
            return False
        headers = {"Content-Type": "application/json", **self.signed_headers(delivery.body)}
        request = HTTPRequest(
            delivery.url,
            method="POST",
            headers=headers,
            body=delivery.body.encode(),
            request_timeout=self.timeout,
        )
        try:
            # raise_error=False still raises for refused connections and timeouts
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as e:  # any failure to get an answer is a failed attempt
            delivery.attempts.append(Attempt(self.clock(), None, "", type(e).__name__))
            return False
        text = (response.body or b"")[:500].decode(errors="replace")
        delivery.attempts.append(Attempt(self.clock(), response.code, text))
        return response.code in (200, 204)
