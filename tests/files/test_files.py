"""Uploads and downloads: typed by their bytes, size-limited, readable only by those granted."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest

from handlers.files import content_disposition
from miniapp_stubs.client import MiniProgram, multipart
from models.files import FileKind
from server.app import Services
from server.files.service import sanitize_filename, sniff
from server.platform.clock import FixedClock
from server.platform.errors import NotFound, ValidationFailed
from server.platform.ratelimit import RateLimiter
from tests.factories import Litigant, Staff

PDF = b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\ntrailer <<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(200) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(120)
LIES = {
    "html": b"<!DOCTYPE html><html><script>alert(1)</script></html>",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64),
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(32),
    "exe": b"MZ\x90\x00\x03\x00\x00\x00" + bytes(64),
    "pdf-late": b" %PDF-1.7 not at the start",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def stored_count(services: Services) -> tuple[int, int]:
    files = await services.db["files.files"].count_documents({})
    chunks = await services.db["files.chunks"].count_documents({})
    return files, chunks


@pytest.mark.gen_test
async def test_pdf_jpeg_and_png_are_stored_with_hash_size_and_type(
    litigant: Litigant, services: Services, clock: FixedClock
) -> None:
    mp = await litigant()
    for data, name, kind, purpose in [
        (PDF, "起诉状.pdf", "application/pdf", "evidence"),
        (JPEG, "photo.JPG", "image/jpeg", "identity"),
        (PNG, "委托书.png", "image/png", "power_of_attorney"),
    ]:
        res = await mp.upload(data, name, purpose)
        assert res.status == 201, res.body
        body = res.body
        assert set(body) == {
            "id",
            "content_type",
            "size",
            "sha256",
            "filename",
            "purpose",
            "created_at",
        }
        assert (body["content_type"], body["size"], body["sha256"]) == (kind, len(data), sha(data))
        assert body["purpose"] == purpose
        assert body["created_at"].startswith(clock.now().isoformat()[:19])
        meta = await services.files.get_meta(body["id"])
        assert meta.owner_id == mp.user["id"] and meta.reader_ids == [] and meta.court_ids == []
    assert (await mp.upload(PDF, "a.pdf")).body["filename"] == "a.pdf"
    assert (await mp.upload(JPEG, "photo.JPG")).body["filename"] == "photo.jpg"


@pytest.mark.gen_test
async def test_type_comes_from_the_bytes_not_the_name_or_declared_type(
    litigant: Litigant,
) -> None:
    mp = await litigant()
    res = await mp.upload(PNG, "scan.pdf", part_type="application/pdf")
    assert res.status == 201
    assert res.body["content_type"] == "image/png"
    assert res.body["filename"] == "scan.png"  # the name follows the bytes too
    res = await mp.upload(PDF, "noextension", part_type="image/png")
    assert (res.body["content_type"], res.body["filename"]) == (
        "application/pdf",
        "noextension.pdf",
    )


@pytest.mark.gen_test
async def test_other_types_are_refused_whatever_their_name(
    litigant: Litigant, services: Services
) -> None:
    mp = await litigant()
    for kind, data in LIES.items():
        res = await mp.upload(data, "x.pdf", part_type="application/pdf")
        assert (res.status, res.error_code) == (415, "unsupported_file_type"), kind
        assert "PDF" in res.body["error"]["message"] and "仅支持" in res.body["error"]["message"]
    assert await stored_count(services) == (0, 0)


@pytest.mark.gen_test
async def test_bad_upload_requests(litigant: Litigant, services: Services) -> None:
    mp = await litigant()
    empty = await mp.upload(b"", "empty.pdf")
    assert (empty.status, empty.error_code) == (422, "empty_file")
    body, ctype = multipart({"purpose": "evidence"}, "attachment", "a.pdf", PDF)
    res = await mp.post("/api/v1/files", raw=body, headers={"Content-Type": ctype})
    assert (res.status, res.error_code) == (422, "file_missing")
    assert res.body["error"]["details"] == [{"loc": ["file"], "msg": "请选择要上传的文件"}]
    bad_purpose = await mp.upload(PDF, "a.pdf", "selfie")
    assert (bad_purpose.status, bad_purpose.error_code) == (422, "validation_failed")
    assert [d["loc"] for d in bad_purpose.body["error"]["details"]] == [["purpose"]]
    json_body = await mp.post("/api/v1/files", {"file": "JVBERi0="})
    assert (json_body.status, json_body.error_code) == (415, "multipart_required")
    raw = await mp.post("/api/v1/files", raw=PDF, headers={"Content-Type": "application/pdf"})
    assert (raw.status, raw.error_code) == (415, "multipart_required")
    for ctype in ("multipart/form-data", "multipart/form-data; boundary=xyz"):
        broken = await mp.post("/api/v1/files", raw=b"junk", headers={"Content-Type": ctype})
        assert (broken.status, broken.error_code) == (400, "bad_request"), ctype  # Tornado's
        assert broken.body["error"]["message"] == "请求格式有误"
    assert await stored_count(services) == (0, 0)


@pytest.mark.gen_test
async def test_two_files_in_one_request_are_refused(litigant: Litigant) -> None:
    mp = await litigant()
    part = b'Content-Disposition: form-data; name="file"; filename="%s"\r\n\r\n'
    two = b"".join(b"--b0undary\r\n" + part % n + PDF + b"\r\n" for n in (b"a.pdf", b"b.pdf"))
    two += b"--b0undary--\r\n"
    ctype = "multipart/form-data; boundary=b0undary"
    res = await mp.post("/api/v1/files", raw=two, headers={"Content-Type": ctype})
    assert (res.status, res.error_code) == (422, "too_many_files")


@pytest.mark.gen_test
async def test_size_limit_from_config(litigant: Litigant, services: Services) -> None:
    mp = await litigant()
    services.settings.files.max_bytes = 1000  # read per request
    fits = PDF + b"%" * (1000 - len(PDF))
    assert (await mp.upload(fits, "fits.pdf")).status == 201
    res = await mp.upload(fits + b"%", "over.pdf")
    assert (res.status, res.error_code) == (413, "file_too_large")
    assert res.body["error"]["details"] == {"max_bytes": 1000}
    far = await mp.upload(PDF + bytes(200_000), "far.pdf")  # the whole body is over
    assert (far.status, far.error_code) == (413, "file_too_large")
    assert (await stored_count(services))[0] == 1


@pytest.mark.gen_test(timeout=30)
async def test_uploads_above_the_json_limit_pass_and_download_whole(
    litigant: Litigant, services: Services
) -> None:
    mp = await litigant()
    big = PDF + bytes(range(256)) * (3 * 4096)  # 3 MiB: over the 1 MiB JSON limit, many chunks
    assert len(big) > services.settings.server.max_json_body_bytes
    res = await mp.upload(big, "卷宗.pdf")
    assert res.status == 201, res.body
    assert res.body["sha256"] == sha(big)
    got = await mp.download(res.body["id"])
    assert got.status == 200 and got.content == big
    # JSON bodies still have the JSON limit, on this route too
    huge = await mp.post("/api/v1/files", raw=b" " * (2 * 1024 * 1024))
    assert (huge.status, huge.error_code) == (413, "payload_too_large")


@pytest.mark.gen_test
async def test_owner_downloads_with_safe_headers(litigant: Litigant, services: Services) -> None:
    mp = await litigant()
    up = await mp.upload(PDF, "借条 扫描件.pdf")
    res = await mp.download(up.body["id"])
    assert res.status == 200
    assert res.content == PDF
    assert res.headers["Content-Type"] == "application/pdf"
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Cache-Control"] == "private, no-store"
    disposition = res.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''" + quote("借条 扫描件.pdf", safe="") in disposition
    assert 'filename="file.pdf"' in disposition
    assert await services.db["audit"].count_documents({}) == 0  # one's own file: no audit


@pytest.mark.gen_test(timeout=30)
async def test_who_may_read(litigant: Litigant, staff: Staff, services: Services) -> None:
    owner, other = await litigant(), await litigant(name="李四")
    clerk, judge_elsewhere = await staff("clerk"), await staff("judge", court_id="sh-pudong")
    file_id = (await owner.upload(PDF, "证据一.pdf")).body["id"]
    for session in (other, clerk, judge_elsewhere):
        res = await session.download(file_id)
        assert (res.status, res.error_code) == (404, "file_not_found")

    await services.files.grant([file_id], court_ids=["bj-chaoyang"])
    res = await clerk.download(file_id)
    assert res.status == 200 and res.content == PDF
    audit = await services.db["audit"].find_one({"action": "file.read"})
    assert audit is not None
    assert (audit["actor_id"], audit["target"]) == (clerk.user["id"], file_id)
    assert audit["details"] == {"owner_id": owner.user["id"]}
    assert (await judge_elsewhere.download(file_id)).status == 404
    assert (await other.download(file_id)).status == 404

    await services.files.grant([file_id], reader_ids=[other.user["id"]])
    await services.files.grant([file_id], reader_ids=[other.user["id"]])  # idempotent
    assert (await other.download(file_id)).content == PDF
    meta = await services.files.get_meta(file_id)
    assert (meta.reader_ids, meta.court_ids) == ([other.user["id"]], ["bj-chaoyang"])
    assert await services.db["audit"].count_documents({"action": "file.read"}) == 2


@pytest.mark.gen_test
async def test_unknown_ids_and_no_token(litigant: Litigant, api_url: str) -> None:
    mp = await litigant()
    res = await mp.download("0" * 24)
    assert (res.status, res.error_code) == (404, "file_not_found")
    assert (await mp.download("not-an-id")).status == 404
    file_id = (await mp.upload(PDF, "a.pdf")).body["id"]
    anonymous = MiniProgram(api_url, "http://127.0.0.1:1")
    assert (await anonymous.download(file_id)).error_code == "unauthorized"
    res = await anonymous.upload(PDF, "a.pdf")
    assert (res.status, res.error_code) == (401, "unauthorized")


@pytest.mark.gen_test
async def test_uploads_are_rate_limited_per_user(litigant: Litigant, services: Services) -> None:
    services.files.limiter = RateLimiter(2, 60)
    mp, other = await litigant(), await litigant()
    assert [(await mp.upload(PDF, "a.pdf")).status for _ in range(2)] == [201, 201]
    res = await mp.upload(PDF, "a.pdf")
    assert (res.status, res.error_code) == (429, "rate_limited")
    assert (await other.upload(PDF, "a.pdf")).status == 201


@pytest.mark.gen_test
async def test_check_owned_for_filings(litigant: Litigant, services: Services) -> None:
    mp, other = await litigant(), await litigant()
    a = (await mp.upload(PDF, "a.pdf")).body["id"]
    b = (await mp.upload(PNG, "b.png")).body["id"]
    theirs = (await other.upload(PDF, "c.pdf")).body["id"]
    metas = await services.files.check_owned(mp.user["id"], [b, a, b])
    assert [m.id for m in metas] == [b, a]
    assert metas[0].content_type == FileKind.png
    with pytest.raises(ValidationFailed) as caught:
        await services.files.check_owned(mp.user["id"], [a, theirs, "0" * 24, "bogus", theirs])
    err = caught.value
    assert err.code == "file_not_owned" and theirs in err.message
    assert [(d["loc"], d["file_id"]) for d in err.details] == [
        (["file_ids", 1], theirs),
        (["file_ids", 2], "0" * 24),
        (["file_ids", 3], "bogus"),
    ]
    assert await services.files.check_owned(mp.user["id"], []) == []
    with pytest.raises(NotFound):
        await services.files.get_meta("0" * 24)
    await services.files.grant(["bogus", "0" * 24], reader_ids=["x"])  # nothing to grant: no error


def test_sniffing_and_names() -> None:
    assert [sniff(d) for d in (PDF, JPEG, PNG, b"", b"%PD")] == [
        FileKind.pdf,
        FileKind.jpeg,
        FileKind.png,
        None,
        None,
    ]
    pdf = FileKind.pdf
    assert sanitize_filename("C:\\Users\\张三\\证据.PDF", pdf) == "证据.pdf"
    assert sanitize_filename("../../etc/passwd", pdf) == "passwd.pdf"
    assert sanitize_filename('a"b<c>\x00\u202e.pdf', pdf) == "a_b_c___.pdf"
    assert sanitize_filename("  ", pdf) == "file.pdf"
    assert sanitize_filename("photo.jpeg", FileKind.jpeg) == "photo.jpeg"
    assert sanitize_filename("合同.v2", pdf) == "合同.pdf"
    long = sanitize_filename("字" * 300 + ".pdf", pdf)
    assert len(long) == 100 and long.endswith("字.pdf")
    assert content_disposition("a b.pdf") == (
        "attachment; filename=\"a_b.pdf\"; filename*=UTF-8''a%20b.pdf"
    )
    assert 'filename="file.png"' in content_disposition("图片.png")


@pytest.mark.gen_test
async def test_openapi_describes_the_upload(api_url: str) -> None:
    spec = (await MiniProgram(api_url, "http://127.0.0.1:1").get("/api/v1/openapi.json")).body
    post = spec["paths"]["/api/v1/files"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert set(schema["properties"]) == {"file", "purpose"}
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/FileOut"
    )
