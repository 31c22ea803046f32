"""The documents' font: Noto Serif SC (SIL OFL 1.1, from the ``pylopdf-fonts-zh-cn`` package),
cut down for each document to the characters it prints and given TrueType outlines.

Why not hand the 11 MB OpenType file to fpdf2 as it is: it is CID-keyed CFF, which fpdf2
embeds with its own encoding CMap; pdfium reads that, but pypdf and other extractors take
the two-byte codes one byte at a time and the copied text comes out broken. A small TrueType
font embeds with Identity-H, which every reader knows. Building it from the few hundred
glyphs a document uses also costs far less than letting fontTools subset the whole file
for each document: the source font is read once per process and only read after that.
"""

from __future__ import annotations

import io
from functools import cache, lru_cache

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.recordingPen import RecordingPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from pylopdf_fonts_zh_cn import serif_path

FAMILY = "NotoSerifSC"
MAX_ERROR = 1.0  # font units (of 1000) a quadratic curve may stray from the cubic one


@cache
def _source() -> TTFont:
    return TTFont(str(serif_path()), lazy=True, recalcTimestamp=False)


def source_cmap() -> dict[int, str]:
    """Every character the full font can draw."""
    return dict(_source().getBestCmap())


def font_for(text: str) -> bytes:
    """A TrueType font with the glyphs of ``text`` (and space), the same bytes for the same
    characters: glyph order follows the code points."""
    src = _source()
    cmap = src.getBestCmap()
    hmtx = src["hmtx"]
    order, names, char_map = [".notdef"], {".notdef": ".notdef"}, {}
    for point in sorted({ord(c) for c in text} | {0x20}):
        old = cmap.get(point)
        if old is None:
            continue  # fpdf2 reports it missing; the tests prove none is
        if old not in names:
            names[old] = f"g{len(order)}"
            order.append(names[old])
        char_map[point] = names[old]
    outlines, metrics = {}, {}
    for old, new in names.items():
        pen = TTGlyphPen(None)
        _quadratic(old).replay(pen)
        outlines[new] = pen.glyph()
        metrics[new] = (hmtx[old][0], hmtx[old][1])
    return _build(src, order, char_map, outlines, metrics)


@lru_cache(maxsize=30_000)
def _quadratic(name: str) -> RecordingPen:
    """The glyph's outline in quadratic curves, converted once per process: running the CFF
    charstring and converting its curves is most of the cost of a document's font."""
    pen = RecordingPen()
    _source().getGlyphSet()[name].draw(Cu2QuPen(pen, MAX_ERROR, reverse_direction=True))
    return pen


def _build(
    src: TTFont,
    order: list[str],
    char_map: dict[int, str],
    outlines: dict[str, object],
    metrics: dict[str, tuple[int, int]],
) -> bytes:
    hhea, os2 = src["hhea"], src["OS/2"]
    fb = FontBuilder(src["head"].unitsPerEm, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap(char_map)
    fb.setupGlyf(outlines)
    fb.setupHorizontalMetrics(metrics)
    fb.setupHorizontalHeader(ascent=hhea.ascent, descent=hhea.descent)
    fb.setupNameTable({"familyName": FAMILY, "styleName": "Regular"})
    fb.setupOS2(
        sTypoAscender=os2.sTypoAscender,
        sTypoDescender=os2.sTypoDescender,
        usWinAscent=os2.usWinAscent,
        usWinDescent=os2.usWinDescent,
        sCapHeight=getattr(os2, "sCapHeight", 0),
        fsType=0,  # the OFL allows embedding
    )
    fb.setupPost()
    fb.font["head"].created = fb.font["head"].modified = src["head"].created
    out = io.BytesIO()
    fb.save(out)
    return out.getvalue()
