"""Uploaded files: typed by their bytes, stored in GridFS, readable only by those granted.

Everything about a file lives in its GridFS ``files.files`` document (its ``metadata`` holds the
owner, purpose, sniffed type, sha256 and the access list), so an upload is one GridFS write:
the chunks first, the files document last, and an upload that fails leaves nothing visible.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket, AsyncGridOut
from pymongo.asynchronous.client_session import AsyncClientSession

from models.files import EXTENSIONS, FileKind, FileMeta, FileOut, FilePurpose
from server.files.errors import (
    EmptyFile,
    FileNotFound,
    FileNotOwned,
    FileTooLarge,
    UnsupportedFileType,
)
from server.identity.auth import Principal
from server.identity.users import UserService
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database
from server.platform.ratelimit import RateLimiter

log = logging.getLogger("microcourt.files")

BUCKET = "files"
CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size
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


def grant_update(reader_ids: Sequence[str] = (), court_ids: Sequence[str] = ()) -> dict[str, Any]:
    """``FileService.grant``'s update of the files' metadata; empty if nothing is added."""
    add: dict[str, Any] = {}
    if reader_ids:
        add["metadata.reader_ids"] = {"$each": list(dict.fromkeys(reader_ids))}
    if court_ids:
        add["metadata.court_ids"] = {"$each": list(dict.fromkeys(court_ids))}
    return {"$addToSet": add} if add else {}


def _object_ids(file_ids: Sequence[str]) -> list[ObjectId]:
    return [ObjectId(f) for f in dict.fromkeys(file_ids) if ObjectId.is_valid(f)]


def _meta(raw: dict[str, Any]) -> FileMeta:
    info = raw.get("metadata") or {}
    return FileMeta(
        id=str(raw["_id"]),
        owner_id=info["owner_id"],
        purpose=info["purpose"],
        content_type=info["content_type"],
        size=raw["length"],
        sha256=info["sha256"],
        filename=raw["filename"],
        created_at=info["created_at"],
        reader_ids=info.get("reader_ids", []),
        court_ids=info.get("court_ids", []),
    )


async def _sha256(data: bytes) -> str:
    if len(data) < _HASH_OFF_LOOP_BYTES:
        return hashlib.sha256(data).hexdigest()
    # hashlib releases the GIL on large inputs: a thread keeps the IOLoop free meanwhile.
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


class FileService:
    def __init__(self, db: Database, settings: Settings, users: UserService, clock: Clock) -> None:
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        self.files = db[f"{BUCKET}.files"]
        self._root = db[BUCKET]  # GridFS names ".files" and ".chunks" after it
        self.settings = settings
        self.users = users
        self.clock = clock
        self.limiter = RateLimiter(settings.files.uploads_per_minute, 60)

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
        self, owner_id: str, data: bytes, filename: str, purpose: FilePurpose
    ) -> FileMeta:
        """Store one upload; 429 past the per-user rate, 422 empty, 413 too big, 415 not
        PDF/JPEG/PNG by its bytes."""
        self.limiter.hit(owner_id)
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
        metadata: dict[str, Any] = {
            "owner_id": owner_id,
            "purpose": purpose.value,
            "content_type": kind.value,
            "sha256": await _sha256(data),
            "created_at": self.clock.now(),
            "reader_ids": [],
            "court_ids": list(court_ids),
        }
        name = sanitize_filename(filename, kind)
        if session is None:
            file_id = await self.bucket.upload_from_stream(name, data, metadata=metadata)
        else:
            file_id = await self._write_in_transaction(name, data, metadata, session)
        log.info("file stored id=%s size=%d type=%s", file_id, len(data), kind.value)
        return _meta({"_id": file_id, "length": len(data), "filename": name, "metadata": metadata})

    async def _write_in_transaction(
        self, name: str, data: bytes, metadata: dict[str, Any], session: AsyncClientSession
    ) -> ObjectId:
        """The GridFS documents written by hand: PyMongo's GridFS refuses transactions, and a
        generated notice must commit with the decision that made it. Same layout as GridFS
        (chunks of ``CHUNK_BYTES``, then the files document), so the bucket reads it back."""
        file_id = ObjectId()
        chunks = [
            {"_id": ObjectId(), "files_id": file_id, "n": n, "data": data[i : i + CHUNK_BYTES]}
            for n, i in enumerate(range(0, len(data), CHUNK_BYTES))
        ]
        await self._root.chunks.insert_many(chunks, session=session)
        await self.files.insert_one(
            {"_id": file_id, "length": len(data), "chunkSize": CHUNK_BYTES,
             "uploadDate": self.clock.now(), "filename": name, "metadata": metadata},
            session=session,
        )  # fmt: skip
        return file_id

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
        oids = _object_ids(file_ids)
        update = grant_update(reader_ids, court_ids)
        if oids and update:
            await self.files.update_many({"_id": {"$in": oids}}, update, session=session)

    # ---- reading

    async def get_meta(self, file_id: str) -> FileMeta:
        """The file's metadata; NotFound (``file_not_found``) if there is no such file."""
        raw = await self._find(file_id)
        return _meta(raw)

    async def _find(self, file_id: str) -> dict[str, Any]:
        raw = (
            await self.files.find_one({"_id": ObjectId(file_id)})
            if ObjectId.is_valid(file_id)
            else None
        )
        if raw is None or not raw.get("metadata"):
            raise FileNotFound()
        return raw

    async def check_owned(self, owner_id: str, file_ids: Sequence[str]) -> list[FileMeta]:
        """The files, in the order given (duplicates collapsed), if every one exists and
        belongs to ``owner_id``; otherwise ValidationFailed naming each id that does not."""
        unique = list(dict.fromkeys(file_ids))
        oids = _object_ids(unique)
        found: dict[str, FileMeta] = {}
        if oids:
            query = {"_id": {"$in": oids}, "metadata.owner_id": owner_id}
            async for raw in self.files.find(query):
                found[str(raw["_id"])] = _meta(raw)
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

    async def can_read(self, principal: Principal, meta: FileMeta) -> bool:
        """The owner, users granted as readers, and staff of a granted court."""
        if principal.id == meta.owner_id or principal.id in meta.reader_ids:
            return True
        user = principal.user
        return user.is_staff and user.court_id is not None and user.court_id in meta.court_ids

    async def open_for(self, principal: Principal, file_id: str) -> tuple[FileMeta, AsyncGridOut]:
        """The file's metadata and a stream of its bytes, for someone allowed to read it.

        Anyone else gets the same NotFound as for a missing file. Reads of another person's
        file go to the audit log.
        """
        raw = await self._find(file_id)
        meta = _meta(raw)
        if not await self.can_read(principal, meta):
            raise FileNotFound()
        if principal.id != meta.owner_id:
            await self.users.record(principal.id, "file.read", meta.id, owner_id=meta.owner_id)
        return meta, AsyncGridOut(self._root, file_document=raw)
