"""The only module that reads and writes the GridFS bucket ``files`` (``files.files`` and
``files.chunks``).

Everything about a file lives in its ``files.files`` document (its ``metadata`` holds the owner,
purpose, sniffed type, sha256 and the access list), so an upload is one GridFS write: the chunks
first, the files document last, and an upload that fails leaves nothing visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bson import ObjectId
from gridfs import AsyncGridFSBucket, AsyncGridOut
from pymongo import UpdateMany
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from models.files import FileMeta
from server.platform.db import Database

BUCKET = "files"
CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size


class Grant(NamedTuple):
    """Files, and the users (``reader_ids``) and courts' staff (``court_ids``) who may now
    read them (``FileService.grant_each``)."""

    file_ids: Sequence[str]
    reader_ids: Sequence[str] = ()
    court_ids: Sequence[str] = ()


def grant_update(reader_ids: Sequence[str] = (), court_ids: Sequence[str] = ()) -> dict[str, Any]:
    """``FileService.grant``'s update of the files' metadata; empty if nothing is added."""
    add: dict[str, Any] = {}
    if reader_ids:
        add["metadata.reader_ids"] = {"$each": list(dict.fromkeys(reader_ids))}
    if court_ids:
        add["metadata.court_ids"] = {"$each": list(dict.fromkeys(court_ids))}
    return {"$addToSet": add} if add else {}


def object_ids(file_ids: Sequence[str]) -> list[ObjectId]:
    """The valid ids among ``file_ids``, duplicates collapsed; the others name no file."""
    return [ObjectId(f) for f in dict.fromkeys(file_ids) if ObjectId.is_valid(f)]


def file_meta(raw: dict[str, Any]) -> FileMeta:
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


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as found: its metadata, and the means to stream its bytes without reading its
    files document again."""

    meta: FileMeta
    _raw: dict[str, Any]
    _root: AsyncCollection[dict[str, Any]]

    def open(self) -> AsyncGridOut:
        return AsyncGridOut(self._root, file_document=self._raw)


class FileStore:
    def __init__(self, db: Database) -> None:
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        self._files = db[f"{BUCKET}.files"]
        self._root = db[BUCKET]  # GridFS names ".files" and ".chunks" after it

    async def write(self, name: str, data: bytes, metadata: dict[str, Any]) -> ObjectId:
        return await self.bucket.upload_from_stream(name, data, metadata=metadata)

    async def write_in_transaction(
        self,
        name: str,
        data: bytes,
        metadata: dict[str, Any],
        now: dt.datetime,
        session: AsyncClientSession,
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
        await self._files.insert_one(
            {
                "_id": file_id,
                "length": len(data),
                "chunkSize": CHUNK_BYTES,
                "uploadDate": now,
                "filename": name,
                "metadata": metadata,
            },
            session=session,
        )
        return file_id

    async def grant(
        self,
        file_ids: Sequence[str],
        reader_ids: Sequence[str],
        court_ids: Sequence[str],
        session: AsyncClientSession | None,
    ) -> None:
        await self.grant_each([Grant(file_ids, reader_ids, court_ids)], session)

    async def grant_each(self, grants: Sequence[Grant], session: AsyncClientSession | None) -> None:
        """``grant`` of each ``Grant``, in one bulk write."""
        ops = [
            UpdateMany({"_id": {"$in": oids}}, update)
            for g in grants
            if (oids := object_ids(g.file_ids))
            and (update := grant_update(g.reader_ids, g.court_ids))
        ]
        if ops:
            await self._files.bulk_write(ops, ordered=False, session=session)

    async def find(self, file_id: str) -> StoredFile | None:
        """The file, or None when there is none (or only a half-written upload)."""
        raw = (
            await self._files.find_one({"_id": ObjectId(file_id)})
            if ObjectId.is_valid(file_id)
            else None
        )
        if raw is None or not raw.get("metadata"):
            return None
        return StoredFile(file_meta(raw), raw, self._root)

    async def owned_by(self, owner_id: str, file_ids: Sequence[str]) -> dict[str, FileMeta]:
        """Those of the files that exist and belong to ``owner_id``, by id."""
        oids = object_ids(file_ids)
        found: dict[str, FileMeta] = {}
        if oids:
            query = {"_id": {"$in": oids}, "metadata.owner_id": owner_id}
            async for raw in self._files.find(query):
                found[str(raw["_id"])] = file_meta(raw)
        return found
