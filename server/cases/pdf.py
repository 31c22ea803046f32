"""A small PDF writer for the notices the court generates (受理通知书, 缴费通知书).

Text only, A4, in Adobe's standard Chinese font ``STSong-Light`` with the ``UniGB-UCS2-H``
encoding: a PDF reader supplies the font, so nothing is embedded and a notice is a few KB.
The output is deterministic (no creation date, no random ids): the same notice gives the
same bytes and so the same sha256, which is what the service certificate records.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 64
BODY_SIZE, TITLE_SIZE = 12, 20
LEADING = 20
LINES_PER_PAGE = (PAGE_HEIGHT - 2 * MARGIN - 2 * LEADING) // LEADING
# Width in ems: CJK and full-width characters take one, the rest a half (the font's /W says so).
WRAP_EMS = (PAGE_WIDTH - 2 * MARGIN) / BODY_SIZE


def _ems(char: str) -> float:
    return 1.0 if unicodedata.east_asian_width(char) in "WF" else 0.5


def wrap(text: str, width: float = WRAP_EMS) -> list[str]:
    """Break one paragraph into lines no wider than ``width`` ems."""
    lines: list[str] = []
    line, used = "", 0.0
    for char in text:
        if used + _ems(char) > width:
            lines.append(line)
            line, used = "", 0.0
        line += char
        used += _ems(char)
    lines.append(line)
    return lines


def _hex(text: str) -> str:
    # UniGB-UCS2-H takes two-byte UCS-2 codes; characters outside the BMP cannot be shown.
    safe = "".join(c if ord(c) < 0x10000 else "?" for c in text)
    return "<" + safe.encode("utf-16-be").hex().upper() + ">"


def _page_stream(title: str | None, lines: Sequence[str]) -> bytes:
    ops = ["BT"]
    y = PAGE_HEIGHT - MARGIN
    if title is not None:
        title_ems = sum(_ems(c) for c in title)
        x = (PAGE_WIDTH - title_ems * TITLE_SIZE) / 2
        ops += [f"/F1 {TITLE_SIZE} Tf", f"1 0 0 1 {x:.1f} {y - TITLE_SIZE} Tm", f"{_hex(title)} Tj"]
        y -= 2 * LEADING + TITLE_SIZE
    ops.append(f"/F1 {BODY_SIZE} Tf")
    for line in lines:
        ops += [f"1 0 0 1 {MARGIN} {y} Tm", f"{_hex(line)} Tj"]
        y -= LEADING
    ops.append("ET")
    return "\n".join(ops).encode("ascii")


def _objects(pages: list[bytes]) -> list[bytes]:
    """Catalog, page tree, font, then a page and its content stream per page."""
    first_page = 4
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(pages)))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        b"/DescendantFonts [<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> "
        b"/FontDescriptor << /Type /FontDescriptor /FontName /STSong-Light /Flags 6 "
        b"/FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 "
        b"/CapHeight 880 /StemV 93 >> /DW 1000 /W [1 95 500 814 939 500] >>] >>",
    ]
    for i, stream in enumerate(pages):
        content = first_page + 2 * i + 1
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    return objs


def render(title: str, paragraphs: Iterable[str]) -> bytes:
    """A PDF of ``title`` (centred on the first page) and the paragraphs, wrapped and paged."""
    lines = [line for para in paragraphs for line in wrap(para)]
    chunks = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    pages = [_page_stream(title if i == 0 else None, c) for i, c in enumerate(chunks or [[]])]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(_objects(pages), start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1,
        xref,
    )
    return bytes(out)
