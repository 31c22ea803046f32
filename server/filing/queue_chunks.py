"""The review queue cut into chunks, so a page reads a bounded number of filings.

SecantusDB materialises every match of a query before its sort and limit, so the cost of a
read is the number of filings its filter matches, whatever its limit. The queue's deadlines
are the ends of local days, so one deadline holds every filing of a day (thousands at 100k
pending): no window of deadlines is narrow enough, the cut must fall between ``_id``s too.

A court's chunks are kept in one document (``filing_queue_chunks``, by court): the ordered
starts of its chunks, each a queue position (green, deadline, ``_id``), and for each an upper
bound of the filings it holds. A chunk runs from its start (inclusive) to the next start
(exclusive); the first starts before every filing (``FIRST``), so the chunks cover the whole
queue and a page is right whatever the chunks are: they decide only what a read costs.

- Submission (the only way into the queue) counts the filing into its chunk after its
  transaction commits, and splits a chunk counted above ``CAP`` into chunks of ``CHUNK`` by
  reading its filings' keys (at most about ``CAP``). Counting outside the transaction keeps the
  court's one document out of the submissions' write conflicts. A count lost to a crash
  between the two, or made between a rewrite's read and its write (a split or a drop reads
  the document again just before writing it), leaves a chunk a filing over, put right by its
  next split.
- The document grows with the court's queue: its starts are packed in one binary (21 bytes a
  chunk: ~66 KB at 100k pending, ~660 KB at 1M), read whole by each page without the
  counts; unpacked in a few milliseconds at 100k.
- Decisions, withdrawal and the deadline sweep never add to a chunk (the sweep does not
  change a filing's position), so they leave the document alone: a count is an upper bound.
- A page reads the court's document, then chunk after chunk from its position, each read
  bounded by the chunk's range: at most ``limit + 1 + 2 * CAP`` filings (the chunk it starts
  in, the chunks that fill it, the last partly). A chunk read from its start and found empty
  is dropped (merged into the one before), so drained chunks do not pile up at the head.
- A court with no document yet (the first read after this was deployed, or a seed written
  behind the service's back) has its chunks built by its next page read: every key once.
"""

from __future__ import annotations

import bisect
import datetime as dt
import struct
from dataclasses import dataclass
from typing import Any

from bson import Binary, ObjectId

from server.platform.mongo import EPOCH

#: filings a chunk holds after a split (a first page reads one or two: SecantusDB reads each
#: filing whole, ~0.3 ms for a seeded one, so smaller chunks make cheaper pages)
CHUNK = 32
#: a chunk counted above this many filings is split
CAP = 2 * CHUNK

#: a start as stored: green, the deadline in ms since ``EPOCH``, the ObjectId's 12 bytes
_PACKED = struct.Struct("<?q12s")

#: A position in the queue: (green, review deadline, id).
Key = tuple[bool, dt.datetime, ObjectId]
#: before every filing: the first chunk's start
FIRST: Key = (True, EPOCH, ObjectId(b"\x00" * 12))


def order(key: Key) -> tuple[bool, dt.datetime, ObjectId]:
    """``QUEUE_SORT`` as a tuple to compare: green first, then deadline, then ``_id``."""
    return (not key[0], key[1], key[2])


def key_of(row: dict[str, Any]) -> Key:
    """A filing's position in the queue."""
    return (bool(row["green"]), row["review_deadline"], row["_id"])


def just_before(key: Key) -> Key | None:
    """The position right before ``key`` (a page after it starts at ``key``); None: the start."""
    if key == FIRST:
        return None
    return (key[0], key[1], ObjectId((int(str(key[2]), 16) - 1).to_bytes(12, "big")))


@dataclass
class Chunks:
    """A court's chunks: their starts in queue order, the filings counted into each, and the
    version that each rewrite of the starts raises (a count goes to the version it read)."""

    starts: list[Key]
    counts: list[int]
    version: int = 0

    @classmethod
    def whole(cls) -> Chunks:
        """One chunk: the whole queue (no document, or none yet)."""
        return cls([FIRST], [0])

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Chunks:
        """The chunks of the court's document (without its counts ``n``: all 0)."""
        if doc is None:
            return cls.whole()
        starts = [
            (g, EPOCH + dt.timedelta(milliseconds=ms), ObjectId(oid))
            for g, ms, oid in _PACKED.iter_unpack(doc["starts"])
        ]
        return cls(starts, doc.get("n") or [0] * len(starts), doc["version"])

    def doc(self) -> dict[str, Any]:
        """The starts packed in one binary field (a Python server decodes an array of
        thousands of subdocuments on every read; one binary is one value), the counts beside."""
        packed = b"".join(
            _PACKED.pack(g, (d - EPOCH) // dt.timedelta(milliseconds=1), i.binary)
            for g, d, i in self.starts
        )
        return {"starts": Binary(packed), "n": self.counts}

    def find(self, key: Key) -> int:
        """The chunk holding ``key`` (the last start at or before it)."""
        at = bisect.bisect_right([order(s) for s in self.starts], order(key)) - 1
        return max(at, 0)

    def end(self, index: int) -> Key | None:
        """Where chunk ``index`` ends (the next start), None for the last."""
        return self.starts[index + 1] if index + 1 < len(self.starts) else None

    def split(self, index: int, keys: list[Key]) -> None:
        """Chunk ``index`` cut into chunks of ``CHUNK`` of ``keys`` (its filings, in order)."""
        starts, counts = cut(keys, self.starts[index])
        self.starts[index : index + 1] = starts
        self.counts[index : index + 1] = counts

    def drop(self, indexes: list[int]) -> None:
        """Chunks found empty merged into the chunk before each (never the first)."""
        for index in sorted({i for i in indexes if i > 0}, reverse=True):
            del self.starts[index]
            del self.counts[index]


def cut(keys: list[Key], first: Key = FIRST) -> tuple[list[Key], list[int]]:
    """Chunks of ``CHUNK`` over ``keys`` (in order), the first starting at ``first``."""
    starts, counts = [first], [0]
    for n, key in enumerate(keys):
        if n and n % CHUNK == 0:
            starts.append(key)
            counts.append(0)
        counts[-1] += 1
    return starts, counts
