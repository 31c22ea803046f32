"""Court documents: generated at acceptance and on scheduling, fonts embedded, text unbroken,
every page rendered without a missing glyph, each verifiable by the code printed on it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from typing import Any
from urllib.parse import quote

import pypdfium2
import pytest
import segno
from PIL import Image
from pypdf import PdfReader

from miniapp_stubs.client import ApiSession
from server.app import Services
from server.cases import notices
from server.cases.fonts import source_cmap
from server.cases.pdf import Letter, Table, render
from server.cases.wrap import tokens, wrap
from server.platform.config import ConfigError, load_settings
from server.platform.court_documents import DOCUMENT_FIELDS
from tests.factories import TUESDAY, Litigant, Staff, accepted_case, uid

ACCEPTANCE = ["受理通知书", "诉讼权利义务告知书", "举证通知书", "缴费通知书"]
VERIFY = "/api/v1/documents/verify"
SCALE = 3  # render scale: a thin stroke still darkens its box


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def flat(data: bytes) -> str:
    return re.sub(r"\s+", "", text_of(data))


def code_of(data: bytes) -> str:
    found = re.search(r"验证码：([0-9A-Z]{16})", flat(data))
    assert found, "no 验证码 on the document"
    return found.group(1)


async def served(mp: ApiSession, case_id: str) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each document served to ``mp``'s party, opened and downloaded: kind -> (doc, bytes)."""
    out = {}
    for doc in (await mp.documents(case_id)).body["items"]:
        opened = await mp.read_document(case_id, doc["id"])
        assert opened.status == 200, opened.body
        data = await mp.download(opened.body["file_id"])
        assert data.status == 200
        out[doc["kind"]] = (opened.body, data.content)
    return out


def fonts_of(data: bytes) -> list[dict[str, Any]]:
    """Every font dictionary of every page, with its descendant's descriptor."""
    found = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            found.append(font)
            for child in font.get("/DescendantFonts", []):
                found.append(child.get_object())
    return found


def assert_fonts_embedded(data: bytes) -> None:
    fonts = fonts_of(data)
    assert fonts
    for font in fonts:
        if font["/Subtype"] == "/Type0":
            continue  # its descendant carries the descriptor
        desc = font["/FontDescriptor"].get_object()
        assert any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")), font
        assert re.fullmatch(r"/[A-Z]{6}\+.+", str(font["/BaseFont"])), "not a subset"


def embedded_cmap(data: bytes) -> set[int]:
    """The code points the embedded subset can draw (from the PDF's ToUnicode maps)."""
    points: set[int] = set()
    for font in fonts_of(data):
        if "/ToUnicode" not in font:
            continue
        cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
        for _, hexes in re.findall(r"<([0-9A-F]+)>\s*<([0-9A-F]+)>", cmap):
            points.update(ord(c) for c in bytes.fromhex(hexes).decode("utf-16-be"))
    return points


def assert_every_glyph_drawn(data: bytes) -> None:
    """Each character on the pages is in the embedded subset, and each page renders with ink
    for every character (a missing glyph renders as nothing or as a .notdef box)."""
    text = flat(data)
    drawable = embedded_cmap(data)
    missing = sorted({c for c in text if ord(c) > 0x7F and ord(c) not in drawable})
    assert not missing, missing
    cmap = source_cmap()
    assert all(ord(c) in cmap for c in text)  # the full font has them: nothing fell back
    pdf = pypdfium2.PdfDocument(data)
    for page in pdf:
        textpage = page.get_textpage()
        count = textpage.count_chars()
        image = page.render(scale=SCALE).to_pil().convert("L")
        for i in range(count):
            char = textpage.get_text_range(i, 1)
            if not char.strip():
                continue
            left, bottom, right, top = textpage.get_charbox(i)
            height = page.get_height()
            box = (left * SCALE, (height - top) * SCALE, right * SCALE, (height - bottom) * SCALE)
            crop = image.crop(tuple(int(v) for v in box))
            assert crop.getextrema()[0] < 200, f"no ink for {char!r}"


def qr_holds(data: bytes, code: str) -> bool:
    """The page's QR image has exactly the modules of a QR code of ``code``."""
    expected = segno.make(code, error="m", micro=False)
    modules = [[bool(v) for v in row] for row in expected.matrix]
    for page in PdfReader(io.BytesIO(data)).pages:
        for img in page.images:
            pic = Image.open(io.BytesIO(img.data)).convert("L")
            size = len(modules) + 4  # the border of two modules each side
            if pic.width != size * 8:
                continue
            small = pic.resize((size, size), Image.Resampling.NEAREST)
            seen = [
                [small.getpixel((x + 2, y + 2)) < 128 for x in range(size - 4)]
                for y in range(size - 4)
            ]
            if seen == modules:
                return True
    return False


