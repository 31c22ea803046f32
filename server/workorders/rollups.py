"""The statistics' rollups: what each order adds to the report, kept per court, local day
and one grouping (assignee, category, court or channel), so that a year's report reads a
few thousand small documents instead of every order.

Pure functions only: server/workorders/store.py writes the cells, in the transaction of
the order's own change, by the difference between what the order added before the change
and what it adds after (``delta``); server/workorders/stats.py merges them (``merge``).

A cell per grouping rather than one per (assignee, category, channel) combination: a
report groups by one of them, so it reads only that grouping's cells, whose number grows
with that grouping's values, not with the product of all of them.

What a cell keeps (``CellDoc``): the exact counts (received, replied, closed, on_time,
called_back, rated, rating_sum), and three maps of value -> number of orders:

- ``s``: the first replies' elapsed seconds (the float's ``repr``, ``.`` written ``_``
  since a key may not hold a dot). A map rather than a sorted list because an order's
  change is then one ``$inc`` of one key (a list needs a read and a rewrite); merged and
  sorted at query time, it gives the same ranks, hence the same exact percentiles, as
  sorting the orders.
- ``w``: the unanswered orders' first-reply deadlines (milliseconds since the epoch, what
  BSON keeps): ``due`` counts them once the deadline has passed at the report's ``now``.
- ``o``: the open orders' ``overdue_at``: ``overdue_now`` counts those passed at ``now``.

The two time-dependent counts are kept as deadlines, not as flags, so that no sweep has to
move them as time passes. A key whose count falls to 0 is removed (``emptied``), so the
maps hold only what is still there.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from models.workorders import Channel, GroupBy
from server.platform.clock import SHANGHAI
from server.platform.config import Settings

COUNTS = ("received", "replied", "closed", "on_time", "called_back", "rated", "rating_sum")
MAPS = ("s", "w", "o")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
#: the fields of an order a cell counts (what the rebuild reads)
COUNTED = {
    **dict.fromkeys(("court_id", "created_at", "assignee_id", "category", "channel"), 1),
    **dict.fromkeys(("status", "first_reply_seconds", "first_reply_on_time"), 1),
    **dict.fromkeys(("first_reply_due_at", "overdue_at", "called_back", "rating_score"), 1),
}

ZoneOf = Callable[[str], dt.tzinfo]
#: a cell's increments: "received", "s.v1800_0", … -> number
Delta = dict[str, dict[str, int]]


def zones(settings: Settings) -> ZoneOf:
    """Each court's time zone (its days are the report's days); Shanghai for one unknown."""
    by_court = {c.id: ZoneInfo(c.timezone) for c in settings.courts}
    return lambda court_id: by_court.get(court_id, SHANGHAI)


def ms_key(t: dt.datetime) -> str:
    """A stored time as a key: whole milliseconds since the epoch (BSON truncates to them)."""
    return f"t{(t - EPOCH) // MS}"


def ms_of(key: str) -> int:
    return int(key[1:])


def seconds_key(s: float) -> str:
    return "v" + repr(float(s)).replace(".", "_")


def seconds_of(key: str) -> float:
    return float(key[1:].replace("_", "."))


def _get(order: Any, field: str) -> Any:
    value = order.get(field) if isinstance(order, dict) else getattr(order, field, None)
    return value.value if isinstance(value, enum.Enum) else value


def group_key(order: Any, group_by: GroupBy) -> Any:
    """The order's key under ``group_by``, as the raw aggregation's ``KEYS`` computes it."""
    if group_by == GroupBy.channel:
        return _get(order, "channel") or Channel.miniprogram.value
    field = {GroupBy.assignee: "assignee_id", GroupBy.category: "category"}
    return _get(order, field.get(group_by, "court_id"))


def cell_id(court_id: str, group_by: GroupBy, day: dt.date, key: Any) -> str:
    return f"{court_id}|{group_by.value}|{day.isoformat()}|{'' if key is None else key}"


def cells_of(order: Any, zone_of: ZoneOf) -> list[tuple[str, dict[str, Any]]]:
    """The order's cells: (id, the fields that name it), one per grouping."""
    court = _get(order, "court_id")
    day = _get(order, "created_at").astimezone(zone_of(court)).date()
    out = []
    for group_by in GroupBy:
        key = group_key(order, group_by)
        fields = {"court_id": court, "by": group_by.value, "day": day.isoformat(), "key": key}
        out.append((cell_id(court, group_by, day, key), fields))
    return out


