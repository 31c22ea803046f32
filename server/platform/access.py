"""The one convention of object access: ``access_<thing>(caller, id)`` answers the object and
how the caller stands to it, or raises the thing's 404 for anyone who may not see it (never
revealing that another user's object exists)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Access(Generic[T, S]):
    """The object, and the caller's standing towards it (party, agent, staff, sender …)."""

    obj: T
    standing: S
