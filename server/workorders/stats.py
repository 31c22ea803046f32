"""Work-order statistics: received, replied, reply rate, on-time rate, median and p90 time to
first reply, overdue now, average rating; per assignee, category, court or channel.

A court's whole view (supervisors, administrators) is read from the rollups
(server/workorders/rollups.py): the cells of the range's days, kept in the transaction of
every order's change, added up per key; the percentiles from their merged distributions of
first-reply seconds, by the same ranks and interpolation as below, so the report is the
same as the aggregation's. A judge's or clerk's own report (their assigned orders and those
on their cases) is the aggregation over the orders, which is also the rollups' reference
in the tests:

Two aggregations, each starting with a ``$match`` on (court_id, created_at) that the index
``stats`` serves (the system administrator's every-court view: one range per court):

- the counts, one ``$group`` per key: exact integers, so rates and averages are exact too;
- the percentiles, exact at any size and with no list in memory: the replied orders sorted
  by time to first reply (``_id`` breaking ties), numbered up and down within each group
  and over all of them (``$documentNumber`` windows), so each row knows its rank and its
  group's size; only the rows at the ranks a percentile needs come back (at most four per
  group). A percentile is linearly interpolated between the two nearest ranks (as Python's
  ``statistics.quantiles(method="inclusive")``, NumPy's default and MongoDB 8's
  ``continuous``): the median of an even count is the mean of the middle two.

Time to first reply is elapsed time (what the sender waited), in seconds. ``on_time`` counts
first replies made by their deadline; ``due`` those made, plus those not made whose deadline
has passed: the on-time rate is ``on_time / due``. ``overdue_now``: open orders past the
deadline of their current stage. A report is as of the whole minute (``generated_at``): what
passed within the current minute counts from the next one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from typing import Any

from models.users import Caller
from models.workorders import CHANNEL_NAMES, Channel, GroupBy, StatsOut, StatsQuery, StatsRow
from server.identity.errors import NoCourt, OtherCourt
from server.platform.calendar import Calendars
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.errors import UnknownCourt
from server.workorders import rollups
from server.workorders.service import WorkOrderService
from server.workorders.store import PERCENTILES, Pipeline, match_stage

KEYS: dict[GroupBy, Any] = {
    GroupBy.assignee: "$assignee_id",
    GroupBy.category: "$category",
    GroupBy.court: "$court_id",
    # orders from before 1+N carry no channel: they came from the mini-program
    GroupBy.channel: {"$ifNull": ["$channel", Channel.miniprogram.value]},
}
COUNTS = (
    *("received", "replied", "closed", "due", "on_time", "overdue_now", "rated", "rating_sum"),
    "called_back",
)
CSV_COLUMNS = (
    *("key", "name", "received", "answered", "reply_rate", "called_back", "callback_rate"),
    *("due", "on_time", "on_time_rate", "median_first_reply_seconds"),
    *("p90_first_reply_seconds", "closed", "overdue_now", "rated", "average_rating"),
)
DESK = "服务台（未分派）"


def ranks(n: int, p: float) -> tuple[int, int, float]:
    """The 1-based ranks around the ``p`` quantile of ``n`` sorted values, and the weight
    of the upper one."""
    r = p * (n - 1)
    return math.floor(r) + 1, math.ceil(r) + 1, r - math.floor(r)


class WorkOrderStats:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        calendars: Calendars,
        orders: WorkOrderService,
    ) -> None:
        self.store = orders.store
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.orders = orders

    # ---- what the caller may count

    def _courts(self, caller: Caller, query: StatsQuery) -> list[str]:
        if caller.court_id is not None:
            if query.court_id not in (None, caller.court_id):
                raise OtherCourt("只能查看本院的统计")
            return [caller.court_id]
        if not caller.oversees:
            raise NoCourt()
        if query.court_id is None:
            return [c.id for c in self.settings.courts]
        if self.settings.court(query.court_id) is None:
            raise UnknownCourt(details=[{"loc": ["court_id"], "msg": "unknown court"}])
        return [query.court_id]

    def _match(self, courts: list[str], query: StatsQuery) -> dict[str, Any]:
        """The indexed first stage: created between the two court dates, inclusive."""
        cal = self.calendars.for_court(courts[0])
        return match_stage(cal, courts, query.date_from, query.date_to)

    @staticmethod
    def _own(caller: Caller) -> Pipeline:
        """A judge's or clerk's own orders only: assigned to them or on their cases."""
        if caller.oversees:
            return []
        uid = str(caller.id)
        return [{"$match": {"$or": [{"assignee_id": uid}, {"case_staff_ids": uid}]}}]

    # ---- the report

    async def stats(self, caller: Caller, query: StatsQuery) -> StatsOut:
        """The report over orders created from ``from`` to ``to`` (court dates): from the
        rollups for a court's whole view; from the orders for a judge's or clerk's own (a
        rollup cell does not know whose case an order is on, and their orders are few)."""
        courts = self._courts(caller, query)
        now = rollups.as_of(self.clock.now())  # as of the minute: see rollups
        if caller.oversees:
            counts, groups, overall = await self._rolled(courts, query, now)
        else:
            counts, groups, overall = await self.aggregated(caller, courts, query, now)
        return await self._report(query, courts, now, counts, groups, overall)

    async def reference(self, caller: Caller, query: StatsQuery) -> StatsOut:
        """The report from the orders whoever asks: what the rollups must give (the tests
        and the bench compare the two)."""
        courts = self._courts(caller, query)
        now = rollups.as_of(self.clock.now())  # as of the minute: see rollups
        return await self._report(
            query, courts, now, *await self.aggregated(caller, courts, query, now)
        )

    async def aggregated(
        self, caller: Caller, courts: list[str], query: StatsQuery, now: dt.datetime
    ) -> tuple[dict[Any, dict[str, int]], dict[Any, dict[str, float]], dict[str, float]]:
        """The counts and percentiles from the orders themselves (and the reference the
        rollups are tested against)."""
        head = [self._match(courts, query), *self._own(caller)]
        key = KEYS[query.group_by]
        counts = await self._counts(head, key, now)
        groups, overall = await self._percentiles(head, key, len(counts) > 1)
        return counts, groups, overall

    async def _rolled(
        self, courts: list[str], query: StatsQuery, now: dt.datetime
    ) -> tuple[dict[Any, dict[str, int]], dict[Any, dict[str, float]], dict[str, float]]:
        """The same from the rollups' cells of the range, merged."""
        cells = await self.store.rollup_cells(
            courts, query.group_by.value, query.date_from, query.date_to
        )
        merged, total = rollups.merge(cells, now)
        counts = {k: {f: m.counts[f] for f in COUNTS} for k, m in merged.items()}
        return counts, {k: _exact(m) for k, m in merged.items()}, _exact(total)

    async def _report(
        self,
        query: StatsQuery,
        courts: list[str],
        now: dt.datetime,
        counts: dict[Any, dict[str, int]],
        groups: dict[Any, dict[str, float]],
        overall: dict[str, float],
    ) -> StatsOut:
        rows = [await self._row(query.group_by, k, c, groups.get(k, {})) for k, c in counts.items()]
        rows.sort(key=lambda r: (-r.received, str(r.key)))
        total = {f: sum(c[f] for c in counts.values()) for f in COUNTS}
        return StatsOut(
            date_from=query.date_from,
            date_to=query.date_to,
            group_by=query.group_by,
            court_ids=courts,
            generated_at=now,
            total=_row(None, "合计", total, overall),
            rows=rows,
        )

    async def _counts(
        self, head: Pipeline, key: str, now: dt.datetime
    ) -> dict[Any, dict[str, int]]:
        rows = await self.store.count_rows(head, key, now)
        return {raw["_id"]: {f: int(raw.get(f) or 0) for f in COUNTS} for raw in rows}

    async def _percentiles(
        self, head: Pipeline, key: str, several: bool
    ) -> tuple[dict[Any, dict[str, float]], dict[str, float]]:
        """{group: {p50, p90}} and the same over every group (numbered again only when
        there are ``several`` groups: over one group the two are the same)."""
        by_group: dict[Any, tuple[int, dict[int, float]]] = {}
        overall: tuple[int, dict[int, float]] = (0, {})
        for raw in await self.store.percentile_rows(head, key, several):
            _, values = by_group.setdefault(raw["g"], (int(raw["n"]), {}))
            values[int(raw["up"])] = float(raw["s"])
            overall = (int(raw["all_n"]), overall[1])
            overall[1][int(raw["all_up"])] = float(raw["s"])
        return {g: _quantiles(*v) for g, v in by_group.items()}, _quantiles(*overall)

    async def _row(
        self, group_by: GroupBy, key: Any, counts: dict[str, int], quantiles: dict[str, float]
    ) -> StatsRow:
        if group_by == GroupBy.assignee:
            name = await self.orders.staff_name(key) if key else DESK
        elif group_by == GroupBy.court:
            court = self.settings.court(str(key))
            name = court.name if court else None
        elif group_by == GroupBy.channel:
            name = CHANNEL_NAMES.get(Channel(key)) if key in set(Channel) else str(key)
        else:
            name = key
        return _row(key, name, counts, quantiles)


