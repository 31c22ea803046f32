"""The merchant's WeChat Pay credentials: from settings (checked at start-up), or, with no
``wechatpay.mchid``, development credentials for the emulator.

Development credentials are made once into ``server.data_dir/secrets.json`` (beside the other
development keys) so that restarts keep them: the merchant's key pair, its APIv3 key, and the
platform key pair the emulator signs with (given to the emulator, whose public half the
adapter trusts).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.platform.config import ConfigError, Settings, WeChatPaySettings
from server.platform.crypto import generated_secrets

DEV_MCHID = "1230000109"
_REQUIRED = (
    "merchant_serial_no",
    "merchant_private_key",
    "apiv3_key",
    "notify_base_url",
)


@dataclass(frozen=True)
class PayCredentials:
    """What the adapter signs and verifies with. PEM texts: PKCS#8 and SubjectPublicKeyInfo.
    The platform public key and its id are empty for a merchant on platform certificates
    alone; ``platform_certificates`` downloads and trusts those too (both: the switch-over)."""

    mchid: str
    appid: str
    serial_no: str
    private_key_pem: str
    apiv3_key: str
    platform_public_key_pem: str
    platform_public_key_id: str
    platform_certificates: bool = False

    @property
    def merchant_public_key_pem(self) -> str:
        return public_pem(load_private(self.private_key_pem))


def load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _new_key_pem() -> str:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _dev_apiv3_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


class ResolvedPay(NamedTuple):
    """The merchant's credentials, and the emulator's platform private key (PEM) when the
    emulator is to be used (None with a real merchant)."""

    credentials: PayCredentials
    platform_key_pem: str | None


def resolve_pay_credentials(settings: Settings) -> ResolvedPay:
    """The credentials WeChat Pay is called with (see ``ResolvedPay``). ConfigError names a
    bad setting."""
    pay = settings.wechatpay
    if not pay.emulated:
        return ResolvedPay(_configured(pay), None)
    dev = generated_secrets(
        settings.server.data_dir / "secrets.json",
        {
            "wechatpay_merchant_key": _new_key_pem,
            "wechatpay_apiv3_key": _dev_apiv3_key,
            "wechatpay_platform_key": _new_key_pem,
        },
    )
    merchant = load_private(dev["wechatpay_merchant_key"])
    platform = load_private(dev["wechatpay_platform_key"])
    der = merchant.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    credentials = PayCredentials(
        mchid=DEV_MCHID,
        appid=pay.appid or settings.wechat.appid,
        serial_no=hashlib.sha1(der).hexdigest().upper(),
        private_key_pem=dev["wechatpay_merchant_key"],
        apiv3_key=dev["wechatpay_apiv3_key"],
        platform_public_key_pem=public_pem(platform),
        platform_public_key_id=dev_public_key_id(platform),
    )
    return ResolvedPay(credentials, dev["wechatpay_platform_key"])


def dev_public_key_id(key: rsa.RSAPrivateKey) -> str:
    """An id for the development platform key, shaped like WeChat Pay's ``PUB_KEY_ID_...``."""
    digest = hashlib.sha256(public_pem(key).encode()).hexdigest()
    return "PUB_KEY_ID_01" + str(int(digest[:24], 16)).zfill(30)[:30]


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(f"invalid setting: wechatpay.{name}: {why}")


def _configured(pay: WeChatPaySettings) -> PayCredentials:
    for name in _REQUIRED:
        if not getattr(pay, name):
            why = f"required when wechatpay.mchid is set (MICROCOURT_WECHATPAY__{name.upper()})"
            raise _bad(name, why)
    if not re.fullmatch(r"[0-9A-Fa-f]{8,64}", pay.merchant_serial_no):
        raise _bad("merchant_serial_no", "must be the certificate's hexadecimal serial number")
    if len(pay.apiv3_key.encode()) != 32:
        raise _bad("apiv3_key", "must be 32 bytes")
    _check_platform_modes(pay)
    if not pay.notify_base_url.startswith("https://"):
        raise _bad("notify_base_url", "WeChat Pay posts callbacks to https URLs only")
    try:
        private = private_pem(
            load_private(_pem("merchant_private_key", pay.merchant_private_key, "PRIVATE KEY"))
        )
    except ValueError:
        raise _bad("merchant_private_key", "not a PEM RSA private key") from None
    platform = ""
    try:
        if pay.platform_public_key:
            platform = public_pem(
                load_public(_pem("platform_public_key", pay.platform_public_key, "PUBLIC KEY"))
            )
    except ValueError:
        raise _bad("platform_public_key", "not a PEM RSA public key") from None
    return PayCredentials(
        mchid=pay.mchid,
        appid=pay.appid,
        serial_no=pay.merchant_serial_no.upper(),
        private_key_pem=private,
        apiv3_key=pay.apiv3_key,
        platform_public_key_pem=platform,
        platform_public_key_id=pay.platform_public_key_id,
        platform_certificates=pay.platform_certificates,
    )


def _check_platform_modes(pay: WeChatPaySettings) -> None:
    """The public key (with its id), platform certificates, or both while switching over."""
    pair = ("platform_public_key", "platform_public_key_id")
    if not pay.platform_certificates or any(getattr(pay, name) for name in pair):
        for name in pair:
            if not getattr(pay, name):
                why = "required with its pair, unless wechatpay.platform_certificates alone"
                raise _bad(name, why)
    key_id = pay.platform_public_key_id
    if key_id and not re.fullmatch(r"PUB_KEY_ID_[0-9A-Za-z]{8,64}", key_id):
        raise _bad("platform_public_key_id", "must look like PUB_KEY_ID_...")


def _pem(name: str, value: str, label: str) -> str:
    """PEM text as given (bare base64 gets its BEGIN/END lines), or the file it names."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text
    if re.fullmatch(r"[A-Za-z0-9+/=\s]{200,}", text):
        return f"-----BEGIN {label}-----\n{text}\n-----END {label}-----\n"
    try:
        return Path(text).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        # never echo the value: it may be a mangled secret
        raise _bad(name, "neither PEM text nor the path of a readable file") from None
