"""WeChat Pay's platform certificates, as the emulator issues, rotates and serves them.

A merchant in platform-certificate mode downloads them from ``GET /v3/certificates``: each
entry is ``{serial_no, effective_time, expire_time, encrypt_certificate}``, the PEM sealed
with AEAD_AES_256_GCM under the merchant's APIv3 key (associated data ``certificate``), and
then verifies answers and callbacks with the certificate whose serial (upper-case hex) is in
``Wechatpay-Serial``. WeChat Pay issues a new certificate before the old one expires and serves
both through the overlap ("平台证书更换": the new one signs once it is in use), so a merchant
that meets an unknown serial downloads again.

Validity is on the wall clock, not the emulator's: merchant SDKs (wechatpayv3) check it
against ``datetime.now()``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs.wechatpay_rules import BEIJING

LIFETIME = dt.timedelta(days=5 * 365)


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def serial_no(self) -> str:
        return format(self.certificate.serial_number, "X")

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


def issue(mchid: str = "1900000001") -> Issued:
    """A new platform key and its certificate (self-signed, like a test CA would)."""
    key = wpc.new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Tenpay.com Root CA {mchid}"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + LIFETIME)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, certificate)


class PlatformCertificates:
    """The certificates in service, oldest first; the newest signs."""

    def __init__(self) -> None:
        self.issued: list[Issued] = []

    @property
    def current(self) -> Issued:
        if not self.issued:
            self.rotate()
        return self.issued[-1]

    def rotate(self) -> Issued:
        """A new certificate (a new serial) signs from now on; the older stay downloadable."""
        fresh = issue()
        self.issued = [*self.issued[-1:], fresh]  # two in service through the overlap
        return fresh

    def download(self, apiv3_key: str) -> dict[str, Any]:
        """The body of ``GET /v3/certificates`` for a merchant with this APIv3 key."""
        self.current  # noqa: B018 -- issue one on first use
        return {"data": [_entry(c, apiv3_key) for c in self.issued]}


def _entry(issued: Issued, apiv3_key: str) -> dict[str, Any]:
    cert = issued.certificate
    return {
        "serial_no": issued.serial_no,
        "effective_time": cert.not_valid_before_utc.astimezone(BEIJING).isoformat(),
        "expire_time": cert.not_valid_after_utc.astimezone(BEIJING).isoformat(),
        "encrypt_certificate": wpc.encrypt_resource(apiv3_key, issued.pem, "certificate"),
    }


def as_json(certs: PlatformCertificates) -> dict[str, Any]:
    """What ``/_emulator/pay/certificates`` shows: serials, the signing one last."""
    return {"serials": [c.serial_no for c in certs.issued]}
