"""Each capability owns its collections: only the store of the package that owns a collection
(``server/<pkg>/store.py``) reads or writes it; the package's services call their store, and
every other capability calls that package's services.

Each package of ``server/`` that owns collections names them in its ``indexes`` module
(``COLLECTIONS``, beside its ``INDEXES``); ``server.platform.db.ownership()`` gathers them.
This check parses every module of ``server/`` and ``handlers/`` with ``ast`` and finds each
place that reaches a collection:

- ``db["x"]`` (a string, or an f-string of module constants), ``db.x`` and
  ``db.get_collection("x")``, on anything named ``db`` or ``database`` (or ``self.db`` ...);
- a GridFS bucket, ``AsyncGridFSBucket(db, bucket_name=...)`` (its ``.files`` and ``.chunks``);
- a store attribute of another object: ``self.cases.cases.find(...)``, ``other.col`` passed
  to a call or assigned, where ``cases`` or ``col`` is an attribute that some class binds to a
  collection (``self.col = db["workorders"]``).

It fails when a module reaches a collection that its package does not own (the modules at the
top of ``server/`` and the handlers own none), or one that no package owns, and when code
reaches into another object's collection handle even within the package (call the method of
the object that holds it). Run this module
(``python -m tests.test_ownership``) to print the ownership map and who touches what.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pymongo.asynchronous.database import AsyncDatabase

from server.platform.db import all_indexes, ownership

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("server", "handlers")
DATABASE_NAMES = {"db", "database", "_db"}
#: the attributes of a database that are not collections (``db.command``, ``db.client`` ...)
DATABASE_ATTRS = {a for a in dir(AsyncDatabase) if not a.startswith("_")}
#: what is done with a collection (or a GridFS bucket) rather than with a service
COLLECTION_CALLS = {
    "aggregate",
    "bulk_write",
    "count_documents",
    "delete_many",
    "delete_one",
    "distinct",
    "estimated_document_count",
    "find",
    "find_one",
    "find_one_and_delete",
    "find_one_and_replace",
    "find_one_and_update",
    "insert_many",
    "insert_one",
    "replace_one",
    "update_many",
    "update_one",
    "watch",
    "list_indexes",
    "create_index",
    "create_indexes",
    "drop",
    "drop_index",
    "upload_from_stream",
    "upload_from_stream_with_id",
    "open_download_stream",
    "open_upload_stream",
    "open_upload_stream_with_id",
    "download_to_stream",
}
#: the application's containers of services and of settings: what hangs from them is a service
#: or a setting (``self.services.hearings``, ``settings.cases``), never a store's collection
CONTAINERS = {"services", "settings", "config"}
GRIDFS_CLASSES = {"AsyncGridFSBucket", "GridFSBucket", "AsyncGridFS", "GridFS"}
UNRESOLVED = "<not a constant>"
#: modules that reach collections by a name held in a variable, and why that is right
BY_NAME = {
    "server/platform/db.py": "ensure_indexes creates the indexes each package declares",
}


@dataclass(frozen=True)
class Touch:
    module: str  # "server/cases/views.py"
    line: int
    collection: str
    how: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.how} -> {self.collection}"


def package_of(module: str) -> str | None:
    """``server/cases/views.py`` -> ``cases``; None for the top of ``server/`` and handlers."""
    parts = Path(module).parts
    return parts[1] if parts[0] == "server" and len(parts) > 2 else None


def is_database(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in DATABASE_NAMES
    return isinstance(node, ast.Attribute) and node.attr in DATABASE_NAMES


def constants(tree: ast.Module) -> dict[str, str]:
    """The module's string constants (``BUCKET = "files"``)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def name_of(node: ast.expr, consts: dict[str, str]) -> str:
    """A collection's name from a constant, a module constant or an f-string of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            part = name_of(inner, consts)
            if part == UNRESOLVED:
                return UNRESOLVED
            parts.append(part)
        return "".join(parts)
    return UNRESOLVED


def direct(node: ast.AST, consts: dict[str, str]) -> list[tuple[str, str]]:
    """(collection, how) when ``node`` itself reaches a collection of the database."""
    if isinstance(node, ast.Subscript) and is_database(node.value):
        return [(name_of(node.slice, consts), "db[...]")]
    if (
        isinstance(node, ast.Attribute)
        and is_database(node.value)
        and node.attr not in DATABASE_ATTRS
        and not node.attr.startswith("_")
    ):
        return [(node.attr, "db.<name>")]
    if not isinstance(node, ast.Call):
        return []
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "get_collection" and node.args:
        return [(name_of(node.args[0], consts), "get_collection(...)")]
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if called in GRIDFS_CLASSES:
        bucket = next((k.value for k in node.keywords if k.arg == "bucket_name"), None)
        root = name_of(bucket, consts) if bucket is not None else "fs"
        return [(f"{root}.files", called), (f"{root}.chunks", called)]
    return []


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def store_attributes(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Attribute name -> the collections some class binds it to (``self.col = db["x"]``)."""
    found: dict[str, set[str]] = defaultdict(set)
    for tree in trees.values():
        consts = constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign):
                continue
            reached = direct(node.value, consts)
            for target in node.targets:
                if (
                    reached
                    and isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    found[target.attr].update(c for c, _ in reached)
    return found


def names_in(node: ast.expr) -> list[str]:
    """``self.payments`` -> ["self", "payments"]."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return names[::-1]


def likely(candidates: set[str], chain: list[str]) -> set[str]:
    """Of the collections a shared attribute name (``col``) is bound to, those that the
    object's own name points at (``self.payments.col``: payments; ``orders.col``:
    workorders); all of them when none does."""
    named = {c for c in candidates if any(n in c for n in chain if len(n) > 3)}
    return named or candidates


def touches(module: str, tree: ast.Module, stores: dict[str, set[str]]) -> list[Touch]:
    """Every place in the module that reaches a collection."""
    consts = constants(tree)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[Touch] = []
    for node in ast.walk(tree):
        for collection, how in direct(node, consts):
            found.append(Touch(module, node.lineno, collection, how))
        if not isinstance(node, ast.Attribute) or node.attr not in stores:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue  # the module's own handle, already seen where it was bound
        chain = names_in(node.value)
        if is_database(node.value) or CONTAINERS & set(chain):
            continue
        parent = parents.get(node)
        used = (
            isinstance(parent, ast.Attribute) and parent.attr in COLLECTION_CALLS
        ) or isinstance(parent, ast.Call | ast.Assign | ast.keyword | ast.Return)
        if isinstance(parent, ast.Call) and parent.func is node:
            used = False  # calling a service's method that shares a store attribute's name
        if used:
            how = f"store attribute .{node.attr} of another object"
            for collection in sorted(likely(stores[node.attr], chain)):
                found.append(Touch(module, node.lineno, collection, how))
    return found


def violations(
    found: list[Touch], owners: dict[str, tuple[str, ...]]
) -> list[tuple[Touch, str | None]]:
    """Each touch of a collection that the module's package does not own, with the owner,
    and each reach into another object's collection handle."""
    owner_of = {c: pkg for pkg, cols in owners.items() for c in cols}
    by_place: dict[tuple[str, int, str], list[Touch]] = defaultdict(list)
    for t in found:
        by_place[(t.module, t.line, t.how)].append(t)
    bad = []
    for group in by_place.values():
        if group[0].module in BY_NAME and all(t.collection == UNRESOLVED for t in group):
            continue
        pkg = package_of(group[0].module)
        foreign = all(owner_of.get(t.collection) != pkg for t in group)
        beside = not is_store(group[0].module)
        if pkg is None or foreign or beside or group[0].how.startswith("store attribute"):
            bad.extend((t, owner_of.get(t.collection)) for t in group)
    return bad


