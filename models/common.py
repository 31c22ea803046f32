"""Shapes shared by every resource."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

ObjectIdStr = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")]
MAX_AMOUNT_FEN = 100_000_000_000_000  # a trillion yuan: more than any claim, less than 2**53


class Procedure(StrEnum):
    ordinary = "ordinary"
    simplified = "simplified"


class InputModel(BaseModel):
    """Base of every request body: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(OutputModel):
    code: str = Field(examples=["filing_not_found"])
    message: str = Field(examples=["立案申请不存在"])
    details: Any = None


class ErrorOut(OutputModel):
    error: ErrorBody


class Page(OutputModel, Generic[T]):
    """A page of a cursor-paged list; pass ``next_cursor`` back as ``?cursor=``."""

    items: list[T]
    next_cursor: str | None = None


class PageQuery(InputModel):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)
