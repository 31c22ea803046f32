"""Element-style complaint forms (要素式起诉状): a template is a list of typed elements."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from models.common import OutputModel


class ElementType(StrEnum):
    text = "text"
    textarea = "textarea"
    amount_fen = "amount_fen"
    date = "date"
    integer = "integer"
    boolean = "boolean"
    choice = "choice"


TEXT_TYPES = frozenset({ElementType.text, ElementType.textarea})
DEFAULT_MAX_LENGTH = {ElementType.text: 200, ElementType.textarea: 2000}


class Element(OutputModel):
    """One field of the form. Amounts are integers of fen; dates are ``YYYY-MM-DD``."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")
    label: str = Field(min_length=1, max_length=40)
    type: ElementType
    required: bool = False
    section: str = Field("事实与理由", description="the heading the form groups it under")
    choices: list[str] | None = None
    max_length: int | None = Field(None, gt=0)
    min: int | None = None
    max: int | None = None
    not_future: bool = Field(False, description="dates: may not be later than today")
    help: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Element:
        if (self.type == ElementType.choice) != bool(self.choices):
            raise ValueError(f"{self.key}: choices go with type choice, and only with it")
        if self.max_length is not None and self.type not in TEXT_TYPES:
            raise ValueError(f"{self.key}: max_length is for text elements")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.key}: min above max")
        return self

    @property
    def length_limit(self) -> int | None:
        return self.max_length or DEFAULT_MAX_LENGTH.get(self.type)


class TemplateSummary(OutputModel):
    id: str = Field(examples=["private-lending"])
    name: str = Field(examples=["民间借贷纠纷起诉状（要素式）"])
    cause: str = Field(examples=["民间借贷纠纷"], description="案由")
    case_kind: str = Field(examples=["civil"])
    description: str


class Template(TemplateSummary):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9-]{2,60}$", examples=["private-lending"])
    elements: list[Element] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Template:
        keys = [e.key for e in self.elements]
        if len(keys) != len(set(keys)):
            raise ValueError(f"template {self.id}: element keys must be unique")
        return self

    def element(self, key: str) -> Element | None:
        return next((e for e in self.elements if e.key == key), None)


class TemplateList(OutputModel):
    items: list[TemplateSummary]
