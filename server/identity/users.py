"""Users: real-name identity, lawyer registration, staff accounts. No HTTP in here."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.common import Page
from models.users import (
    STAFF_ROLES,
    ColleagueOut,
    ColleagueQuery,
    IdentityIn,
    IdentityOut,
    LawyerDecisionIn,
    LawyerIn,
    LawyerOut,
    LawyerQuery,
    LawyerStatus,
    Role,
    StaffCreate,
    StaffQuery,
    UserDoc,
    UserOut,
)
from server.identity.errors import (
    IdentityAlreadyVerified,
    IdentityInUse,
    IdentityMismatch,
    IdentityRequired,
    InvalidIdNumber,
    InvalidStaffRole,
    LawyerAlreadyDecided,
    LawyerAlreadyVerified,
    LawyerApplicationNotFound,
    NoCourt,
    OtherCourt,
    ReasonRequired,
    StaffNoIdentity,
    StaffNotLawyer,
    UsernameTaken,
    UserNotFound,
)
from server.identity.idnumber import id_number_problem, mask_id_number, normalize_id_number
from server.platform.audit import AuditLog
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.crypto import FieldCipher, Passwords
from server.platform.db import Database
from server.platform.errors import UnknownCourt
from server.platform.mongo import change_one
from server.platform.paging import decode_cursor, encode_cursor, object_id

log = logging.getLogger("microcourt.users")


class IdentityVerifier(Protocol):
    """Checks a name against an ID number; the court plugs in its real-name service here."""

    name: str

    async def verify(self, name: str, id_number: str) -> bool: ...


class ChecksumVerifier:
    """The default: the number's own checks (format, date of birth, GB 11643 check digit)."""

    name = "checksum"

    async def verify(self, name: str, id_number: str) -> bool:
        return True


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def user_out(doc: UserDoc) -> UserOut:
    identity = doc.identity
    return UserOut(
        id=str(doc.id),
        role=doc.role,
        name=doc.name or (identity.name if identity else None),
        username=doc.username,
        court_id=doc.court_id,
        supervisor=doc.supervisor,
        division_head=doc.division_head,
        identity=IdentityOut(
            name=identity.name,
            id_number_masked=identity.id_masked,
            phone_masked=mask_phone(identity.phone) if identity.phone else None,
            verified_at=identity.verified_at,
        )
        if identity
        else None,
        lawyer=LawyerOut(**doc.lawyer.model_dump()) if doc.lawyer else None,
        created_at=doc.created_at,
    )