@pytest.mark.gen_test(timeout=180)
async def test_acceptance_serves_four_documents_a_court_would_sign(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    case = (await plaintiff.case(case_id)).body
    docs = await served(plaintiff, case_id)
    assert sorted(docs) == sorted(ACCEPTANCE)
    case_no, query = case["case_no"], case["query_code"]

    acceptance = text_of(docs["受理通知书"][1])
    lines = acceptance.splitlines()
    assert lines[:3] == ["北京市朝阳区人民法院", "受理案件通知书", case_no]  # 案号 at the head
    assert any(f"案件查询码：{query}" in line for line in lines)  # unbroken, on one line
    assert "联系人：立案庭；联系电话：010-12368" in flat(docs["受理通知书"][1])

    fee = text_of(docs["缴费通知书"][1])
    fee_lines = fee.splitlines()
    assert any(
        "超过1万元至10万元的部分" in x and "2.5%" in x and "2,250.00" in x for x in fee_lines
    )
    assert any(x.startswith("合计") and "2,300.00" in x for x in fee_lines)
    assert any("2026年11月30日前交纳2,300.00元" in x for x in fee_lines)
    assert "司法救助" in fee and case_no in fee

    evidence = flat(docs["举证通知书"][1])
    # 15 days from Tuesday 11-24 end on Tuesday 12-08 (no holiday between)
    assert "举证期限为15日" in evidence and "至2026年12月08日届满" in evidence
    for kind, (doc, data) in docs.items():
        assert case_no in text_of(data).splitlines(), kind  # 案号 never broken
        assert data.startswith(b"%PDF-") and hashlib.sha256(data).hexdigest() == doc["sha256"]
        assert_fonts_embedded(data)
        assert_every_glyph_drawn(data)
        code = code_of(data)
        assert qr_holds(data, code), kind
        res = await plaintiff.get(f"{VERIFY}?code={code}")
        assert res.status == 200, res.body
        assert res.body == {
            "verify_code": code,
            "court_id": "bj-chaoyang",
            "court_name": "北京市朝阳区人民法院",
            "case_no": case_no,
            "kind": kind,
            "title": kind,
            "served_at": doc["served_at"],
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    # the court's copy of the rights notice went to every party (the defendant on paper)
    court_docs = (await clerk.case(case_id)).body["documents"]
    assert [d["kind"] for d in court_docs] == ACCEPTANCE
    assert len(court_docs[1]["recipients"]) == 2


@pytest.mark.gen_test(timeout=120)
async def test_verification_needs_no_sign_in_and_tells_nothing_personal(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    (_, data), *_ = (await served(plaintiff, case_id)).values()
    code = code_of(data)
    anonymous = ApiSession(plaintiff.api_url)
    typed = quote(f"{code[:4]}-{code[4:8].lower()} {code[8:]}")
    res = await anonymous.get(f"{VERIFY}?code={typed}")
    assert res.status == 200, res.body  # typed with dashes, spaces, lower case
    assert res.body["sha256"] == hashlib.sha256(data).hexdigest()
    shown = str(res.body)
    assert "张三" not in shown and "李四" not in shown

    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    assert hashlib.sha256(bytes(changed)).hexdigest() != res.body["sha256"]

    unknown = await anonymous.get(f"{VERIFY}?code=ZZZZZZZZZZZZZZZZ")
    assert (unknown.status, unknown.error_code) == (404, "document_not_found")
    missing = await anonymous.get(VERIFY)
    assert missing.status == 422 and missing.body["error"]["code"]


@pytest.mark.gen_test(timeout=120)
async def test_verification_is_rate_limited(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    anonymous = ApiSession((await litigant()).api_url)
    limit = services.settings.cases.verifications_per_client_per_minute
    for _ in range(limit):
        assert (await anonymous.get(f"{VERIFY}?code=ZZZZZZZZZZZZZZZZ")).status == 404
    res = await anonymous.get(f"{VERIFY}?code=ZZZZZZZZZZZZZZZZ")
    assert (res.status, res.error_code) == (429, "rate_limited")


@pytest.mark.gen_test(timeout=180)
async def test_scheduling_serves_a_summons_to_each_party(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    judge = await staff("judge")
    assert (await clerk.assign_case(case_id, uid(judge), uid(clerk))).status == 200
    res = await judge.schedule_hearing(case_id, TUESDAY.format("09:30"), "第三法庭", online=True)
    assert res.status == 201, res.body
    court = (await clerk.case(case_id)).body["documents"]
    summonses = [d for d in court if d["kind"] == "传票"]
    assert sorted(d["recipients"][0]["name"] for d in summonses) == ["张三", "李四"]
    doc, data = (await served(plaintiff, case_id))["传票"]
    text = flat(data)
    assert "被传唤人：张三（原告）" in text and "应到时间：2026年11月24日09:30" in text
    assert "第三法庭" in text and "在线参加" in text and "身份证件原件" in text
    assert_fonts_embedded(data)
    verified = await plaintiff.get(f"{VERIFY}?code={code_of(data)}")
    assert verified.status == 200 and verified.body["kind"] == "传票"
    assert verified.body["sha256"] == doc["sha256"]
    # the defendant has no consent: its summons waits for paper service, unseen in its list
    assert "传票" not in {d["kind"] for d in (await defendant.documents(case_id)).body["items"]}

    # a new time is a new 传票 to each party, with a code of its own; the first stays on record
    hearing_id = res.body["id"]
    first_code = code_of(data)
    moved = await judge.reschedule_hearing(case_id, hearing_id, TUESDAY.format("14:00"))
    assert moved.status == 200, moved.body
    back = await judge.reschedule_hearing(case_id, hearing_id, TUESDAY.format("09:30"))
    assert back.status == 200, back.body  # the first time again: not the first 传票's code
    court = (await clerk.case(case_id)).body["documents"]
    assert sorted(d["recipients"][0]["name"] for d in court if d["kind"] == "传票") == [
        *["张三"] * 3,
        *["李四"] * 3,
    ]
    times, codes = [], set()
    for doc in (await plaintiff.documents(case_id)).body["items"]:
        if doc["kind"] == "传票":
            opened = await plaintiff.read_document(case_id, doc["id"])
            text = flat((await plaintiff.download(opened.body["file_id"])).content)
            times.append(re.search(r"应到时间：2026年11月24日(\d\d:\d\d)", text).group(1))  # type: ignore[union-attr]
            codes.add(re.search(r"验证码：([0-9A-Z]{16})", text).group(1))  # type: ignore[union-attr]
    assert sorted(times) == ["09:30", "09:30", "14:00"] and len(codes) == 3
    assert first_code in codes
    for code in codes:
        assert (await plaintiff.get(f"{VERIFY}?code={code}")).body["kind"] == "传票"


# ---- the pure parts


def letter(**changes: Any) -> Letter:
    base: dict[str, Any] = {
        "court": "北京市朝阳区人民法院",
        "title": "受理案件通知书",
        "case_no": "（2026）京0105民初1234号",
        "body": (
            "张三：",
            "　　你（单位）诉李四民间借贷纠纷一案，" * 3 + "案号为（2026）京0105民初1234号，"
            "于2026年12月07日立案受理，应交2,300.00元，查询码AB12CD34。",
            Table(("项目", "费率", "金额（元）"), (("合计", "", "2,300.00"),), (0.6, 0.1, 0.3)),
        ),
        "signed_on": "2026年12月07日",
        "verify_code": "ABCDEFGH23456789",
        "stamp": dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC),
    }
    return Letter(**{**base, **changes})


def test_same_inputs_same_bytes() -> None:
    fresh = render.__wrapped__  # past the cache: each call renders anew
    first, again = fresh(letter()), fresh(letter())
    assert first == again and first is not again
    assert render(letter(verify_code="ABCDEFGH2345678A")) != first


def test_wrapping_never_breaks_numbers_dates_or_case_numbers() -> None:
    text = "案号为（2026）京0105民初1234号，于2026年12月07日立案，应交2,300.00元，电话010-12368。"
    assert "（2026）京0105民初1234号，" in tokens(text)
    for width in range(4, 40):
        lines = wrap(text, width, len)
        assert "".join(lines) == text
        joined = "\n".join(lines)
        for whole in ("（2026）京0105民初1234号", "2026年12月07日", "2,300.00", "010-12368"):
            assert whole in joined, (width, lines)
        assert not any(line.startswith(("，", "。")) for line in lines)


def test_wording_is_the_courts_and_checked_at_start_up() -> None:
    from server.cases.wording import DEFAULTS

    for kind, words in DEFAULTS.items():  # the defaults use only the fields filled in
        for para in (words.title, *words.paragraphs):
            names = set(re.findall(r"{(\w+)}", para))
            assert names <= DOCUMENT_FIELDS[kind], (kind, names)
    settings = load_settings()
    court = settings.courts[0].model_copy(deep=True)
    court.documents.wording = {}
    own = court.documents.model_validate(
        {"wording": {"rights_notice": {"title": "权利义务告知", "paragraphs": ["{case_no}须知"]}}}
    )
    court.documents = own
    data = notices.rights_notice(
        _case(), court, notices.verification_code(hashlib.sha256(b"x").hexdigest())
    )
    assert text_of(data).splitlines()[1] == "权利义务告知"
    with pytest.raises(ConfigError, match="unknown placeholder"):
        load_settings(
            courts=[
                {
                    **settings.courts[0].model_dump(),
                    "documents": {"wording": {"summons": {"title": "传票{nobody}"}}},
                }
            ]
        )
    with pytest.raises(ConfigError, match="seal image"):
        load_settings(
            courts=[{**settings.courts[0].model_dump(), "documents": {"seal_image": "config.yaml"}}]
        )


def _case() -> Any:
    from bson import ObjectId

    from models.cases import CaseDoc

    now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    return CaseDoc.model_validate(
        {
            "_id": ObjectId(),
            "case_no": "（2026）京0105民初7号",
            "seq": 7,
            "year": 2026,
            "court_id": "bj-chaoyang",
            "type_code": "民初",
            "case_kind": "civil",
            "filing_id": "f",
            "procedure": "ordinary",
            "status": "accepted",
            "filer_id": "u",
            "query_code_cipher": b"",
            "accepted_at": now,
            "created_at": now,
            "updated_at": now,
            "last_activity_at": now,
        }
    )
