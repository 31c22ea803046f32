"""Sign-in, session tokens and their revocation.

A token is signed, so checking one needs no database; the user behind it comes from the
user service's short in-process cache. Logout writes the session id to ``revocations``;
the serving process forgets the session at once, and every process polls the collection
often enough that a revoked token stops working everywhere within 60 seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from models.users import Caller, Role, StaffLoginIn, TokenOut, UserDoc
from server.identity.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidLoginCode,
    InvalidPhoneCode,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
)
from server.identity.store import RevocationStore
from server.identity.users import UserService, user_out
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.crypto import Passwords, TokenSigner
from server.platform.db import Database
from server.platform.errors import NotFound, RateLimited
from server.platform.ratelimit import RateLimiter
from server.wechat.errors import WeChatOutage
from server.wechat.miniprogram import (
    BAD_CODE_ERRCODES,
    RATE_LIMIT_ERRCODES,
    WeChatAdapter,
    WeChatError,
)

log = logging.getLogger("microcourt.auth")

STAFF_TOKEN_SECONDS = 12 * 3600
PHONE_CODE_ERRCODES = frozenset({40029, 40163, 47001})  # bad, used, malformed phone code


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user as of (at most) ``user_cache_seconds`` ago, and their session."""

    user: UserDoc
    sid: str

    @property
    def id(self) -> str:
        return str(self.user.id)

    @property
    def role(self) -> Role:
        return self.user.role


class AuthService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        users: UserService,
        signer: TokenSigner,
        passwords: Passwords,
        wechat: WeChatAdapter,
        clock: Clock,
    ) -> None:
        self.revocations = RevocationStore(db)
        self.settings = settings
        self.users = users
        self.signer = signer
        self.passwords = passwords
        self.wechat = wechat
        self.clock = clock
        per_minute = settings.security.login_attempts_per_minute
        self.login_limiter = RateLimiter.shared(db, "login", per_minute, 60, clock)
        self._revoked: dict[str, dt.datetime] = {}
        self._claims: dict[str, dict[str, Any]] = {}  # token -> claims, once verified
        self._watermark: dt.datetime | None = None
        self._poller: asyncio.Task[None] | None = None

    # ---- issuing

    def _issue(self, user: UserDoc, ttl: int) -> TokenOut:
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=ttl)
        claims = {
            "sub": str(user.id),
            "sid": secrets.token_urlsafe(12),
            "ep": user.session_epoch,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return TokenOut(token=self.signer.issue(claims), expires_at=expires, user=user_out(user))

    async def wx_login(self, code: str, client_ip: str) -> TokenOut:
        await self.login_limiter.hit(f"wx:{client_ip}")
        try:
            session = await self.wechat.code_to_session(code)
        except WeChatError as e:
            if e.errcode in BAD_CODE_ERRCODES:
                raise InvalidLoginCode() from None
            if e.errcode in RATE_LIMIT_ERRCODES:
                raise RateLimited() from None
            log.warning("code2session failed: %s", e)
            raise WeChatOutage() from None
        user = await self.users.upsert_wx_user(session.openid, session.session_key, session.unionid)
        if not user.active:
            raise AccountDisabled()
        return self._issue(user, self.settings.security.token_ttl_seconds)

    async def verify_phone(self, caller: Caller, code: str) -> UserDoc:
        """getPhoneNumber's code -> the number WeChat verified, kept on the user (1+N: the
        desk's orders for that number show in their messages). 422 bad code; 503."""
        try:
            phone = await self.wechat.get_phone_number(code)
        except WeChatError as e:
            if e.errcode in BAD_CODE_ERRCODES or e.errcode in PHONE_CODE_ERRCODES:
                raise InvalidPhoneCode() from None
            log.warning("getuserphonenumber failed: %s", e)
            raise WeChatOutage() from None
        return await self.users.set_verified_phone(caller, phone)

    async def staff_login(self, data: StaffLoginIn, client_ip: str) -> TokenOut:
        await self.login_limiter.hit(f"staff:{client_ip}")
        await self.login_limiter.hit(f"staff-user:{data.username}")
        raw = await self.users.by_username(data.username)
        stored = raw.get("password_hash") if raw else None
        ok = await self.passwords.verify(stored, data.password)
        if not (ok and raw and raw.get("active", True)):
            raise InvalidCredentials()
        user = UserDoc.model_validate(raw)
        ttl = min(self.settings.security.token_ttl_seconds, STAFF_TOKEN_SECONDS)
        return self._issue(user, ttl)

    # ---- checking

    async def authenticate(self, token: str) -> Principal:
        claims = self._verified(token)
        if int(claims.get("exp", 0)) <= self.clock.now().timestamp():
            raise TokenExpired()
        sid = str(claims.get("sid", ""))
        if sid in self._revoked:
            raise TokenRevoked()
        try:
            user = await self.users.get_cached(str(claims.get("sub", "")))
        except NotFound:
            raise InvalidToken() from None
        if not user.active:
            raise AccountDisabled()
        if int(claims.get("ep", 0)) != user.session_epoch:
            raise TokenRevoked()  # issued before a password reset or a 停用
        return Principal(user=user, sid=sid)

    def _verified(self, token: str) -> dict[str, Any]:
        """The token's claims; a token seen before skips the HMAC and the JSON decoding (its
        expiry and revocation are still checked on every request)."""
        claims = self._claims.get(token)
        if claims is None:
            claims = self.signer.verify(token)
            if claims is None:
                raise InvalidToken()
            if len(self._claims) >= 10_000:
                self._claims.clear()
            self._claims[token] = claims
        return claims

    async def logout(self, caller: Caller, token: str) -> None:
        """Revoke the session of ``token`` (already authenticated as ``caller``'s)."""
        claims = self.signer.verify(token) or {}
        sid = str(claims.get("sid", ""))
        expires = dt.datetime.fromtimestamp(int(claims.get("exp", 0)), dt.UTC)
        self._revoked[sid] = expires
        await self.revocations.revoke(sid, str(caller.id), expires)

    # ---- revocations made by other processes

    async def poll_revocations(self) -> int:
        """Load revocations made since the last one seen (by the database's clock, with a
        margin for writes still in flight)."""
        now = self.clock.now()
        since = self._watermark - dt.timedelta(seconds=5) if self._watermark is not None else None
        found = 0
        # the first poll (no watermark yet) loads every session still unexpired
        async for doc in self.revocations.revoked(unexpired_at=now, since=since):
            self._revoked[doc["_id"]] = doc["expires_at"]
            self._watermark = max(self._watermark or doc["revoked_at"], doc["revoked_at"])
            found += 1
        self._revoked = {k: v for k, v in self._revoked.items() if v > now}
        return found

    def start_polling(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll_revocations()
            except PyMongoError as e:
                log.warning("revocation poll failed: %s", type(e).__name__)
            await asyncio.sleep(self.settings.security.revocation_poll_seconds)

    async def stop_polling(self) -> None:
        if self._poller:
            self._poller.cancel()
            self._poller = None
