"""Real-name identity as a court needs it: a claim (name + ID number) that grants nothing until
WeChat's face verification confirms it (server/identity/face.py).

A claim lives in ``identity_claim``; only a confirmed one becomes ``identity``, which every
other capability reads (filing, lookup linking, linking at acceptance, messages on a case), so
a pending claim is refused there without each of them knowing of claims. An ID number held by
another account moves only on a passing verification: both accounts are told and the move is
audited, so it is never a silent block nor a silent take-over; the cases its parties are
linked to follow the number, so the old account no longer reads them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.users import Caller, FaceVerifyIn, IdentityClaimDoc, IdentityIn, UserDoc
from server.identity.errors import (
    FaceVerificationExpired,
    FaceVerificationReused,
    IdentityAlreadyVerified,
    IdentityInUse,
    IdentityNotPending,
    InvalidIdNumber,
    InvalidPhoneCode,
    StaffNoIdentity,
)
from server.identity.face import Claim, FaceVerifier
from server.identity.idnumber import id_number_problem, mask_id_number, normalize_id_number
from server.identity.store import FaceResultStore
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.db import Database, in_transaction
from server.wechat.errors import WeChatOutage
from server.wechat.miniprogram import WeChatAdapter, WeChatError, is_outage

log = logging.getLogger("microcourt.identity")

#: (id_hash, from_user, to_user, session): what else follows an ID number to its new account,
#: inside the move's transaction (the cases' parties: ``CaseService.move_links``)
LinksMoved = Callable[[str, str, str, AsyncClientSession], Awaitable[None]]


class RealNameService:
    def __init__(
        self,
        db: Database,
        users: UserService,
        verifier: FaceVerifier,
        notifications: NotificationService,
        wechat: WeChatAdapter,
        links_moved: LinksMoved,
    ) -> None:
        self.db = db
        self.links_moved = links_moved  # the cases' parties follow the number
        self.users = users
        self.verifier = verifier
        self.notifications = notifications
        self.wechat = wechat
        self.results = FaceResultStore(db)
        security = users.settings.security
        self.claim_ttl = dt.timedelta(seconds=security.identity_claim_seconds)

    # ---- the claim

    async def claim(self, caller: Caller, data: IdentityIn) -> UserDoc:
        """Record the claim (pending); the same verified identity again only updates the
        phone. 409 when another identity is verified on this account."""
        if caller.is_staff:
            raise StaffNoIdentity()
        number = normalize_id_number(data.id_number)
        problem = id_number_problem(number, self.users.clock.now().date())
        if problem:
            raise InvalidIdNumber(problem, details=[{"loc": ["id_number"], "msg": problem}])
        id_hash = self.users.cipher.keyed_hash(number)
        phone = await self._phone(caller, data)
        if caller.identity is not None:
            if caller.identity.id_hash == id_hash and caller.identity.name == data.name:
                return await self._set_phone(caller, phone)
            raise IdentityAlreadyVerified()
        now = self.users.clock.now()
        claim = {
            "name": data.name,
            "id_cipher": self.users.cipher.encrypt(number, b"id_number"),
            "id_hash": id_hash,
            "id_masked": mask_id_number(number),
            "phone": phone[0] if phone else None,
            "phone_verified": bool(phone and phone[1]),
            "claimed_at": now,
            "expires_at": now + self.claim_ttl,
        }
        update: dict[str, Any] = {"identity_claim": claim}
        if phone and phone[1]:  # vouched for by WeChat: the desk's orders for it show (1+N)
            update["verified_phone"] = phone[0]
        doc = await self.users._update(caller.id, {"identity": None}, {"$set": update})
        if doc is None:
            raise IdentityAlreadyVerified()
        return doc

    async def _phone(self, caller: Caller, data: IdentityIn) -> tuple[str, bool] | None:
        """The phone and whether WeChat vouches for it: the getPhoneNumber button's code wins
        over a typed number."""
        if data.phone_code is None:
            return (data.phone, False) if data.phone else None
        try:
            return await self.wechat.get_phone_number(data.phone_code), True
        except WeChatError as e:
            if is_outage(e):
                raise WeChatOutage() from None
            raise InvalidPhoneCode() from None

    async def _set_phone(self, caller: Caller, phone: tuple[str, bool] | None) -> UserDoc:
        held = caller.identity
        if phone is None or (held and (held.phone, held.phone_verified) == phone):
            return caller
        fields: dict[str, Any] = {"identity.phone": phone[0], "identity.phone_verified": phone[1]}
        if phone[1]:
            fields["verified_phone"] = phone[0]
        update = {"$set": fields}
        doc = await self.users._update(caller.id, {}, update)
        assert doc is not None
        return doc

    # ---- the face verification

    async def verify(self, caller: Caller, data: FaceVerifyIn) -> UserDoc:
        """Confirm the pending claim with WeChat's verify_result: 200 verified; 422 failed,
        expired, forged, reused or for other details; 409 nothing pending."""
        digest = hashlib.sha256(data.verify_result.encode()).hexdigest()
        if await self.results.used(digest):
            raise FaceVerificationReused()
        user = await self.users.get(str(caller.id))  # fresh: the claim was just written
        claim = user.identity_claim
        if claim is None:
            raise IdentityAlreadyVerified() if user.identity else IdentityNotPending()
        now = self.users.clock.now()
        if now > claim.expires_at:
            raise FaceVerificationExpired()
        number = self.users.cipher.decrypt(claim.id_cipher, b"id_number")
        await self.verifier.confirm(
            Claim(user.openid or "", claim.name, number), data.verify_result, now
        )
        if not await self.results.consume(digest, str(user.id), now):
            raise FaceVerificationReused()  # a concurrent request used it first
        return await self._promote(user, claim, now)

    async def _promote(self, user: UserDoc, claim: IdentityClaimDoc, now: dt.datetime) -> UserDoc:
        """The claim becomes the verified identity, moved from the account that held the
        number before, if any, in one transaction with its notices and audit row."""
        identity = {
            **claim.model_dump(exclude={"claimed_at", "expires_at"}),
            "verifier": self.verifier.name,
            "verified_at": now,
        }
        query = {"identity": None, "identity_claim.id_hash": claim.id_hash}
        update = {"$set": {"identity": identity}, "$unset": {"identity_claim": ""}}

        async def work(session: AsyncClientSession) -> dict[str, Any] | None:
            holder = await self.users.store.holder_of(claim.id_hash, session)
            if holder is not None and holder["_id"] != user.id:
                await self._release(holder["_id"], user, claim, session)
            return await self.users.store.change(user.id, query, update, session)

        try:
            raw = await in_transaction(self.db, work)
        except DuplicateKeyError:
            raise IdentityInUse() from None  # another account verified it at the same moment
        if raw is None:
            raise IdentityNotPending()
        self.users.forget(str(user.id))
        return UserDoc.model_validate(raw)

    async def _release(
        self, holder: ObjectId, user: UserDoc, claim: IdentityClaimDoc, session: AsyncClientSession
    ) -> None:
        """Take the number off the account that held it, tell both accounts, audit it."""
        await self.users.store.release_identity(holder, claim.id_hash, session)
        self.users.forget(str(holder))
        await self.links_moved(claim.id_hash, str(holder), str(user.id), session)
        details = {"id_masked": claim.id_masked, "from_user": str(holder)}
        await self.users.record(str(user.id), "identity.moved", str(user.id), session, **details)
        masked = claim.id_masked
        await self.notifications.notify(
            [str(holder)],
            "identity_moved_away",
            "实名信息已转移",
            f"身份证号 {masked} 已由另一微信账户通过人脸核身认证，本账户的实名信息已解除。"
            "如非本人操作，请联系法院。",
            session=session,
        )
        await self.notifications.notify(
            [str(user.id)],
            "identity_moved_here",
            "实名信息已转入",
            f"身份证号 {masked} 原绑定另一微信账户，现经人脸核身转入本账户；原账户已收到通知。",
            session=session,
        )
        log.info("identity moved between accounts after face verification: %s", str(user.id))
