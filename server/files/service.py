"""Uploaded files: typed by their bytes, stored in GridFS (server/files/store.py), readable
only by those granted."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gridfs import AsyncGridOut
from pymongo.asynchronous.client_session import AsyncClientSession

from models.files import EXTENSIONS, FileKind, FileMeta, FileOut, FilePurpose
from models.users import Caller
from server.files.errors import (
    EmptyFile,
    FileNotFound,
    FileNotOwned,
    FileTooLarge,
    UnsupportedFileType,
)
from server.files.store import FileStore, Grant, StoredFile, file_meta
from server.identity.users import UserService
from server.platform.access import Access
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database
from server.platform.ratelimit import RateLimiter

log = logging.getLogger("microcourt.files")

FILENAME_MAX = 100
_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"%PDF-", FileKind.pdf),
    (b"\xff\xd8\xff", FileKind.jpeg),
    (b"\x89PNG\r\n\x1a\n", FileKind.png),
)
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f"*:<>?|\u200b-\u200f\u202a-\u202e\u2066-\u2069]')
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_HASH_OFF_LOOP_BYTES = 1024 * 1024


def sniff(data: bytes) -> FileKind | None:
    """The file's type from its first bytes; the name and declared type are never trusted."""
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def sanitize_filename(name: str, kind: FileKind) -> str:
    """A safe display name: no path, no control or bidi characters, the extension of ``kind``.

    The extension follows the bytes, so a PNG sent as ``scan.pdf`` is kept as ``scan.png``.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]  # some clients send a whole path
    name = " ".join(_UNSAFE_CHARS.sub("_", name).split()).strip(" .")
    stem, ext = name, ""
    if _EXTENSION.search(name):
        stem, ext = name.rsplit(".", 1)
        ext = "." + ext.lower()
    if ext not in EXTENSIONS[kind]:
        ext = EXTENSIONS[kind][0]
    stem = stem.rstrip(" .") or "file"
    return stem[: FILENAME_MAX - len(ext)] + ext


def file_out(meta: FileMeta) -> FileOut:
    return FileOut.model_validate(meta.model_dump())


class FileStanding(StrEnum):
    """How a reader stands to a file: why they may read it."""

    owner = "owner"
    reader = "reader"  # granted by name (a party of the case, a lawyer's client ...)
    court = "court"  # staff of a court the file was granted to


@dataclass(frozen=True, slots=True)
class Download:
    """A file's metadata and the stream of its bytes."""

    meta: FileMeta
    stream: AsyncGridOut


async def _sha256(data: bytes) -> str:
    if len(data) < _HASH_OFF_LOOP_BYTES:
        return hashlib.sha256(data).hexdigest()
    # hashlib releases the GIL on large inputs: a thread keeps the IOLoop free meanwhile.
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


