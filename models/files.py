"""Uploaded files: the upload form, the stored metadata (in GridFS) and the output."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field

from models.common import InputModel, OutputModel


class FilePurpose(StrEnum):
    evidence = "evidence"
    power_of_attorney = "power_of_attorney"
    identity = "identity"
    other = "other"


class FileKind(StrEnum):
    """The only types accepted, as sniffed from the bytes (never from the name)."""

    pdf = "application/pdf"
    jpeg = "image/jpeg"
    png = "image/png"


EXTENSIONS: dict[FileKind, tuple[str, ...]] = {
    FileKind.pdf: (".pdf",),
    FileKind.jpeg: (".jpg", ".jpeg"),
    FileKind.png: (".png",),
}


# ---- inputs


class FileUploadForm(InputModel):
    """The form fields sent beside the ``file`` part of ``multipart/form-data``."""

    purpose: FilePurpose = FilePurpose.evidence


# ---- stored


class FileMeta(BaseModel):
    """One stored file: the GridFS ``files.files`` document with its ``metadata`` flattened.

    Who may read it: the owner, every user in ``reader_ids``, and the staff of every court in
    ``court_ids`` (both grown by ``FileService.grant`` as filings and cases link the file).
    """

    id: str
    owner_id: str
    purpose: FilePurpose
    content_type: FileKind
    size: int
    sha256: str
    filename: str
    created_at: dt.datetime
    reader_ids: list[str] = Field(default_factory=list)
    court_ids: list[str] = Field(default_factory=list)


# ---- outputs


class FileOut(OutputModel):
    id: str = Field(examples=["6650a1b2c3d4e5f601234567"])
    content_type: FileKind
    size: int = Field(description="bytes")
    sha256: str = Field(description="hex digest of the bytes as stored")
    filename: str = Field(examples=["借条.pdf"])
    purpose: FilePurpose
    created_at: dt.datetime
