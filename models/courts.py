"""Courts as the public sees them (the configuration is the source)."""

from __future__ import annotations

from models.common import OutputModel


class CourtOut(OutputModel):
    id: str
    name: str
    code: str
    region: str
    case_types: dict[str, str]


class CourtList(OutputModel):
    items: list[CourtOut]