def is_store(module: str) -> bool:
    """Within a package, only its store reads and writes: ``store.py`` (or a module of a
    ``store/`` folder). Each platform module that keeps a collection (leases, idempotency,
    audit, counters) is that collection's store, and ``indexes.py`` declares indexes."""
    parts = Path(module).parts
    return (
        len(parts) > 2
        and parts[0] == "server"
        and (parts[1] == "platform" or "store" in parts or parts[-1] in {"store.py", "indexes.py"})
    )


def modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ROOT)): parse(path)
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def everything() -> tuple[dict[str, tuple[str, ...]], list[Touch]]:
    trees = modules()
    stores = store_attributes(trees)
    return ownership(), [t for m, tree in trees.items() for t in touches(m, tree, stores)]


def ownership_map(owners: dict[str, tuple[str, ...]], found: list[Touch]) -> str:
    users: dict[str, set[str]] = defaultdict(set)
    for t in found:
        users[t.collection].add(t.module)
    lines = []
    for pkg, cols in owners.items():
        lines.append(f"{pkg}:")
        for c in cols:
            lines.append(f"  {c:<18} {', '.join(sorted(users.get(c, set()))) or '-'}")
    return "\n".join(lines)


# ---- the checks


def test_every_module_touches_only_its_packages_collections() -> None:
    owners, found = everything()
    print("\n" + ownership_map(owners, found))
    bad = violations(found, owners)
    assert not bad, "\n".join(
        f"{t} (owned by {owner or 'no package'}; call its service instead)" for t, owner in bad
    )
    # the scan does find the stores: each declared collection is reached by its store
    assert {t.collection for t in found} >= {c for cols in owners.values() for c in cols}


