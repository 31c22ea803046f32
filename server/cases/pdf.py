"""The court's documents as PDF: fpdf2 with Noto Serif SC embedded as a subset
(server/cases/fonts.py).

Pure: a ``Letter`` in, bytes out, no I/O but reading the font and the seal image. The same
letter gives the same bytes (the creation date and the file /ID derive from the letter, the
font subset is made in glyph order), so a served document's sha256 is stable.

Layout (A4): the court and the title centred, the 案号 at the head on the right, the body
wrapped by tokens (server/cases/wrap.py), tables for the fee's brackets, the court's name and
date on the right with its seal over them, and at the foot the verification QR code beside
``验证码：…`` and the court's address, phone and contact.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from server.cases.fonts import font_for
from server.cases.wrap import wrap

FONT = "NotoSerifSC"
BODY_PT, TITLE_PT, COURT_PT, SMALL_PT = 13, 22, 16, 10
LEADING = 1.9  # line height over font size: loose enough to read on a phone
MARGIN_MM = 25
QR_MM = 26
SEAL_MM = 42
PT_MM = 25.4 / 72


@dataclass(frozen=True)
class Table:
    """Rows of cells; ``widths`` are the columns' shares of the line; the last row is the
    total when ``total`` is set."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...]
    total: bool = False


@dataclass(frozen=True)
class Letter:
    court: str
    title: str
    case_no: str
    body: tuple[str | Table, ...]
    signed_on: str  # the date under the court's name, as printed
    verify_code: str  # the 验证码, also held by the QR code
    stamp: dt.datetime  # the PDF's creation date: a fact of the document, not of rendering
    footer: tuple[str, ...] = ()
    seal: Path | None = None
    keywords: tuple[str, ...] = field(default=())


VERIFY_HINT = "扫描二维码或在“移动微法院”小程序输入验证码，核验本文书。"


def printed_text(letter: Letter) -> str:
    """Every character the letter prints, so that its font holds them all."""
    cells = [c for b in letter.body if isinstance(b, Table) for r in (b.header, *b.rows) for c in r]
    plain = [b for b in letter.body if isinstance(b, str)]
    head = [letter.court, letter.title, letter.case_no, letter.signed_on]
    return "".join(
        [*head, *plain, *cells, f"验证码：{letter.verify_code}", VERIFY_HINT, *letter.footer]
    )


class _Doc(FPDF):
    def __init__(self, font_file: Path) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM)
        self.add_font(FONT, "", font_file)
        self.set_font(FONT, size=BODY_PT)

    def line_height(self) -> float:
        return self.font_size_pt * PT_MM * LEADING

    def paragraph(self, text: str, align: str = "L") -> None:
        for line in wrap(text, self.epw, self.get_string_width):
            self.cell(
                self.epw,
                self.line_height(),
                line,
                align=align,
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )


@lru_cache(maxsize=64)
def render(letter: Letter) -> bytes:
    """The letter as a PDF: same letter, same bytes. Kept for a while, since a transaction
    that lost a race renders the same letters again when it is retried."""
    with tempfile.TemporaryDirectory(prefix="microcourt-font-") as tmp:
        font_file = Path(tmp) / f"{FONT}.ttf"
        font_file.write_bytes(font_for(printed_text(letter)))
        pdf = _Doc(font_file)
        pdf.set_creation_date(letter.stamp.astimezone(dt.UTC))
        pdf.set_title(f"{letter.case_no}{letter.title}")
        pdf.set_author(letter.court)
        pdf.set_subject(letter.title)
        pdf.set_keywords(" ".join((f"验证码{letter.verify_code}", *letter.keywords)))
        pdf.add_page()
        _head(pdf, letter)
        for block in letter.body:
            if isinstance(block, Table):
                _table(pdf, block)
            else:
                pdf.paragraph(block)
        _signature(pdf, letter)
        _foot(pdf, letter)
        return bytes(pdf.output())


def _head(pdf: _Doc, letter: Letter) -> None:
    pdf.set_font(FONT, size=COURT_PT)
    pdf.paragraph(letter.court, align="C")
    pdf.set_font(FONT, size=TITLE_PT)
    pdf.cell(
        pdf.epw,
        pdf.line_height() * 0.8,
        letter.title,
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font(FONT, size=BODY_PT)
    pdf.paragraph(letter.case_no, align="R")


def _table(pdf: _Doc, table: Table) -> None:
    widths = [pdf.epw * w for w in table.widths]
    height = pdf.line_height() * 0.75
    pdf.set_font(FONT, size=SMALL_PT + 1)
    rows = [table.header, *table.rows]
    for i, row in enumerate(rows):
        last = table.total and i == len(rows) - 1
        for j, (text, width) in enumerate(zip(row, widths, strict=True)):
            align = "L" if j == 0 else "R"
            pdf.cell(width, height, text, border=1, align="C" if i == 0 else align)
        pdf.ln(height)
        if last:
            pdf.set_font(FONT, size=SMALL_PT + 1)
    pdf.set_font(FONT, size=BODY_PT)
    pdf.ln(height * 0.4)


def _signature(pdf: _Doc, letter: Letter) -> None:
    """The court's name and the date on the right, the seal (if configured) over them."""
    height = pdf.line_height()
    if pdf.get_y() + 3 * height > pdf.h - MARGIN_MM:
        pdf.add_page()
    pdf.ln(height * 0.5)
    top = pdf.get_y()
    width = max(pdf.get_string_width(letter.court), pdf.get_string_width(letter.signed_on)) + 8
    left = pdf.w - MARGIN_MM - width
    for text in (letter.court, letter.signed_on):
        pdf.set_x(left)
        pdf.cell(width, height, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if letter.seal is not None:
        x = left + width / 2 - SEAL_MM / 2
        y = top + height - SEAL_MM / 2
        pdf.image(str(letter.seal), x=x, y=y, w=SEAL_MM, h=SEAL_MM)


def qr_png(code: str) -> bytes:
    """The QR code holding the verification code, 8 pixels a module (crisp when printed)."""
    out = io.BytesIO()
    segno.make(code, error="m", micro=False).save(out, kind="png", scale=8, border=2)
    return out.getvalue()


def _foot(pdf: _Doc, letter: Letter) -> None:
    """The QR code with the code beside it, then the court's address, phone and contact."""
    small = SMALL_PT * PT_MM * LEADING
    needed = max(QR_MM, small * (2 + len(letter.footer))) + 4
    if pdf.get_y() + needed > pdf.h - MARGIN_MM:
        pdf.add_page()
    top = max(pdf.get_y() + 4, pdf.h - MARGIN_MM - needed)
    pdf.image(io.BytesIO(qr_png(letter.verify_code)), x=MARGIN_MM, y=top, w=QR_MM, h=QR_MM)
    pdf.set_font(FONT, size=SMALL_PT)
    left = MARGIN_MM + QR_MM + 4
    width = pdf.w - MARGIN_MM - left
    lines = [
        f"验证码：{letter.verify_code}",
        "扫描二维码或在“移动微法院”小程序输入验证码，核验本文书。",
    ]
    pdf.set_y(top)
    for text in (*lines, *letter.footer):
        for line in wrap(text, width, pdf.get_string_width):
            pdf.set_x(left)
            pdf.cell(width, small, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=BODY_PT)
