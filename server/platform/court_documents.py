"""A court's settings for the documents it generates (``courts[].documents`` in config.yaml),
checked at start-up: its contact, its seal image, how to pay, what to bring to a hearing,
the time for evidence, and its own wording of each document."""

from __future__ import annotations

from pathlib import Path
from string import Formatter

from pydantic import BaseModel, ConfigDict, Field, field_validator

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The placeholders each document's wording may use (server/cases/notices.py fills them in);
# a court's wording naming any other is refused at start-up.
_COMMON_FIELDS = (
    "plaintiffs defendants cause court case_no accepted_on procedure phone contact address"
)
DOCUMENT_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(f"{_COMMON_FIELDS} {extra}".split())
    for kind, extra in {
        "acceptance_notice": "query_code",
        "fee_notice": "fee amount due_on payment breakdown relief",
        "rights_notice": "",
        "evidence_notice": "evidence_days due_on",
        "summons": "party role kind starts_at room online bring",
    }.items()
}


class DocumentWording(_Section):
    """A court's own title and paragraphs for one kind of document ({name} placeholders)."""

    title: str | None = Field(None, min_length=2, max_length=30)
    paragraphs: list[str] | None = Field(None, min_length=1, max_length=40)


class CourtDocuments(_Section):
    """What a court prints on the documents it generates: its contact, its seal, how to pay,
    what to bring to a hearing, the time for evidence, and any wording of its own."""

    address: str = Field("", max_length=100)
    phone: str = Field("12368", min_length=3, max_length=40)
    contact: str = Field("立案庭", min_length=2, max_length=40)
    seal_image: Path | None = None
    payment: str = Field(
        "通过“移动微法院”小程序在线缴纳，或到本院诉讼服务中心缴纳", min_length=4, max_length=200
    )
    hearing_bring: list[str] = Field(
        default_factory=lambda: [
            "本传票",
            "身份证件原件",
            "证据原件及副本",
            "授权委托书（委托代理人出庭的）",
        ],
        min_length=1,
        max_length=10,
    )
    evidence_days: dict[str, int] = Field(
        default_factory=lambda: {"ordinary": 15, "simplified": 10}
    )
    wording: dict[str, DocumentWording] = Field(default_factory=dict)

    @field_validator("seal_image")
    @classmethod
    def _seal(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value if value.is_absolute() else REPO_ROOT / value
        try:
            head = path.read_bytes()[:8]
        except OSError:
            raise ValueError(f"seal image {value} cannot be read") from None
        if not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8")):
            raise ValueError(f"seal image {value} is neither PNG nor JPEG")
        return path

    @field_validator("evidence_days")
    @classmethod
    def _evidence(cls, value: dict[str, int]) -> dict[str, int]:
        if set(value) != {"ordinary", "simplified"}:
            raise ValueError("evidence_days names ordinary and simplified, and only them")
        # 民诉法解释 第99条: at least 15 days at first instance, at most 15 in simplified cases
        if value["ordinary"] < 15 or not 1 <= value["simplified"] <= 15:
            raise ValueError("evidence_days: ordinary at least 15, simplified 1 to 15")
        return value

    @field_validator("wording")
    @classmethod
    def _wording(cls, value: dict[str, DocumentWording]) -> dict[str, DocumentWording]:
        for kind, words in value.items():
            known = DOCUMENT_FIELDS.get(kind)
            if known is None:
                raise ValueError(f"wording.{kind}: no such document")
            for text in [words.title or "", *(words.paragraphs or [])]:
                _check_placeholders(f"wording.{kind}", text, known)
        return value


def _check_placeholders(where: str, text: str, known: frozenset[str]) -> None:
    try:
        names = [name for _, name, spec, conv in Formatter().parse(text) if name is not None]
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    unknown = sorted({n for n in names if n not in known})
    if unknown:
        raise ValueError(f"{where}: unknown placeholder {{{unknown[0]}}}")