class FileService:
    def __init__(self, db: Database, settings: Settings, users: UserService, clock: Clock) -> None:
        self.gridfs = FileStore(db)
        self.settings = settings
        self.users = users
        self.clock = clock
        self.limiter = RateLimiter.shared(
            db, "uploads", settings.files.uploads_per_minute, 60, clock
        )

    # ---- writing

    def _check_upload(self, data: bytes) -> FileKind:
        if not data:
            raise EmptyFile()
        limit = self.settings.files.max_bytes
        if len(data) > limit:
            raise FileTooLarge(
                f"文件不能超过 {limit / 1024 / 1024:g} MB", details={"max_bytes": limit}
            )
        kind = sniff(data)
        if kind is None:
            raise UnsupportedFileType()
        return kind

    async def upload(
        self, caller: Caller, data: bytes, filename: str, purpose: FilePurpose
    ) -> FileMeta:
        """Store one upload; 429 past the per-user rate, 422 empty, 413 too big, 415 not
        PDF/JPEG/PNG by its bytes."""
        owner_id = str(caller.id)
        await self.limiter.hit(owner_id)
        kind = self._check_upload(data)
        return await self.store(owner_id, data, filename, purpose, kind)

    async def store(
        self,
        owner_id: str,
        data: bytes,
        filename: str,
        purpose: FilePurpose,
        kind: FileKind,
        *,
        court_ids: Sequence[str] = (),
        session: AsyncClientSession | None = None,
    ) -> FileMeta:
        """Store checked bytes: an upload, or a document the court generated (in the
        generating transaction when ``session`` is given)."""
        now = self.clock.now()
        metadata: dict[str, Any] = {
            "owner_id": owner_id,
            "purpose": purpose.value,
            "content_type": kind.value,
            "sha256": await _sha256(data),
            "created_at": now,
            "reader_ids": [],
            "court_ids": list(court_ids),
        }
        name = sanitize_filename(filename, kind)
        if session is None:
            file_id = await self.gridfs.write(name, data, metadata)
        else:
            file_id = await self.gridfs.write_in_transaction(name, data, metadata, now, session)
        log.info("file stored id=%s size=%d type=%s", file_id, len(data), kind.value)
        raw = {"_id": file_id, "length": len(data), "filename": name, "metadata": metadata}
        return file_meta(raw)

    async def grant(
        self,
        file_ids: Sequence[str],
        reader_ids: Sequence[str] = (),
        court_ids: Sequence[str] = (),
        session: AsyncClientSession | None = None,
    ) -> None:
        """Let more users (``reader_ids``) and the staff of more courts read these files.

        Idempotent; ids that name no file are ignored (check them first with ``check_owned``).
        """
        await self.gridfs.grant(file_ids, reader_ids, court_ids, session)

    async def grant_each(self, grants: Sequence[Grant], session: AsyncClientSession) -> None:
        """``grant`` of each ``Grant``, in one write."""
        await self.gridfs.grant_each(grants, session)

    # ---- reading

    async def get_meta(self, file_id: str) -> FileMeta:
        """The file's metadata; NotFound (``file_not_found``) if there is no such file."""
        found = await self.gridfs.find(file_id)
        if found is None:
            raise FileNotFound()
        return found.meta

    async def check_owned(self, owner_id: str, file_ids: Sequence[str]) -> list[FileMeta]:
        """The files, in the order given (duplicates collapsed), if every one exists and
        belongs to ``owner_id``; otherwise ValidationFailed naming each id that does not."""
        unique = list(dict.fromkeys(file_ids))
        found = await self.gridfs.owned_by(owner_id, unique)
        missing = [f for f in unique if f not in found]
        if missing:
            first = {f: i for i, f in reversed(list(enumerate(file_ids)))}
            raise FileNotOwned(
                f"以下文件不存在或不属于你：{'、'.join(m[:24] for m in missing)}",
                details=[
                    {"loc": ["file_ids", first[f]], "msg": "文件不存在或不属于你", "file_id": f}
                    for f in missing
                ],
            )
        return [found[f] for f in unique]

    async def access_file(self, caller: Caller, file_id: str) -> Access[StoredFile, FileStanding]:
        """The file and why the caller may read it: the owner, users granted as readers, and
        staff of a granted court. Anyone else gets the same 404 as for a missing file."""
        found = await self.gridfs.find(file_id)
        standing = _standing(caller, found.meta) if found is not None else None
        if found is None or standing is None:
            raise FileNotFound()
        return Access(found, standing)

    async def download(self, caller: Caller, file_id: str) -> Download:
        """The file's metadata and a stream of its bytes, for someone allowed to read it.
        Reads of another person's file go to the audit log."""
        access = await self.access_file(caller, file_id)
        meta = access.obj.meta
        if access.standing != FileStanding.owner:
            await self.users.record(str(caller.id), "file.read", meta.id, owner_id=meta.owner_id)
        return Download(meta, access.obj.open())


def _standing(caller: Caller, meta: FileMeta) -> FileStanding | None:
    me = str(caller.id)
    if me == meta.owner_id:
        return FileStanding.owner
    if me in meta.reader_ids:
        return FileStanding.reader
    if caller.is_staff and caller.court_id is not None and caller.court_id in meta.court_ids:
        return FileStanding.court
    return None
