"""Users, identities, lawyers and staff: inputs, stored documents and outputs, kept apart."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, TypeAlias

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

from models.common import InputModel, OutputModel, PageQuery


class Role(StrEnum):
    litigant = "litigant"
    lawyer = "lawyer"
    clerk = "clerk"
    judge = "judge"
    admin = "admin"


STAFF_ROLES = frozenset({Role.clerk, Role.judge, Role.admin})
PUBLIC_ROLES = frozenset({Role.litigant, Role.lawyer})


class LawyerStatus(StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


PersonName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=2,
        max_length=30,
        pattern=r"^[\u4e00-\u9fffA-Za-z·•. ]+$",
    ),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^1[3-9]\d{9}$")]
Password = Annotated[str, StringConstraints(min_length=10, max_length=128)]
TeamPhone = Annotated[str, StringConstraints(pattern=r"^[0-9-]{5,20}$")]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_.-]{2,31}$")
]


# ---- inputs


class WxLoginIn(InputModel):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")


class StaffLoginIn(InputModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class IdentityStatus(StrEnum):
    pending = "pending"  # claimed, awaiting WeChat's face verification: grants nothing
    verified = "verified"


class IdentityIn(InputModel):
    name: PersonName
    id_number: str = Field(min_length=1, max_length=32)
    phone: Phone | None = Field(None, description="typed by the user: recorded unverified")
    phone_code: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="the getPhoneNumber button's code: the number WeChat gives is verified",
    )


class FaceVerifyIn(InputModel):
    verify_result: str = Field(
        min_length=1,
        max_length=512,
        description="res.verifyResult of wx.startFacialRecognitionVerify",
    )


class LawyerIn(InputModel):
    license_no: str = Field(pattern=r"^\d{17}$", description="律师执业证号, 17 digits")
    firm: str = Field(min_length=2, max_length=80)


class LawyerDecisionIn(InputModel):
    approved: bool = True
    reason: str | None = Field(None, max_length=500)


class StaffCreate(InputModel):
    username: Username
    password: Password
    name: PersonName
    role: Role
    court_id: str = Field(min_length=2, max_length=40)
    supervisor: StrictBool = Field(
        False, description="督办: sees and reassigns the court's work orders, hears when overdue"
    )
    division_head: StrictBool = Field(
        False, description="庭长: a supervisor who also hears of orders overdue twice over"
    )
    # 1+N (issue 15): desk staff open orders for callers; a judge's team line (N号码)
    service_desk: StrictBool = Field(
        False, description="服务台: opens work orders for 12368, service-line, counter, letter"
    )
    team_phone: TeamPhone | None = Field(None, description="a judge's team number (N号码)")


class StaffUpdate(InputModel):
    """What an admin changes on a staff account; the fields sent change, the others stay."""

    name: PersonName | None = None
    active: StrictBool | None = Field(
        None, description="false: 停用 (every session ends, sign-in refused); true: 启用"
    )
    supervisor: StrictBool | None = None
    division_head: StrictBool | None = None
    service_desk: StrictBool | None = None
    team_phone: TeamPhone | None = Field(None, description="a judge's team number; null clears it")
    password: Password | None = Field(None, description="a new password: every session ends")

    @model_validator(mode="after")
    def something_changes(self) -> StaffUpdate:
        if not self.changes():
            raise ValueError("请至少修改一项")
        return self

    def changes(self) -> dict[str, object]:
        """The fields to set: those sent, a null meaning "unchanged" but for ``team_phone``."""
        return {
            k: getattr(self, k)
            for k in sorted(self.model_fields_set)
            if getattr(self, k) is not None or k == "team_phone"
        }


class PhoneCodeIn(InputModel):
    """The code of the mini-program's getPhoneNumber button."""

    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")


class StaffQuery(PageQuery):
    court_id: str | None = Field(None, max_length=40)
    role: Role | None = None


class ColleagueQuery(PageQuery):
    role: Role | None = Field(None, description="judge or clerk (assignment pickers)")