class Directory:
    """Who is who, for the other capabilities: the reads of ``users`` that notices and work
    orders need (a court's staff by role or by flag, a user's openid), without the rest of
    ``UserService`` (its cipher, passwords and cache). Cheap to make: ``Directory(db)``."""

    def __init__(self, db: Database) -> None:
        self.users = db["users"]

    async def staff_ids(
        self,
        court_id: str,
        roles: Iterable[str],
        *,
        limit: int,
        session: AsyncClientSession | None = None,
    ) -> list[str]:
        """Ids of the active staff of a court with those roles, at most ``limit`` (index
        ``staff_by_court_role``)."""
        query = {"court_id": court_id, "role": {"$in": sorted(str(r) for r in roles)}}
        cursor = self.users.find({**query, "active": True}, {"_id": 1}, session=session)
        return [str(doc["_id"]) async for doc in cursor.limit(limit)]

    async def flagged_staff_ids(
        self, court_id: str, flag: str, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Ids of the active staff of a court carrying ``flag`` (``supervisor`` or
        ``division_head``; indexes ``supervisors`` and ``division_heads``)."""
        query = {"court_id": court_id, flag: True, "active": True}
        return [str(u["_id"]) async for u in self.users.find(query, {"_id": 1}, session=session)]

    async def openid_of(self, user_id: str) -> str | None:
        """The WeChat openid of an active user; None for staff (signed in by password), for an
        inactive account and for an unknown one."""
        user = await self.users.find_one({"_id": ObjectId(user_id)}, {"openid": 1, "active": 1})
        openid = user.get("openid") if user and user.get("active", True) else None
        return str(openid) if openid else None


class UserService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cipher: FieldCipher,
        passwords: Passwords,
        clock: Clock,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.users = db["users"]
        self.audit = AuditLog(db, clock)
        self.settings = settings
        self.cipher = cipher
        self.passwords = passwords
        self.clock = clock
        self.verifier: IdentityVerifier = verifier or ChecksumVerifier()
        self._cache: dict[str, tuple[float, UserDoc]] = {}
        self._cache_ttl = settings.security.user_cache_seconds

    # ---- reading

    async def get(self, user_id: str) -> UserDoc:
        if not ObjectId.is_valid(user_id):
            raise UserNotFound()
        raw = await self.users.find_one({"_id": ObjectId(user_id)})
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
        return await self.users.find_one({"username": username})

    async def by_identity(self, id_hashes: list[str]) -> dict[str, str]:
        """ID-number hash -> user id, for each hash that a verified account holds."""
        if not id_hashes:
            return {}
        found = self.users.find({"identity.id_hash": {"$in": id_hashes}}, {"identity.id_hash": 1})
        return {u["identity"]["id_hash"]: str(u["_id"]) async for u in found}

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def _update(
        self, user_id: ObjectId, query: dict[str, Any], update: dict[str, Any]
    ) -> UserDoc | None:
        raw = await change_one(self.users, {"_id": user_id, **query}, update)
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
            raw = await self._upsert_openid(openid, update)
        except DuplicateKeyError:  # two first logins raced: the loser now finds the winner
            raw = await self._upsert_openid(openid, update)
        self.forget(str(raw["_id"]))
        return UserDoc.model_validate(raw)

    async def _upsert_openid(self, openid: str, update: dict[str, Any]) -> dict[str, Any]:
        raw = await change_one(self.users, {"openid": openid}, update, upsert=True)
        assert raw is not None  # an upsert returning the document after always has one
        return raw

    # ---- identity

    async def set_identity(self, user: UserDoc, data: IdentityIn) -> UserDoc:
        if user.is_staff:
            raise StaffNoIdentity()
        number = normalize_id_number(data.id_number)
        problem = id_number_problem(number, self.clock.now().date())
        if problem:
            raise InvalidIdNumber(problem, details=[{"loc": ["id_number"], "msg": problem}])
        id_hash = self.cipher.keyed_hash(number)
        if user.identity is not None:
            if user.identity.id_hash == id_hash and user.identity.name == data.name:
                return await self._set_phone(user, data.phone)
            raise IdentityAlreadyVerified()
        if not await self.verifier.verify(data.name, number):
            raise IdentityMismatch()
        identity = {
            "name": data.name,
            "id_cipher": self.cipher.encrypt(number, b"id_number"),
            "id_hash": id_hash,
            "id_masked": mask_id_number(number),
            "phone": data.phone,
            "verifier": self.verifier.name,
            "verified_at": self.clock.now(),
        }
        try:
            doc = await self._update(user.id, {"identity": None}, {"$set": {"identity": identity}})
        except DuplicateKeyError:
            raise IdentityInUse() from None
        if doc is None:
            raise IdentityAlreadyVerified()
        return doc

    async def _set_phone(self, user: UserDoc, phone: str | None) -> UserDoc:
        if phone is None or (user.identity and user.identity.phone == phone):
            return user
        doc = await self._update(user.id, {}, {"$set": {"identity.phone": phone}})
        assert doc is not None
        return doc

    # ---- lawyers

    async def apply_lawyer(self, user: UserDoc, data: LawyerIn) -> UserDoc:
        if user.is_staff:
            raise StaffNotLawyer()
        if user.identity is None:
            raise IdentityRequired()
        if user.lawyer and user.lawyer.status == LawyerStatus.verified:
            raise LawyerAlreadyVerified()
        lawyer = {
            **data.model_dump(),
            "status": LawyerStatus.pending.value,
            "submitted_at": self.clock.now(),
        }
        doc = await self._update(
            user.id,
            {"lawyer.status": {"$ne": LawyerStatus.verified.value}},
            {"$set": {"lawyer": lawyer}},
        )
        if doc is None:
            raise LawyerAlreadyVerified()
        return doc

    async def decide_lawyer(self, admin: UserDoc, user_id: str, data: LawyerDecisionIn) -> UserDoc:
        if not data.approved and not data.reason:
            raise ReasonRequired()
        target = ObjectId(user_id) if ObjectId.is_valid(user_id) else None
        status = LawyerStatus.verified if data.approved else LawyerStatus.rejected
        update: dict[str, Any] = {
            "$set": {
                "lawyer.status": status.value,
                "lawyer.decided_at": self.clock.now(),
                "lawyer.decided_by": str(admin.id),
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
        await self.record(str(admin.id), f"lawyer.{status.value}", user_id, reason=data.reason)
        return doc

    async def _explain_lawyer_miss(self, target: ObjectId | None) -> None:
        raw = await self.users.find_one({"_id": target}, {"lawyer": 1}) if target else None
        if raw is None or not raw.get("lawyer"):
            raise LawyerApplicationNotFound()
        raise LawyerAlreadyDecided()

    # ---- staff

    def _court_scope(self, admin: UserDoc, court_id: str | None) -> str | None:
        """A court admin acts in their own court only; the system admin (no court) in any."""
        if admin.court_id is None:
            return court_id
        if court_id not in (None, admin.court_id):
            raise OtherCourt()
        return admin.court_id

    async def create_staff(self, admin: UserDoc, data: StaffCreate) -> UserDoc:
        court_id = self._court_scope(admin, data.court_id)
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
            "active": True,
            "password_hash": await self.passwords.hash(data.password),
            "created_at": self.clock.now(),
            "created_by": str(admin.id),
        }
        try:
            result = await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise UsernameTaken() from None
        await self.record(str(admin.id), "staff.create", str(result.inserted_id), role=data.role)
        return UserDoc.model_validate({**doc, "_id": result.inserted_id})

    async def list_staff(self, admin: UserDoc, query: StaffQuery) -> Page[UserOut]:
        court_id = self._court_scope(admin, query.court_id)
        filt: dict[str, Any] = (
            {"court_id": court_id}
            if court_id
            else {"court_id": {"$exists": True, "$type": "string"}}
        )
        if query.role:
            filt["role"] = query.role.value
        if query.cursor:
            (last,) = decode_cursor(query.cursor, object_id)
            filt["_id"] = {"$lt": last}
        raws = await self.users.find(filt).sort("_id", -1).limit(query.limit + 1).to_list()
        return self._page(raws, query.limit)

    async def colleagues(self, staff: UserDoc, query: ColleagueQuery) -> Page[ColleagueOut]:
        """The active staff of the caller's own court, newest first (the console's pickers
        for assigning a case or a work order)."""
        if not staff.court_id:
            raise NoCourt()
        filt: dict[str, Any] = {"court_id": staff.court_id, "active": True}
        if query.role:
            filt["role"] = query.role.value
        if query.cursor:
            (last,) = decode_cursor(query.cursor, object_id)
            filt["_id"] = {"$lt": last}
        raws = await self.users.find(filt).sort("_id", -1).limit(query.limit + 1).to_list()
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

    async def list_lawyers(self, query: LawyerQuery) -> Page[UserOut]:
        """Lawyer applications in one status, oldest first (the verification queue)."""
        filt: dict[str, Any] = {"lawyer.status": query.status.value}
        if query.cursor:
            (last,) = decode_cursor(query.cursor, object_id)
            filt["_id"] = {"$gt": last}
        raws = await self.users.find(filt).sort("_id", 1).limit(query.limit + 1).to_list()
        return self._page(raws, query.limit)

    def _page(self, raws: list[dict[str, Any]], limit: int) -> Page[UserOut]:
        docs = [UserDoc.model_validate(r) for r in raws[:limit]]
        more = len(raws) > limit
        return Page[UserOut](
            items=[user_out(d) for d in docs],
            next_cursor=encode_cursor([docs[-1].id]) if more else None,
        )

    async def ensure_admin(self, password: str) -> None:
        """Create user ``admin`` (system administrator) once, from MICROCOURT_ADMIN_PASSWORD."""
        if await self.users.find_one({"username": "admin"}, {"_id": 1}):
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
            await self.users.insert_one(doc)
            log.info("created the first admin user")
        except DuplicateKeyError:
            pass  # another process made it first
