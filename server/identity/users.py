"""Users: real-name identity, lawyer registration, staff accounts. No HTTP in here."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.common import Page
from models.users import (
    STAFF_ROLES,
    Caller,
    ColleagueOut,
    ColleagueQuery,
    IdentityOut,
    IdentityStatus,
    LawyerDecisionIn,
    LawyerIn,
    LawyerOut,
    LawyerQuery,
    LawyerStatus,
    Role,
    StaffCreate,
    StaffQuery,
    StaffUpdate,
    UserDoc,
    UserOut,
)
from server.identity.errors import (
    CannotDisableSelf,
    IdentityPending,
    IdentityRequired,
    InvalidStaffRole,
    LawyerAlreadyDecided,
    LawyerAlreadyVerified,
    LawyerApplicationNotFound,
    NoCourt,
    OtherCourt,
    ReasonRequired,
    StaffNotFound,
    StaffNotLawyer,
    UsernameTaken,
    UserNotFound,
)
from server.identity.store import UserStore
from server.platform.audit import AuditLog, AuditRow
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.crypto import FieldCipher, Passwords
from server.platform.db import Database
from server.platform.errors import UnknownCourt
from server.platform.paging import decode_cursor, encode_cursor, object_id

log = logging.getLogger("microcourt.users")


def identity_missing(caller: Caller) -> IdentityRequired:
    """The 403 for a caller without a verified identity: a pending claim says so."""
    return IdentityPending() if caller.identity_claim is not None else IdentityRequired()


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def identity_out(doc: UserDoc) -> IdentityOut | None:
    """The verified identity or, failing that, the pending claim (``status`` says which)."""
    held = doc.identity or doc.identity_claim
    if held is None:
        return None
    return IdentityOut(
        status=IdentityStatus.verified if doc.identity else IdentityStatus.pending,
        name=held.name,
        id_number_masked=held.id_masked,
        phone_masked=mask_phone(held.phone) if held.phone else None,
        phone_verified=held.phone_verified,
        verified_at=doc.identity.verified_at if doc.identity else None,
        expires_at=None if doc.identity else getattr(held, "expires_at", None),
    )


def user_out(doc: UserDoc) -> UserOut:
    identity = doc.identity
    return UserOut(
        id=str(doc.id),
        role=doc.role,
        active=doc.active,
        name=doc.name or (identity.name if identity else None),
        username=doc.username,
        court_id=doc.court_id,
        supervisor=doc.supervisor,
        division_head=doc.division_head,
        service_desk=doc.service_desk,
        team_phone=doc.team_phone,
        phone_masked=mask_phone(doc.verified_phone) if doc.verified_phone else None,
        identity=identity_out(doc),
        lawyer=LawyerOut(**doc.lawyer.model_dump()) if doc.lawyer else None,
        created_at=doc.created_at,
    )


class Directory:
    """Who is who, for the other capabilities: the reads of ``users`` that notices and work
    orders need (a court's staff by role or by flag, a user's openid), without the rest of
    ``UserService`` (its cipher, passwords and cache). Cheap to make: ``Directory(db)``."""

    def __init__(self, db: Database) -> None:
        self.store = UserStore(db)

    async def staff_ids(
        self,
        court_id: str,
        roles: Iterable[str],
        *,
        limit: int,
        session: AsyncClientSession | None = None,
    ) -> list[str]:
        """Ids of the active staff of a court with those roles, at most ``limit``."""
        return await self.store.staff_ids(court_id, roles, limit=limit, session=session)

    async def flagged_staff_ids(
        self, court_id: str, flag: str, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Ids of the active staff of a court carrying ``flag`` (``supervisor`` or
        ``division_head``)."""
        return await self.store.flagged_staff_ids(court_id, flag, session)

    async def openid_of(self, user_id: str) -> str | None:
        """The WeChat openid of an active user; None for staff (signed in by password), for an
        inactive account and for an unknown one."""
        return await self.store.openid_of(user_id)

    async def openids_of(
        self, user_ids: list[str], session: AsyncClientSession | None = None
    ) -> dict[str, str]:
        """{user id: openid} of the active users among ``user_ids`` who have one (not staff)."""
        return await self.store.openids_of(user_ids, session)


