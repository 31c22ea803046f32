"""WeChat Pay API v3 cryptography, as the platform side does it.

- Requests are signed by the merchant: ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",
  nonce_str="…",signature="…",timestamp="…",serial_no="…"`` over
  ``METHOD\\nURI\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (SHA256withRSA, base64).
- Responses and callbacks are signed by the platform over ``TIMESTAMP\\nNONCE\\nBODY\\n``.
- Callback resources are AES-256-GCM encrypted with the merchant's APIv3 key; the nonce is
  a 12-character string, the associated data a short string, the ciphertext base64(ct+tag).
- ``wx.requestPayment``'s paySign covers ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
_AUTH_PAIR = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')
_NONCE_ALPHABET = string.ascii_letters + string.digits


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


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


def public_key_id(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """A platform public key id shaped like WeChat Pay's: ``PUB_KEY_ID_`` and digits."""
    digest = hashlib.sha256(public_pem(key).encode()).hexdigest()
    return "PUB_KEY_ID_01" + str(int(digest[:24], 16)).zfill(30)[:30]


def nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    raw = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """The fields of a WECHATPAY2-SHA256-RSA2048 Authorization header, or None if malformed."""
    if not header or not header.startswith(SCHEME + " "):
        return None
    fields: dict[str, str] = {}
    for part in header[len(SCHEME) + 1 :].split(","):
        match = _AUTH_PAIR.fullmatch(part)
        if match is None:
            return None
        fields[match[1]] = match[2]
    wanted = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}
    return fields if wanted <= fields.keys() else None


def request_message(method: str, uri: str, timestamp: str, nonce_str: str, body: str) -> str:
    return f"{method}\n{uri}\n{timestamp}\n{nonce_str}\n{body}\n"


def response_message(timestamp: str, nonce_str: str, body: str) -> str:
    return f"{timestamp}\n{nonce_str}\n{body}\n"


def pay_sign_message(appid: str, timestamp: str, nonce_str: str, package: str) -> str:
    return f"{appid}\n{timestamp}\n{nonce_str}\n{package}\n"


def encrypt_resource(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    """``resource`` of a callback: AEAD_AES_256_GCM under the merchant's APIv3 key."""
    iv = nonce(12)
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        iv.encode(), plaintext.encode(), associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode(),
        "nonce": iv,
        "associated_data": associated_data,
    }


def decrypt_field(keys: list[rsa.RSAPrivateKey], ciphertext: str) -> str | None:
    """A sensitive request field (bank card, name), RSA-OAEP (SHA-1) under the platform public
    key or a platform certificate, as 敏感信息加密 says; None if no platform key opens it."""
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except ValueError:
        return None
    for key in keys:
        try:
            oaep = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None
            )
            return key.decrypt(raw, oaep).decode()
        except (ValueError, UnicodeDecodeError):
            continue
    return None
