"""The case rows at ``--cases`` (and ``--cases-large``): a case's detail and GET /cases as a
litigant and as a clerk, each through the API and raw."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.database import Database

from bench import caseseed as cs
from bench import raw, shapes
from bench.filingrun import Filings
from bench.pairs import RawCall, pair
from bench.report import CASE_ROWS, case_keys, size_label
from bench.seed import client
from bench.stack import DATABASE, Stack
from server.cases.store import MAX_DOCUMENTS, MAX_HEARINGS, SUMMARY_FIELDS, party_scopes
from server.platform.mongo import first_page

if TYPE_CHECKING:
    from bench.run import Bench

SLOW = 1200  # seconds an API request alone may take (a safety net; none should come close)


def run_cases(bench: Bench, stack: Stack, filings: Filings, user_ids: list[ObjectId]) -> None:
    o = bench.opts
    litigant, clerk = filings.filers[0], filings.clerk
    cipher = stack.cipher
    with client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        seeder = cs.CaseSeeder(db, cipher, litigant, [str(i) for i in user_ids], clerk.user_id)
        grow(bench, seeder, o.cases)
        with bench.stage("check a case accepted through the API against the seeded ones"):
            case_id = cs.api_case(stack.api, litigant, clerk, db)
            cs.check_shape(db, case_id, seeder.mine[0])
        bench.note(
            f"case detail: the litigant's case {case_id}, accepted through the API (filing, "
            f"submit, clerk's accept); the litigant is a party of {len(seeder.mine) + 1} cases"
        )
        mine, court = party_scopes(litigant.user_id, {}), cs.court_scopes(shapes.COURT)
        rows = case_rows(case_id, litigant.token, clerk.token, mine, court)
        for size in (o.cases, o.cases_large):
            if size <= 0:
                continue
            grow(bench, seeder, size)
            label = size_label(size)
            with bench.stage(f"check GET {cs.CASES_PATH} (litigant, clerk) against raw at {label}"):
                cs.check_list(stack.api, litigant.token, db, mine)
                cs.check_list(stack.api, clerk.token, db, court)
            note_plans(bench, db, case_id, litigant.user_id, label)
            for kind, path, token, raw_call in rows:
                api_name, raw_name = CASE_ROWS[kind]
                names, url = (f"{api_name} {label}", f"{raw_name} {label}"), f"{stack.api}{path}"
                pair(bench, names, case_keys(kind, size), url, token, raw_call, timeout=SLOW)
    facts = {"seeded": seeder.count, "seconds": round(seeder.seconds, 1)}
    bench.fact("cases", {**facts, "litigant_cases": len(seeder.mine) + 1})


def case_rows(
    case_id: str, litigant_token: str, clerk_token: str, mine: cs.Scopes, court: cs.Scopes
) -> list[tuple[str, str, str, RawCall]]:
    """Each of ``CASE_ROWS``' kinds: the API path, whose token, and the raw reads."""
    detail = f"/api/v1/cases/{case_id}"
    return [
        ("detail", detail, litigant_token, lambda d: raw_detail(d, ObjectId(case_id))),
        ("party", cs.CASES_PATH, litigant_token, lambda d: raw_list(d, mine)),
        ("clerk", cs.CASES_PATH, clerk_token, lambda d: raw_list(d, court)),
    ]


def note_plans(
    bench: Bench, db: Database[dict[str, Any]], case_id: str, user_id: str, label: str
) -> None:
    found = cs.plans(db, case_id, user_id)
    bench.fact(f"case plans at {label}", found)
    bench.note(f"case query plans at {label}: " + "; ".join(f"{k}: {v}" for k, v in found.items()))


def grow(bench: Bench, seeder: cs.CaseSeeder, total: int) -> None:
    if seeder.count >= total:
        return
    before = seeder.count
    with bench.stage(f"insert {total - before} cases with pymongo (to {total})"):
        took = seeder.grow_to(total)
    added = seeder.count - before
    bench.fact(f"cases seeded to {total} (s)", round(took, 1))
    bench.note(
        f"seeded {added} cases (to {seeder.count}) in {took:.1f} s "
        f"({added / max(took, 1e-9):.0f}/s)"
    )


async def raw_detail(db: raw.Db, case_id: ObjectId) -> bool:
    """``CaseViews.detail`` for a party: the case, its served documents, hearings and fee
    notices, one after another."""
    case = await db["cases"].find_one({"_id": case_id})
    sid = str(case_id)
    documents = db["served_documents"].find({"case_id": sid}).sort([("_id", 1)])
    await documents.limit(MAX_DOCUMENTS).to_list()
    hearings = db["hearings"].find({"case_id": sid}).sort([("starts_at", 1)])
    await hearings.limit(MAX_HEARINGS).to_list()
    notices = db["fee_notices"].find({"case_id": sid}).sort([("_id", 1)])
    await notices.limit(50).to_list()
    return case is not None


async def raw_list(db: raw.Db, scopes: cs.Scopes) -> bool:
    """``CaseViews.list_for``'s first page, by the server's ``first_page`` on the bare driver."""
    found, now, col = 0, dt.datetime.now(dt.UTC), db["cases"]
    for index, scope, indexed in scopes:
        more: dict[str, Any] = {
            "field": "last_activity_at",
            "now": now,
            "indexed_scope": indexed,
            "index": index,
        }
        found += len(await first_page(col, scope, SUMMARY_FIELDS, cs.PAGE + 1, **more))
    return found > 0