def _exact(merged: rollups.Merged) -> dict[str, float]:
    """The percentiles of a merged distribution, by the same ranks and interpolation."""
    n = merged.counts["replied"]
    wanted = [r for p in PERCENTILES for r in ranks(n, p)[:2]] if n else []
    return _quantiles(n, merged.at_ranks(wanted))


def _quantiles(n: int, values: dict[int, float]) -> dict[str, float]:
    found: dict[str, float] = {}
    if n < 1:
        return found
    for p in PERCENTILES:
        low, high, weight = ranks(n, p)
        if low in values and high in values:
            found[f"p{round(p * 100)}"] = values[low] + weight * (values[high] - values[low])
    return found


def _row(key: Any, name: str | None, c: dict[str, int], q: dict[str, float]) -> StatsRow:
    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return StatsRow(
        key=None if key is None else str(key),
        name=name,
        received=c["received"],
        replied=c["replied"],
        closed=c["closed"],
        reply_rate=share(c["replied"], c["received"]),
        answered=c["replied"],
        called_back=c["called_back"],
        callback_rate=share(c["called_back"], c["received"]),
        due=c["due"],
        on_time=c["on_time"],
        on_time_rate=share(c["on_time"], c["due"]),
        median_first_reply_seconds=q.get("p50"),
        p90_first_reply_seconds=q.get("p90"),
        overdue_now=c["overdue_now"],
        rated=c["rated"],
        average_rating=share(c["rating_sum"], c["rated"]),
    )


def to_csv(report: StatsOut) -> str:
    """The report as CSV (UTF-8 with a BOM, so that Excel reads the Chinese names): a row
    per group, then the total."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in [*report.rows, report.total]:
        values = row.model_dump()
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()
