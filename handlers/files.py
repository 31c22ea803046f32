"""Uploads (multipart) and downloads of evidence and other documents."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from tornado import httputil, web

from handlers.base import OBJECT_ID, APIHandler, api, authenticated, idempotent
from models.files import FileOut, FileUploadForm
from server.files.errors import FileMissing, FileTooLarge, MultipartRequired, TooManyFiles
from server.files.service import file_out
from server.platform.config import UPLOAD_OVERHEAD_BYTES
from server.platform.errors import BadRequest


@dataclass
class _Part:
    data: bytes
    filename: str


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266/5987)."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isalnum() or c in "._-" else "_" for c in folded)
    stem, dot, ext = fallback.rpartition(".")
    if not stem.strip("_") and dot:
        fallback = f"file.{ext}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@web.stream_request_body
class FilesHandler(APIHandler):
    """Streamed, so that the caller is authenticated and the upload's type and size checked
    before its body is read, let alone parsed."""

    accepts_multipart = True
    _received: bytearray

    async def prepare(self) -> None:  # type: ignore[override]  # Tornado awaits either
        self._received = bytearray()
        await self.authenticate()
        if not self.is_multipart:
            raise MultipartRequired()
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self._max_body():
            raise self._too_large()

    def _max_body(self) -> int:
        return self.services.settings.files.max_bytes + UPLOAD_OVERHEAD_BYTES

    def _too_large(self) -> FileTooLarge:
        limit = self.services.settings.files.max_bytes
        return FileTooLarge(
            f"文件不能超过 {limit / 1024 / 1024:g} MB", details={"max_bytes": limit}
        )

    def data_received(self, chunk: bytes) -> None:
        if len(self._received) <= self._max_body():  # past it, only counted: refused in post
            self._received += chunk

    def received_body(self) -> bytes:
        return bytes(self._received)

    def _parse_upload(self) -> None:
        """The multipart body, parsed once the caller and its headers passed."""
        self.request.body = bytes(self._received)
        try:
            httputil.parse_body_arguments(
                self.request.headers.get("Content-Type", ""),
                self.request.body,
                self.request.body_arguments,
                self.request.files,
                self.request.headers,
            )
        except httputil.HTTPInputError:
            raise BadRequest("请求格式有误") from None

    @authenticated
    @idempotent
    @api(form=FileUploadForm, response=FileOut, status=201)
    async def post(self) -> None:
        """POST /api/v1/files: upload one PDF, JPEG or PNG (multipart part ``file``).

        201 stored, typed by its bytes; 413 over ``files.max_bytes``; 415 not multipart, or
        not PDF/JPEG/PNG by content (whatever its name says); 422 no ``file`` part, an empty
        file, or a bad ``purpose``; 429 too many uploads; 401 not signed in.
        """
        self._parse_upload()
        part = self._file_part()
        fields = {
            k: v[-1].decode("utf-8", "replace")
            for k, v in self.request.body_arguments.items()
            if k != "file"
        }
        form = self._validate(FileUploadForm, fields)
        meta = await self.services.files.upload(self.caller, part.data, part.filename, form.purpose)
        self.write_json(file_out(meta), status=201)

    def _file_part(self) -> _Part:
        if not self.is_multipart:
            raise MultipartRequired()
        if len(self.request.body) > self._max_body():
            raise self._too_large()
        files = self.request.files.get("file", [])
        bare = self.request.body_arguments.get("file", [])  # a part sent without a file name
        parts = [_Part(f.body, f.filename) for f in files] + [_Part(b, "") for b in bare]
        if len(parts) != 1:
            raise (TooManyFiles if parts else FileMissing).at(["file"])
        return parts[0]


class FileHandler(APIHandler):
    @authenticated
    async def get(self, file_id: str) -> None:
        """GET /api/v1/files/{file_id}: the file's bytes, as an attachment.

        200 for the owner, granted readers and staff of a granted court (reads of another
        person's file are audited); 404 for everyone else and for unknown ids; 401.
        """
        download = await self.services.files.download(self.caller, file_id)
        meta, stream = download.meta, download.stream
        self.set_header("Content-Type", meta.content_type.value)
        self.set_header("Content-Length", str(meta.size))
        self.set_header("Content-Disposition", content_disposition(meta.filename))
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        while chunk := await stream.readchunk():
            self.write(chunk)
            await self.flush()
        self.finish()


default_handlers = [
    (r"/api/v1/files", FilesHandler),
    (rf"/api/v1/files/(?P<file_id>{OBJECT_ID})", FileHandler),
]