class LawyerQuery(PageQuery):
    status: LawyerStatus = LawyerStatus.pending


# ---- stored documents


class IdentityDoc(BaseModel):
    name: str
    id_cipher: bytes
    id_hash: str
    id_masked: str
    phone: str | None = None
    phone_verified: bool = False
    verifier: str
    verified_at: dt.datetime


class IdentityClaimDoc(BaseModel):
    """A real-name identity claimed but not yet confirmed by face verification."""

    name: str
    id_cipher: bytes
    id_hash: str
    id_masked: str
    phone: str | None = None
    phone_verified: bool = False
    claimed_at: dt.datetime
    expires_at: dt.datetime


class LawyerDoc(BaseModel):
    license_no: str
    firm: str
    status: LawyerStatus
    submitted_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    reason: str | None = None


class UserDoc(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    id: ObjectId = Field(alias="_id")
    role: Role
    active: bool = True
    openid: str | None = None
    username: str | None = None
    password_hash: str | None = None
    name: str | None = None
    court_id: str | None = None
    supervisor: bool = False
    division_head: bool = False
    service_desk: bool = False  # 1+N: opens work orders for callers
    team_phone: str | None = None  # 1+N: a judge's team number (N号码)
    session_epoch: int = 0  # a token of an earlier epoch is refused (password reset, 停用)
    verified_phone: str | None = None  # from getPhoneNumber: sees the desk's orders for it
    identity: IdentityDoc | None = None
    identity_claim: IdentityClaimDoc | None = None
    lawyer: LawyerDoc | None = None
    created_at: dt.datetime

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def oversees(self) -> bool:
        """Supervises work orders: a supervisor or division head, or an admin."""
        return self.is_staff and (self.supervisor or self.division_head or self.role == Role.admin)


#: The one type by which a service knows who calls it: the signed-in user, as the handler
#: resolved it (``APIHandler.caller``). Every service method acting for someone takes it first,
#: named ``caller``.
Caller: TypeAlias = UserDoc


# ---- outputs


class IdentityOut(OutputModel):
    status: IdentityStatus = IdentityStatus.verified
    name: str
    id_number_masked: str = Field(examples=["110***********1234"])
    phone_masked: str | None = Field(None, examples=["138****5678"])
    phone_verified: bool = False
    verified_at: dt.datetime | None = None
    expires_at: dt.datetime | None = Field(
        None, description="pending only: face verification must pass before this"
    )


class FaceStartOut(OutputModel):
    """What the page passes to wx.startFacialRecognitionVerify."""

    api: str = "wx.startFacialRecognitionVerify"
    name: str
    check_alive_type: int = Field(2, description="WeChat's liveness check: 2 read digits aloud")


class IdentityClaimOut(OutputModel):
    """PUT /me/identity's 202: the claim, and what the page needs to start verification."""

    status: IdentityStatus = IdentityStatus.pending
    identity: IdentityOut
    face_verify: FaceStartOut | None = None
    verify_path: str = "/api/v1/me/identity/verify"


class LawyerOut(OutputModel):
    license_no: str
    firm: str
    status: LawyerStatus
    reason: str | None = None


class UserOut(OutputModel):
    id: str
    role: Role
    active: bool = True
    name: str | None = None
    username: str | None = None
    court_id: str | None = None
    supervisor: bool = False
    division_head: bool = False
    service_desk: bool = False
    team_phone: str | None = None
    phone_masked: str | None = Field(None, description="the phone number WeChat verified")
    identity: IdentityOut | None = None
    lawyer: LawyerOut | None = None
    created_at: dt.datetime


class TokenOut(OutputModel):
    token: str
    expires_at: dt.datetime
    user: UserOut


class ColleagueOut(OutputModel):
    """A member of the caller's court, as assignment pickers show them (no username)."""

    id: str
    role: Role
    name: str | None = None
    supervisor: bool = False
    division_head: bool = False
