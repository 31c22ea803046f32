"""The platform keys WeChat Pay signs with, as the adapter holds them: the public key (serial
``PUB_KEY_ID_...``) and the platform certificates that wechatpayv3 downloads from
``GET /v3/certificates`` and keeps in its core (``_certificates``). A callback's
``Wechatpay-Serial`` says which one signed it; wechatpayv3 chooses and verifies.
"""

from __future__ import annotations

import asyncio
import binascii
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from server.platform.clock import Clock

log = logging.getLogger("microcourt.wechatpay")

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# a callback with an unknown certificate serial downloads the certificates again, at most this
# often: a stream of forged serials must not become a stream of downloads (a rotation is rare)
CERTIFICATE_REFRESH = dt.timedelta(minutes=1)


class PlatformKeys:
    def __init__(
        self, core: Any, public_key_id: str | None, certificates: bool, clock: Clock
    ) -> None:
        self._core = core  # wechatpayv3's AsyncCore
        self.public_key_id = public_key_id
        self.certificates = certificates
        self._clock = clock
        self._refreshing = asyncio.Lock()
        self.refreshed_at: dt.datetime | None = None

    def knows(self, serial: str) -> bool:
        """The platform public key's id, or the serial of a downloaded certificate."""
        if self.public_key_id and serial == self.public_key_id:
            return True
        if not self.certificates or not re.fullmatch(r"[0-9A-Fa-f]{1,64}", serial):
            return False
        number = int(serial, 16)
        return any(c.serial_number == number for c in self._core._certificates)

    @property
    def serials(self) -> list[str]:
        """The platform certificates in memory (hexadecimal, as ``Wechatpay-Serial``)."""
        return [format(c.serial_number, "X") for c in self._core._certificates]

    async def refresh(self, open_client: Callable[[], Awaitable[None]]) -> None:
        """GET /v3/certificates again (throttled). A failed download keeps what we had."""
        if not self.certificates:
            return
        async with self._refreshing:
            now = self._clock.now()
            if self.refreshed_at and now - self.refreshed_at < CERTIFICATE_REFRESH:
                return
            self.refreshed_at = now
            kept = list(self._core._certificates)
            try:
                if self._core._client is None:
                    await open_client()  # in certificate mode this downloads them
                else:
                    await self._core._update_certificates()
            except Exception as e:  # a failed download must not fail the callback: it is retried
                log.warning("wechatpay certificates not downloaded: %s", type(e).__name__)
            if not self._core._certificates:
                self._core._certificates.extend(kept)
            log.info("wechatpay platform certificates: %s", self.serials)

    def signed(self, stamp: str, nonce: str, signature: str, serial: str, text: str) -> bool:
        """wechatpayv3 chooses the public key or the certificate by the serial and verifies."""
        canonical = {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }
        try:
            return bool(self._core._verify_signature(canonical, text))
        except (binascii.Error, ValueError, TypeError):
            return False
