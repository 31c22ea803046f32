"""Case lookup: seeded cases, the API case, the checks and plans, the case rows (README)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from bench import filing as fs
from bench import raw, seed, shapes
from bench.filing import Filings
from bench.raw import RawCall, Row, pair
from bench.report import CASE_ROWS, size_label
from bench.stack import DATABASE, Stack
from server.cases.store import MAX_DOCUMENTS, MAX_HEARINGS, SUMMARY_FIELDS, Scope, party_scopes
from server.platform.mongo import first_page

if TYPE_CHECKING:
    from bench.run import Bench


COURT_CODE, TYPE_CODE = "京0105", "民初"  # config.yaml: bj-chaoyang, civil
HISTORY_DAYS = 3 * 365  # cases were accepted over the last three years
MINE = 40  # cases the signed-in litigant is a party of: two pages
PROCEDURES = {"ordinary": "普通程序", "simplified": "简易程序"}
PAGE = 20  # GET /cases' default limit
CASES_PATH = "/api/v1/cases"
ORDER = [("last_activity_at", -1), ("_id", -1)]  # newest_first's
SLOW = 1200  # seconds an API request alone may take (a safety net; none should come close)
Scopes = list[Scope]
ACCEPTED = {  # what every seeded case shares: a civil case just accepted, not yet assigned
    **{"court_id": shapes.COURT, "type_code": TYPE_CODE, "case_kind": "civil", "version": 1},
    **{"status": "accepted", "amount_fen": 10_000_000, "fee_relief": None},
    **{key: [] for key in ("third_parties", "agent_ids", "green_channel")},  # never mutated
    **dict.fromkeys(("judge_id", "clerk_id")),
}


COURT_SCOPES: Scopes = [(None, {"court_id": shapes.COURT}, True)]  # CaseViews._scopes, clerk


def case_doc(
    cipher: shapes.Cipher,
    rng: random.Random,
    numbers: seed.Numbers,
    at: dt.datetime,
    plaintiff: tuple[shapes.Person, str],
    staff_id: str,
    procedure: str | None = None,
) -> dict[str, Any]:
    """``CaseService.case_document``: civil, numbered by ``numbers``, accepted at ``at``, filed
    by the plaintiff (person, account); no agent, relief, green."""
    person, user_id = plaintiff
    year = at.astimezone(shapes.SHANGHAI).year
    seq = numbers.next(year)
    case_no = f"（{year}）{COURT_CODE}{TYPE_CODE}{seq}号"
    procedure = procedure or rng.choice(tuple(PROCEDURES))
    plaintiffs = [{**shapes.party_doc(person, cipher), "user_id": user_id}]
    defendants = [shapes.party_doc(shapes.person(rng), cipher, with_phone=False)]
    code = "".join(rng.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
    note = f"{case_no}，适用{PROCEDURES[procedure]}"
    return {
        **ACCEPTED,
        "_id": ObjectId(),
        "case_no": case_no,
        "seq": seq,
        "year": year,
        "filing_id": str(ObjectId()),
        "cause": rng.choice(shapes._CAUSES),
        "procedure": procedure,
        "plaintiffs": plaintiffs,
        "defendants": defendants,
        "party_user_ids": [user_id],
        "filer_id": user_id,
        "query_code_cipher": cipher.encrypt(code, b"query_code"),
        "timeline": [{"at": at, "kind": "立案", "by": staff_id, "note": note}],
        **dict.fromkeys(("accepted_at", "created_at", "updated_at", "last_activity_at"), at),
    }


@dataclass
class CaseSeeder:
    """Inserts cases in batches; the first ``MINE`` have the litigant as their plaintiff."""

    db: seed.Db
    cipher: shapes.Cipher
    litigant: fs.Filer
    users: list[str]  # other litigants, each the plaintiff of their own cases
    staff_id: str
    count: int = 0
    mine: list[ObjectId] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(4))

    def grow_to(self, bench: Bench, total: int) -> None:
        if self.count >= total:
            return
        now, numbers = dt.datetime.now(dt.UTC), case_numbers(self.db)
        docs = (self._next(now, numbers, n < MINE) for n in range(self.count, total))
        with bench.inserting(total - self.count, f"cases with pymongo (to {total})"):
            self.count += seed.insert_batches(self.db["cases"], docs)
            numbers.commit()

    def _next(self, now: dt.datetime, numbers: seed.Numbers, mine: bool) -> dict[str, Any]:
        rng = self.rng
        at = now - dt.timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86400))
        if mine:
            filer, person = self.litigant.user_id, self.litigant.person
        else:  # another litigant's own filing: the plaintiff, linked by identity
            filer, person = rng.choice(self.users), shapes.person(rng)
        doc = case_doc(self.cipher, rng, numbers, at, (person, filer), self.staff_id)
        if filer == self.litigant.user_id:
            self.mine.append(doc["_id"])
        return doc


def case_numbers(db: seed.Db) -> seed.Numbers:
    return seed.Numbers(db, f"case_no|{shapes.COURT}|{TYPE_CODE}")


def api_case(api: str, litigant: fs.Filer, clerk: seed.SignedIn, db: seed.Db) -> str:
    _, filed = fs.api_filing(api, litigant, db)
    path = f"{api}/api/v1/review/filings/{filed['_id']}/accept"
    return str(seed.call(path, {"procedure": "ordinary"}, clerk.token)["case_id"])


def sorted_page(db: seed.Db, scopes: Scopes) -> list[str]:
    """One sorted query per scope, merged as ``CaseViews.list_for`` merges them."""
    found = {}
    for index, scope, _ in scopes:
        cursor = db["cases"].find(scope, SUMMARY_FIELDS).sort(ORDER)
        cursor = cursor.hint(index) if index else cursor
        found.update({d["_id"]: d for d in cursor.limit(PAGE + 1)})
    ordered = sorted(found.values(), key=lambda d: (d["last_activity_at"], d["_id"]))[::-1]
    return [str(d["_id"]) for d in ordered[:PAGE]]


def plans(db: seed.Db, case_id: str, user_id: str) -> dict[str, str]:

    def find(flt: dict[str, Any], sort: Any, limit: int, coll: str = "cases", **more: Any) -> Any:
        return {"find": coll, "filter": flt, "sort": dict(sort), "limit": limit, **more}

    first_window = {"last_activity_at": {"$gt": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)}}
    scopes = party_scopes(user_id, {}) + [(i, {**s, **first_window}, w) for i, s, w in COURT_SCOPES]
    found = {
        f"list {i or next(iter(s))}": find(
            s, ORDER, PAGE + 1, projection=SUMMARY_FIELDS, **({"hint": i} if i else {})
        )
        for i, s, _ in scopes
    }
    on_case = {"case_id": case_id}
    found["detail case"] = find({"_id": ObjectId(case_id)}, [], 1)
    found["detail hearings"] = find(on_case, [("starts_at", 1)], MAX_HEARINGS, "hearings")
    found["detail documents"] = find(on_case, [("_id", 1)], MAX_DOCUMENTS, "served_documents")
    return {name: seed.explain(db, command) for name, command in found.items()}


def run_cases(bench: Bench, stack: Stack, filings: Filings, user_ids: list[ObjectId]) -> None:
    litigant, clerk = filings.filers[0], filings.clerk
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        seeder = CaseSeeder(db, stack.cipher, litigant, [str(i) for i in user_ids], clerk.user_id)
        seeder.grow_to(bench, bench.opts.cases)
        with bench.stage("check a case accepted through the API against the seeded ones"):
            case_id = api_case(stack.api, litigant, clerk, db)
            ids = (ObjectId(case_id), seeder.mine[0])
            theirs, ours = (db["cases"].find_one({"_id": i}) for i in ids)
            seed.check_shapes("cases", [(theirs, ours, "case")])
        bench.note(
            f"case detail: the litigant's case {case_id}, accepted through the API (filing, "
            f"submit, clerk's accept); the litigant is a party of {len(seeder.mine) + 1} cases"
        )
        mine, court = party_scopes(litigant.user_id, {}), COURT_SCOPES
        rows: list[tuple[str, str, str, RawCall]] = [  # CASE_ROWS' kinds: path, token, raw
            ("detail", f"/api/v1/cases/{case_id}", litigant.token, lambda d: raw_detail(d, ids[0])),
            ("party", CASES_PATH, litigant.token, lambda d: raw_list(d, mine)),
            ("clerk", CASES_PATH, clerk.token, lambda d: raw_list(d, court)),
        ]
        for size in bench.opts.case_sizes():
            seeder.grow_to(bench, size)
            label = size_label(size)
            with bench.stage(f"check GET {CASES_PATH} (litigant, clerk) against raw at {label}"):
                for token, scopes in ((litigant.token, mine), (clerk.token, court)):
                    expected = sorted_page(db, scopes)
                    seed.check_page(f"{stack.api}{CASES_PATH}", token, expected, timeout=SLOW)
            found = plans(db, case_id, litigant.user_id)
            bench.fact(f"case plans at {label}", found)
            text = "; ".join(f"{k}: {v}" for k, v in found.items())
            bench.note(f"case plans at {label}: {text}")
            for kind, path, token, raw_call in rows:
                api_name, raw_name = CASE_ROWS[kind]
                names, url = (f"{api_name} {label}", f"{raw_name} {label}"), f"{stack.api}{path}"
                pair(bench, Row(names, f"case_{kind}_{label}", url, token, raw_call, timeout=SLOW))
    bench.fact("cases", {"seeded": seeder.count, "litigant_cases": len(seeder.mine) + 1})


async def raw_detail(db: raw.Db, case_id: ObjectId) -> bool:
    """``CaseViews.detail`` for a party: case, documents, hearings, fee notices in turn."""
    case = await db["cases"].find_one({"_id": case_id})
    sid = str(case_id)
    documents = db["served_documents"].find({"case_id": sid}).sort([("_id", 1)])
    await documents.limit(MAX_DOCUMENTS).to_list()
    hearings = db["hearings"].find({"case_id": sid}).sort([("starts_at", 1)])
    await hearings.limit(MAX_HEARINGS).to_list()
    notices = db["fee_notices"].find({"case_id": sid}).sort([("_id", 1)])
    await notices.limit(50).to_list()
    return case is not None


async def raw_list(db: raw.Db, scopes: Scopes) -> bool:
    """``CaseViews.list_for``'s first page, by the server's ``first_page`` on the bare driver."""
    found, now, col = 0, dt.datetime.now(dt.UTC), db["cases"]
    for index, scope, indexed in scopes:
        more: dict[str, Any] = {"field": "last_activity_at", "now": now, "indexed_scope": indexed}
        found += len(await first_page(col, scope, SUMMARY_FIELDS, PAGE + 1, index=index, **more))
    return found > 0