def test_each_collection_has_one_owner_that_declares_its_indexes() -> None:
    owners = ownership()
    declared = [c for cols in owners.values() for c in cols]
    assert len(declared) == len(set(declared)), declared
    assert set(all_indexes()) <= set(declared)


# ---- the checker itself catches what it should

STORES = {"col": {"workorders", "payments"}, "filings": {"filings"}, "cases": {"cases"}}
OWNERS = {
    "cases": ("cases", "hearings"),
    "filing": ("filings",),
    "workorders": ("workorders",),
    "files": ("files.files", "files.chunks"),
    "platform": ("leases",),
}


def check(source: str, module: str = "server/cases/store.py") -> list[str]:
    found = touches(module, ast.parse(source), STORES)
    return sorted(f"{t.collection} by {t.how}" for t, _ in violations(found, OWNERS))


def test_checker_refuses_another_packages_collection() -> None:
    assert check('x = db["filings"]') == ["filings by db[...]"]
    assert check("x = self.db.filings") == ["filings by db.<name>"]
    assert check('x = database.get_collection("filings")') == ["filings by get_collection(...)"]
    assert check("AsyncGridFSBucket(db, bucket_name=B)", "server/cases/x.py") == [
        f"{UNRESOLVED}.chunks by AsyncGridFSBucket",
        f"{UNRESOLVED}.files by AsyncGridFSBucket",
    ]
    assert check('B = "files"\nAsyncGridFSBucket(db, bucket_name=B)') == [
        "files.chunks by AsyncGridFSBucket",
        "files.files by AsyncGridFSBucket",
    ]


def test_checker_refuses_another_objects_store_attribute() -> None:
    bad = "store attribute .filings of another object"
    assert check("await self.filing_service.filings.find_one({})") == [f"filings by {bad}"]
    assert check("await update_returning(self.filing_service.filings, {}, {})") == [
        f"filings by {bad}"
    ]
    assert check("x = services.filings") == []  # the app's services, not a store
    assert check("x = self.filing_service.filings") == [f"filings by {bad}"]
    # even the owner's other modules call the store rather than take its handle
    owned = "store attribute .col of another object"
    assert check("self.col = orders.col", "server/workorders/x.py") == [f"workorders by {owned}"]


def test_checker_refuses_unowned_and_unnamed_collections() -> None:
    assert check('x = db["nobody"]') == ["nobody by db[...]"]
    assert check("x = db[name]") == [f"{UNRESOLVED} by db[...]"]
    assert check('x = db["cases"]', "server/app.py") == ["cases by db[...]"]
    assert check('x = db["cases"]', "handlers/cases.py") == ["cases by db[...]"]


def test_checker_refuses_the_owners_modules_beside_its_store() -> None:
    assert check('x = db["cases"]', "server/cases/views.py") == ["cases by db[...]"]
    assert check('x = db["cases"]', "server/cases/store.py") == []
    assert check('x = db["leases"]', "server/platform/lease.py") == []


def test_checker_allows_the_owner_and_service_calls() -> None:
    assert check('self.cases = db["cases"]\nself.h = db.hearings') == []
    assert check('B = "hearings"\nx = db[f"{B}"]') == []
    assert check("await self.filings.load(filing_id)") == []  # a service's method
    assert check("await self.filings(filing_id)") == []
    assert check('await db.command("ping")', "server/main.py") == []


if __name__ == "__main__":
    owners, found = everything()
    print(ownership_map(owners, found))
    for touch in sorted(found, key=str):
        print(touch, file=sys.stderr)