class UserService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cipher: FieldCipher,
        passwords: Passwords,
        clock: Clock,
    ) -> None:
        self.store = UserStore(db)
        self.audit = AuditLog(db, clock)
        self.settings = settings
        self.cipher = cipher
        self.passwords = passwords
        self.clock = clock
        self._cache: dict[str, tuple[float, UserDoc]] = {}
        self._cache_ttl = settings.security.user_cache_seconds

    # ---- reading

    async def get(self, user_id: str) -> UserDoc:
        if not ObjectId.is_valid(user_id):
            raise UserNotFound()
        raw = await self.store.by_id(ObjectId(user_id))
        if raw is None:
            raise UserNotFound()
        return UserDoc.model_validate(raw)

    async def get_cached(self, user_id: str) -> UserDoc:
        """The user, from a short in-process cache: no database round trip per request."""
        hit = self._cache.get(user_id)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        doc = await self.get(user_id)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[user_id] = (now + self._cache_ttl, doc)
        return doc

    async def by_username(self, username: str) -> dict[str, Any] | None:
        """A staff account as stored (with its password hash), or None."""
        return await self.store.by_username(username)

    async def by_identity(self, id_hashes: list[str]) -> dict[str, str]:
        """ID-number hash -> user id, for each hash that a verified account holds."""
        if not id_hashes:
            return {}
        return await self.store.ids_by_identity(id_hashes)

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def _update(
        self, user_id: ObjectId, query: dict[str, Any], update: dict[str, Any]
    ) -> UserDoc | None:
        raw = await self.store.change(user_id, query, update)
        self.forget(str(user_id))
        return UserDoc.model_validate(raw) if raw else None

    async def record(
        self,
        actor: str,
        action: str,
        target: str,
        session: AsyncClientSession | None = None,
        **details: Any,
    ) -> None:
        """The audit log (platform's): every staff action and every read of another person's
        data."""
        await self.audit.record(actor, action, target, session, **details)

    async def record_many(self, rows: Sequence[AuditRow], session: AsyncClientSession) -> None:
        """``record`` of many actions, in one write."""
        await self.audit.record_many(rows, session)

    # ---- WeChat users

    async def upsert_wx_user(self, openid: str, session_key: str, unionid: str | None) -> UserDoc:
        now = self.clock.now()
        update = {
            "$set": {
                "session_key_enc": self.cipher.encrypt(session_key, b"session_key"),
                "unionid": unionid,
                "last_login_at": now,
            },
            "$setOnInsert": {"role": Role.litigant.value, "active": True, "created_at": now},
        }
        try:
            raw = await self.store.upsert_by_openid(openid, update)
        except DuplicateKeyError:  # two first logins raced: the loser now finds the winner
            raw = await self.store.upsert_by_openid(openid, update)
        self.forget(str(raw["_id"]))
        return UserDoc.model_validate(raw)

    async def set_verified_phone(self, caller: Caller, phone: str) -> UserDoc:
        """The number WeChat's getPhoneNumber vouched for: the desk's orders for it show in
        the user's messages (1+N)."""
        doc = await self._update(caller.id, {}, {"$set": {"verified_phone": phone}})
        assert doc is not None
        return doc

    # ---- lawyers

    async def apply_lawyer(self, caller: Caller, data: LawyerIn) -> UserDoc:
        if caller.is_staff:
            raise StaffNotLawyer()
        if caller.identity is None:
            raise identity_missing(caller)
        if caller.lawyer and caller.lawyer.status == LawyerStatus.verified:
            raise LawyerAlreadyVerified()
        lawyer = {
            **data.model_dump(),
            "status": LawyerStatus.pending.value,
            "submitted_at": self.clock.now(),
        }
        doc = await self._update(
            caller.id,
            {"lawyer.status": {"$ne": LawyerStatus.verified.value}},
            {"$set": {"lawyer": lawyer}},
        )
        if doc is None:
            raise LawyerAlreadyVerified()
        return doc

    async def decide_lawyer(self, caller: Caller, user_id: str, data: LawyerDecisionIn) -> UserDoc:
        """An admin approves or rejects a pending application."""
        if not data.approved and not data.reason:
            raise ReasonRequired()
        target = ObjectId(user_id) if ObjectId.is_valid(user_id) else None
        status = LawyerStatus.verified if data.approved else LawyerStatus.rejected
        update: dict[str, Any] = {
            "$set": {
                "lawyer.status": status.value,
                "lawyer.decided_at": self.clock.now(),
                "lawyer.decided_by": str(caller.id),
                "lawyer.reason": data.reason,
            }
        }
        if data.approved:
            update["$set"]["role"] = Role.lawyer.value
        doc = (
            await self._update(target, {"lawyer.status": LawyerStatus.pending.value}, update)
            if target
            else None
        )
        if doc is None:
            await self._explain_lawyer_miss(target)
        assert doc is not None
        await self.record(str(caller.id), f"lawyer.{status.value}", user_id, reason=data.reason)
        return doc

    async def _explain_lawyer_miss(self, target: ObjectId | None) -> None:
        raw = await self.store.lawyer_of(target) if target else None
        if raw is None or not raw.get("lawyer"):
            raise LawyerApplicationNotFound()
        raise LawyerAlreadyDecided()

    async def list_lawyers(self, caller: Caller, query: LawyerQuery) -> Page[UserOut]:
        """Lawyer applications in one status, oldest first (an admin's verification queue)."""
        raws = await self.store.lawyers_page(
            query.status.value, _after_cursor(query.cursor), query.limit
        )
        return self._page(raws, query.limit)

    # ---- staff

    def _court_scope(self, caller: Caller, court_id: str | None) -> str | None:
        """A court admin acts in their own court only; the system admin (no court) in any."""
        if caller.court_id is None:
            return court_id
        if court_id not in (None, caller.court_id):
            raise OtherCourt()
        return caller.court_id

    async def create_staff(self, caller: Caller, data: StaffCreate) -> UserDoc:
        court_id = self._court_scope(caller, data.court_id)
        if self.settings.court(data.court_id) is None:
            raise UnknownCourt(details=[{"loc": ["court_id"], "msg": "unknown court"}])
        if data.role not in STAFF_ROLES:
            raise InvalidStaffRole()
        doc = {
            "role": data.role.value,
            "username": data.username,
            "name": data.name,
            "court_id": court_id,
            "supervisor": data.supervisor,
            "division_head": data.division_head,
            "service_desk": data.service_desk,
            "team_phone": data.team_phone,
            "active": True,
            "password_hash": await self.passwords.hash(data.password),
            "created_at": self.clock.now(),
            "created_by": str(caller.id),
        }
        try:
            inserted = await self.store.insert(doc)
        except DuplicateKeyError:
            raise UsernameTaken() from None
        await self.record(str(caller.id), "staff.create", str(inserted), role=data.role)
        return UserDoc.model_validate({**doc, "_id": inserted})

    async def update_staff(self, caller: Caller, user_id: str, data: StaffUpdate) -> UserDoc:
        """Change a staff account of the admin's court (a court admin: their own court's only;
        404 otherwise). 停用 or a new password ends every session of the account (its tokens
        carry the epoch this moves); an admin cannot disable themselves (409)."""
        target = await self._staff_of(caller, user_id)
        changes = data.changes()
        if changes.get("active") is False and target.id == caller.id:
            raise CannotDisableSelf()
        sets = {k: v for k, v in changes.items() if k != "password"}
        if "password" in changes:
            sets["password_hash"] = await self.passwords.hash(str(changes["password"]))
        update: dict[str, Any] = {"$set": {**sets, "updated_at": self.clock.now()}}
        if "password" in changes or changes.get("active") is False:
            update["$inc"] = {"session_epoch": 1}
        doc = await self._update(target.id, {"role": target.role.value}, update)
        if doc is None:
            raise StaffNotFound()
        await self.record(str(caller.id), "staff.update", user_id, fields=sorted(changes))
        return doc

    async def _staff_of(self, caller: Caller, user_id: str) -> UserDoc:
        """A staff account the caller administers; 404 for any other account."""
        try:
            target = await self.get(user_id)
        except UserNotFound:
            raise StaffNotFound() from None
        if not target.is_staff or caller.court_id not in (None, target.court_id):
            raise StaffNotFound()
        return target

    async def list_staff(self, caller: Caller, query: StaffQuery) -> Page[UserOut]:
        court_id = self._court_scope(caller, query.court_id)
        role = query.role.value if query.role else None
        raws = await self.store.staff_page(court_id, role, _after_cursor(query.cursor), query.limit)
        return self._page(raws, query.limit)

    async def colleagues(self, caller: Caller, query: ColleagueQuery) -> Page[ColleagueOut]:
        """The active staff of the caller's own court, newest first (the console's pickers
        for assigning a case or a work order)."""
        if not caller.court_id:
            raise NoCourt()
        role = query.role.value if query.role else None
        raws = await self.store.colleagues_page(
            caller.court_id, role, _after_cursor(query.cursor), query.limit
        )
        docs = [UserDoc.model_validate(r) for r in raws[: query.limit]]
        return Page[ColleagueOut](
            items=[
                ColleagueOut(
                    id=str(d.id),
                    role=d.role,
                    name=d.name,
                    supervisor=d.supervisor,
                    division_head=d.division_head,
                )
                for d in docs
            ],
            next_cursor=encode_cursor([docs[-1].id]) if len(raws) > query.limit else None,
        )

    def _page(self, raws: list[dict[str, Any]], limit: int) -> Page[UserOut]:
        docs = [UserDoc.model_validate(r) for r in raws[:limit]]
        more = len(raws) > limit
        return Page[UserOut](
            items=[user_out(d) for d in docs],
            next_cursor=encode_cursor([docs[-1].id]) if more else None,
        )

    async def ensure_admin(self, password: str) -> None:
        """Create user ``admin`` (system administrator) once, from MICROCOURT_ADMIN_PASSWORD."""
        if await self.store.admin_exists():
            return
        doc = {
            "role": Role.admin.value,
            "username": "admin",
            "name": "系统管理员",
            "active": True,
            "supervisor": True,
            "created_at": self.clock.now(),
            "password_hash": await self.passwords.hash(password),
        }
        try:
            await self.store.insert(doc)
            log.info("created the first admin user")
        except DuplicateKeyError:
            pass  # another process made it first


def _after_cursor(cursor: str | None) -> ObjectId | None:
    """The last id of the page before, from its cursor (400 for a bad one)."""
    if not cursor:
        return None
    (last,) = decode_cursor(cursor, object_id)
    return last
