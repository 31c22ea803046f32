"""Online filings (网上立案): inputs, stored documents and outputs, kept apart."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from models.common import (
    MAX_AMOUNT_FEN,
    InputModel,
    ObjectIdStr,
    OutputModel,
    PageQuery,
    Procedure,
)
from models.fee_notices import ReliefDecisionIn
from models.fees import FeeKind
from models.users import Phone

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

ElementKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# An element's value: text, a whole number (fen, counts) or yes/no; nothing nested.
ElementValue = (
    Annotated[str, StringConstraints(max_length=5000)]
    | Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
    | StrictBool
    | None
)

# The most a filing can claim: 1e12 yuan. Anything above is a typing error, not a lawsuit.


class FilingStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    correction_requested = "correction_requested"
    accepted = "accepted"
    rejected = "rejected"
    withdrawn = "withdrawn"


PARTY_GROUPS = ("plaintiffs", "defendants", "third_parties")
EDITABLE = (FilingStatus.draft, FilingStatus.correction_requested)


class PartyType(StrEnum):
    person = "person"
    organization = "organization"


class FeeReliefType(StrEnum):
    defer = "defer"  # 缓交
    reduce = "reduce"  # 减交
    waive = "waive"  # 免交


class GreenChannel(StrEnum):
    elderly = "elderly"
    disabled = "disabled"
    migrant_wages = "migrant_wages"
    military = "military"
    minor = "minor"
    enterprise = "enterprise"


# ---- inputs


class PartyIn(InputModel):
    party_id: str | None = Field(
        None, max_length=32, description="keep a stored party (and its ID number) on update"
    )
    type: PartyType = PartyType.person
    name: str = Field(min_length=1, max_length=100)
    id_number: str | None = Field(None, max_length=32)
    credit_code: str | None = Field(None, max_length=32)
    phone: Phone | None = None
    address: str | None = Field(None, max_length=200)
    legal_representative: str | None = Field(None, max_length=50)


class FeeReliefIn(InputModel):
    type: FeeReliefType
    reason: str = Field(min_length=1, max_length=1000)


def _nulls_as_enforced(schema: dict[str, Any]) -> None:
    """The document says ``null`` only where ``_no_nulls`` takes it."""
    for name, prop in schema.get("properties", {}).items():
        if name not in NULLABLE and "anyOf" in prop:
            kept = [s for s in prop.pop("anyOf") if s.get("type") != "null"]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            if prop.get("default", 0) is None:
                del prop["default"]


class FilingFields(InputModel):
    model_config = ConfigDict(json_schema_extra=_nulls_as_enforced)
    """Everything a filer may set; on create and update alike, every field is optional."""

    cause: str | None = Field(None, min_length=1, max_length=100)
    plaintiffs: list[PartyIn] | None = Field(None, max_length=50)
    defendants: list[PartyIn] | None = Field(None, max_length=50)
    third_parties: list[PartyIn] | None = Field(None, max_length=50)
    claims: list[ShortText] | None = Field(None, max_length=30)
    facts: str | None = Field(None, max_length=20_000)
    amount_fen: int | None = Field(None, ge=0, le=MAX_AMOUNT_FEN)
    evidence: list[ObjectIdStr] | None = Field(None, max_length=100)
    power_of_attorney: ObjectIdStr | None = None
    template_id: str | None = Field(None, max_length=60)
    elements: dict[ElementKey, ElementValue] | None = Field(None, max_length=60)
    green_channel: list[GreenChannel] | None = Field(None, max_length=6)
    fee_relief: FeeReliefIn | None = None
    consent_electronic_service: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> FilingFields:
        """Leaving a field out keeps it; ``null`` is only for the fields that may be empty."""
        nulled = [k for k in self.model_fields_set if getattr(self, k) is None]
        refused = sorted(set(nulled) - NULLABLE)
        if refused:
            raise ValueError(f"these fields cannot be null: {', '.join(refused)}")
        return self


NULLABLE = frozenset(
    {"cause", "facts", "amount_fen", "power_of_attorney", "template_id", "fee_relief"}
)


class FilingCreate(FilingFields):
    court_id: str = Field(min_length=2, max_length=40)
    case_kind: str = Field(min_length=2, max_length=40)
    as_agent: bool = False


class FilingUpdate(FilingFields):
    @model_validator(mode="after")
    def _not_empty(self) -> FilingUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        return self


class FilingQuery(PageQuery):
    status: FilingStatus | None = None


class CorrectionIn(InputModel):
    items: list[ShortText] = Field(min_length=1, max_length=30)
    due_days: int = Field(15, ge=1, le=30)


class RejectIn(InputModel):
    reason: str = Field(min_length=2, max_length=1000)


class AcceptIn(InputModel):
    procedure: Procedure = Procedure.ordinary
    fee_kind: FeeKind | None = Field(
        None, description="the fee schedule's row; by default from the case kind and cause"
    )
    fee_relief: ReliefDecisionIn | None = Field(
        None, description="the decision on the filer's fee-relief request (司法救助)"
    )


# ---- stored


class PartyDoc(BaseModel):
    party_id: str
    type: PartyType
    name: str
    id_cipher: bytes | None = None
    id_hash: str | None = None
    id_masked: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    legal_representative: str | None = None
    user_id: str | None = None


class DecisionDoc(BaseModel):
    action: str
    by: str
    at: dt.datetime
    reason: str | None = None
    items: list[str] | None = None
    procedure: Procedure | None = None


class CorrectionDoc(BaseModel):
    items: list[str]
    due_at: dt.datetime
    requested_by: str
    requested_at: dt.datetime


class FilingDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    court_id: str
    case_kind: str
    filer_id: str
    as_agent: bool = False
    status: FilingStatus
    version: int = 1
    cause: str | None = None
    plaintiffs: list[PartyDoc] = Field(default_factory=list)
    defendants: list[PartyDoc] = Field(default_factory=list)
    third_parties: list[PartyDoc] = Field(default_factory=list)
    claims: list[str] = Field(default_factory=list)
    facts: str | None = None
    amount_fen: int | None = None
    evidence: list[str] = Field(default_factory=list)
    power_of_attorney: str | None = None
    template_id: str | None = None
    elements: dict[str, Any] = Field(default_factory=dict)
    green_channel: list[GreenChannel] = Field(default_factory=list)
    green: bool = False
    fee_relief: FeeReliefIn | None = None
    consent_electronic_service: bool = False
    party_hashes: list[str] = Field(default_factory=list)
    submitted_at: dt.datetime | None = None
    review_deadline: dt.datetime | None = None
    deadline_flag: str | None = None
    correction: CorrectionDoc | None = None
    decisions: list[DecisionDoc] = Field(default_factory=list)
    case_id: str | None = None
    case_no: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


# ---- outputs


class PartyOut(OutputModel):
    party_id: str
    type: PartyType
    name: str
    id_number_masked: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    legal_representative: str | None = None


class FilingOut(OutputModel):
    id: str
    court_id: str
    case_kind: str
    status: FilingStatus
    as_agent: bool
    cause: str | None
    plaintiffs: list[PartyOut]
    defendants: list[PartyOut]
    third_parties: list[PartyOut]
    claims: list[str]
    facts: str | None
    amount_fen: int | None
    evidence: list[str]
    power_of_attorney: str | None
    template_id: str | None
    elements: dict[str, Any]
    green_channel: list[GreenChannel]
    fee_relief: FeeReliefIn | None
    consent_electronic_service: bool
    submitted_at: dt.datetime | None
    review_deadline: dt.datetime | None
    correction: CorrectionDoc | None
    decisions: list[DecisionDoc]
    case_id: str | None
    case_no: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FilingSummary(OutputModel):
    id: str
    court_id: str
    case_kind: str
    cause: str | None
    status: FilingStatus
    plaintiff_names: list[str]
    defendant_names: list[str]
    submitted_at: dt.datetime | None
    review_deadline: dt.datetime | None
    case_no: str | None
    updated_at: dt.datetime


class ReviewItem(FilingSummary):
    green_channel: list[GreenChannel]
    working_days_left: int
    overdue: bool
    deadline_flag: str | None


class AcceptOut(OutputModel):
    case_id: str
    case_no: str
    filing: FilingOut
