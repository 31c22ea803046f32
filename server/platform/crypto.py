"""Keys, signed session tokens, field encryption and password hashing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.platform.config import ConfigError, Settings


@dataclass(frozen=True)
class Keys:
    token_secret: bytes
    data_key: bytes
    hash_key: bytes


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generated_secrets(path: Path, makers: dict[str, Callable[[], str]]) -> dict[str, str]:
    """Development secrets, each made once and kept in ``path`` (beside the embedded database)
    so that restarts keep them; names missing from the file are made and added."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = {name: make() for name, make in makers.items() if name not in stored}
    if missing:
        stored = {**stored, **missing}
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.replace(fresh, path)
    return {name: stored[name] for name in makers}


def _generated_keys(path: Path) -> dict[str, str]:
    return generated_secrets(
        path,
        {
            "token_secret": lambda: secrets.token_urlsafe(48),
            "data_key": lambda: base64.b64encode(os.urandom(32)).decode(),
            "hash_key": lambda: secrets.token_urlsafe(48),
        },
    )


def resolve_keys(settings: Settings) -> Keys:
    sec = settings.security
    given = {"token_secret": sec.token_secret, "data_key": sec.data_key, "hash_key": sec.hash_key}
    missing = [name for name, value in given.items() if not value]
    if missing and not settings.mongodb.embedded:
        raise ConfigError(
            f"invalid setting: security.{missing[0]}: required when mongodb.uri is set "
            f"(MICROCOURT_SECURITY__{missing[0].upper()})"
        )
    if missing:
        generated = _generated_keys(settings.server.data_dir / "secrets.json")
        given = {k: v or generated[k] for k, v in given.items()}
    try:
        data_key = base64.b64decode(given["data_key"], validate=True)
    except ValueError:
        data_key = b""
    if len(data_key) != 32:
        raise ConfigError("invalid setting: security.data_key: must be base64 of 32 bytes")
    for name in ("token_secret", "hash_key"):
        if len(given[name]) < 32:
            raise ConfigError(f"invalid setting: security.{name}: must be at least 32 characters")
    return Keys(given["token_secret"].encode(), data_key, given["hash_key"].encode())


class TokenSigner:
    """Stateless session tokens: ``payload.signature``, HMAC-SHA256, no database lookup."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> str:
        return _b64e(hmac.new(self._secret, payload, hashlib.sha256).digest())

    def issue(self, claims: dict[str, Any]) -> str:
        payload = _b64e(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload.encode())}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token we signed, or None. Expiry is the caller's to check."""
        payload, _, signature = token.partition(".")
        if not payload or not signature or not token.isascii():
            return None
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return None
        try:
            claims = json.loads(_b64d(payload))
        except ValueError:
            return None
        return claims if isinstance(claims, dict) else None


class FieldCipher:
    """AES-256-GCM for sensitive fields, plus a keyed hash to match them without decrypting."""

    def __init__(self, data_key: bytes, hash_key: bytes) -> None:
        self._aes = AESGCM(data_key)
        self._hash_key = hash_key

    def encrypt(self, text: str, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aes.encrypt(nonce, text.encode(), context)

    def decrypt(self, blob: bytes, context: bytes = b"") -> str:
        return self._aes.decrypt(blob[:12], blob[12:], context).decode()

    def keyed_hash(self, text: str) -> str:
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()


class Passwords:
    """argon2id, always run off the IOLoop."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # Compared against when the user does not exist, so both paths cost the same.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._check, stored or self._dummy, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