def adds(order: Any) -> dict[str, int]:
    """What the order adds to each of its cells."""
    seconds = _get(order, "first_reply_seconds")
    score = _get(order, "rating_score")
    out = {
        "received": 1,
        "replied": int(seconds is not None),
        "closed": int(_get(order, "status") == "closed"),
        "on_time": int(_get(order, "first_reply_on_time") is True),
        "called_back": int(_get(order, "called_back") is True),
        "rated": int(score is not None),
        "rating_sum": score or 0,
    }
    if seconds is not None:
        out[f"s.{seconds_key(seconds)}"] = 1
    elif _get(order, "first_reply_due_at") is not None:
        out[f"w.{ms_key(_get(order, 'first_reply_due_at'))}"] = 1
    if _get(order, "overdue_at") is not None:
        out[f"o.{ms_key(_get(order, 'overdue_at'))}"] = 1
    return out


def delta(before: Any | None, after: Any | None, zone_of: ZoneOf) -> Delta:
    """Per cell, what changes when ``before`` becomes ``after`` (None: no order), with no
    zero entries: an empty result means no cell changes."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for order, sign in ((before, -1), (after, 1)):
        if order is None:
            continue
        add = adds(order)
        for cid, _ in cells_of(order, zone_of):
            for field, n in add.items():
                out[cid][field] += sign * n
    return {cid: {f: n for f, n in c.items() if n} for cid, c in out.items() if any(c.values())}


def names(orders: Iterable[Any], zone_of: ZoneOf) -> dict[str, dict[str, Any]]:
    """The naming fields of every cell the orders touch (what an upsert sets on insert)."""
    return {cid: fields for order in orders for cid, fields in cells_of(order, zone_of)}


def emptied(inc: dict[str, int]) -> list[str]:
    """The map keys a decrement may have brought to 0 (to be removed if they have)."""
    return [f for f, n in inc.items() if n < 0 and f.split(".", 1)[0] in MAPS]


def build(
    orders: Iterable[Any], zone_of: ZoneOf, cells: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``cells`` (by id) with ``orders`` added: the rebuild, a batch of orders at a time."""
    for order in orders:
        add = adds(order)
        for cid, fields in cells_of(order, zone_of):
            cell = cells.setdefault(cid, {"_id": cid, **fields, **{m: {} for m in MAPS}})
            for field, n in add.items():
                if "." in field:
                    m, k = field.split(".", 1)
                    cell[m][k] = cell[m].get(k, 0) + n
                else:
                    cell[field] = cell.get(field, 0) + n
    return cells


def normal(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell without its zero counts and empty maps (a cell kept through changes and one
    built from the orders are then equal when they count the same)."""
    out = {k: v for k, v in cell.items() if k not in MAPS and k not in COUNTS}
    out.update({k: cell[k] for k in COUNTS if cell.get(k)})
    out.update({m: {k: n for k, n in cell[m].items() if n} for m in MAPS if cell.get(m)})
    return {k: v for k, v in out.items() if v != {}}


class Merged:
    """One group's cells added up, at the report's ``now``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[float] = Counter()

    def add(self, cell: dict[str, Any], now_ms: int) -> None:
        for field in COUNTS:
            self.counts[field] += int(cell.get(field) or 0)
        self.counts["due"] += int(cell.get("replied") or 0)
        self.counts["due"] += sum(n for k, n in cell.get("w", {}).items() if ms_of(k) <= now_ms)
        self.counts["overdue_now"] += sum(
            n for k, n in cell.get("o", {}).items() if ms_of(k) <= now_ms
        )
        for k, n in cell.get("s", {}).items():
            if n:
                self.seconds[seconds_of(k)] += n

    def absorb(self, other: Merged) -> None:
        self.counts.update(other.counts)
        self.seconds.update(other.seconds)

    def at_ranks(self, wanted: Iterable[int]) -> dict[int, float]:
        """The 1-based ranks ``wanted`` of the replies sorted by time: their values."""
        want = sorted(set(wanted))
        found: dict[int, float] = {}
        seen, i = 0, 0
        for value in sorted(self.seconds):
            seen += self.seconds[value]
            while i < len(want) and want[i] <= seen:
                found[want[i]] = value
                i += 1
            if i == len(want):
                break
        return found


def merge(cells: Iterable[dict[str, Any]], now: dt.datetime) -> tuple[dict[Any, Merged], Merged]:
    """The cells of one grouping, added up per key and over all keys; keys no order is
    counted in any more (all moved to another assignee) are left out, as the orders'
    aggregation never sees them."""
    now_ms = (now - EPOCH) // MS
    groups: dict[Any, Merged] = defaultdict(Merged)
    for cell in cells:
        groups[cell.get("key")].add(cell, now_ms)
    groups = {k: g for k, g in groups.items() if g.counts["received"] > 0}
    total = Merged()
    for g in groups.values():
        total.absorb(g)
    return groups, total
