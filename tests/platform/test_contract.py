"""The API's contract: Schemathesis against the running server, as every role.

The generated OpenAPI document is the contract. Schemathesis (pinned in pyproject) runs all
its checks through its examples, coverage, fuzzing and stateful phases over every documented
operation, once as no one and once as each role, with real ids for the path parameters (the
world below: a case paid for and assigned, a draft and a submitted filing, a message, a
lawyer's registration ...). New routes are picked up from the document itself. Bounded by
``MAX_EXAMPLES`` and by running each operation's coverage phase once (as the first role that
may call it): 15.7 minutes for the six roles on a 2-core machine under a load average of ~15.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from tornado.web import Application

from miniapp_stubs.client import MiniProgram, StaffConsole
from miniapp_stubs.emulator import Emulator
from tests.factories import (
    LAWYER_ID,
    Litigant,
    Staff,
    paid_case,
    submitted,
    uid,
    upload,
    written,
)

ROLES = ("anonymous", "litigant", "lawyer", "clerk", "judge", "admin")
MAX_EXAMPLES = 3  # fuzzing cases per operation and phase (coverage adds its own edges)
TIMEOUT = 900

CONFIG = """
[checks.positive_data_acceptance]
# Schema-valid input that the server still refuses, by rules JSON Schema cannot express:
# 400 an opaque cursor not ours; 422 an ID-number checksum, a date off the court calendar,
# fields that depend on each other, control characters in text (refused everywhere).
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "429"]
"""


class World:
    """What the run's path parameters name, and who is signed in as each role."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.tokens: dict[str, str] = {}


async def _case_world(litigant: Litigant, staff: Staff, emulator: Emulator, world: World) -> None:
    case_id, order, plaintiff, _, clerk = await paid_case(litigant, staff, emulator)
    judge = await staff("judge")
    assert (await clerk.assign_case(case_id, uid(judge), uid(clerk))).status == 200
    message = await written(plaintiff, case_id=case_id)
    notes = (await plaintiff.notifications()).body["items"]
    world.ids.update(
        case_id=case_id,
        payment_id=order["payment_id"],
        message_id=message["id"],
        order_id=message["id"],
        notification_id=notes[0]["id"],
        file_id=await upload(plaintiff),
        filing_id=(await submitted(plaintiff))["id"],  # in the review queue of the clerk
    )
    world.tokens.update(litigant=_token(plaintiff), clerk=_token(clerk), judge=_token(judge))


async def _lawyer_world(litigant: Litigant, staff: Staff, world: World) -> None:
    lawyer = await litigant()
    admin = await staff("admin", court_id=None)
    registered = await lawyer.register_lawyer(LAWYER_ID, "北京市某某律师事务所")
    assert registered.status in (200, 201), registered.body
    world.ids["user_id"] = registered.body["id"]
    templates = (await lawyer.get("/api/v1/templates")).body["items"]
    world.ids["template_id"] = templates[0]["id"]
    world.tokens.update(lawyer=_token(lawyer), admin=_token(admin))


def _token(session: MiniProgram | StaffConsole) -> str:
    assert session.token
    return session.token


async def _world(litigant: Litigant, staff: Staff, emulator: Emulator) -> World:
    world = World()
    await _case_world(litigant, staff, emulator, world)
    await _lawyer_world(litigant, staff, world)
    return world


UPLOADS = """
[[operations]]
# Uploads are typed by their bytes (PDF, JPEG or PNG, sniffed): other bytes get a 415, which
# a schema cannot tell from valid ones.
include-operation-id = "FilesHandler.post"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "400", "401", "403", "404", "409", "415", "422", "429"
]
"""

COVERED_ELSEWHERE = """
[[operations]]
# The coverage phase's edge cases (every boundary of every field) run once per operation,
# as the first role that may call it; the other roles fuzz it and chain it statefully.
include-operation-id-regex = {regex}
phases.coverage.enabled = false
"""

REFUSED = """
[[operations]]
# The operations this role may not call: every answer is the refusal (401 or 403) given
# before any input is read, so the coverage phase's edge cases would test nothing more; a
# few cases of the other phases prove the refusal and its shape.
include-operation-id-regex = {regex}
phases.coverage.enabled = false
generation.max-examples = 1
"""


def _refused(spec: dict[str, Any], role: str) -> list[str]:
    """The operation ids the role may not call (the document's ``x-roles``)."""
    ops = [op for methods in spec["paths"].values() for op in methods.values()]
    return [
        op["operationId"]
        for op in ops
        if op.get("security") != [] and role not in op.get("x-roles", [])
    ]


def _covered_elsewhere(spec: dict[str, Any], role: str) -> list[str]:
    """The operations the role may call whose coverage phase an earlier role runs."""
    refused = {r: set(_refused(spec, r)) for r in ROLES}
    ops = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    earlier = ROLES[: ROLES.index(role)]
    return [o for o in ops if o not in refused[role] and any(o not in refused[r] for r in earlier)]


def _block(template: str, ids: list[str]) -> str:
    regex = "^(" + "|".join(re.escape(i) for i in ids) + ")$"
    return template.format(regex=json.dumps(regex)) if ids else ""


def _config(world: World, spec: dict[str, Any], role: str, path: Path) -> Path:
    params = "\n".join(f'"path.{k}" = {json.dumps(v)}' for k, v in sorted(world.ids.items()))
    text = f"[parameters]\n{params}\n{CONFIG}{UPLOADS}"
    text += _block(REFUSED, _refused(spec, role))
    text += _block(COVERED_ELSEWHERE, _covered_elsewhere(spec, role))
    path.write_text(text, encoding="utf-8")
    return path


async def _schemathesis(api_url: str, config: Path, token: str | None, report: Path) -> str:
    args = [
        *("--config-file", str(config)),
        "run",
        f"{api_url}/api/v1/openapi.json",
        *("--checks", "all"),
        *("--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(MAX_EXAMPLES)),
        "--generation-deterministic",  # the same cases every run: a failure can be replayed
        *("--request-timeout", "30"),
        "--continue-on-failure",
        *("--output-sanitize", "false"),  # the test's own throwaway tokens and keys
        *("--report", "junit", "--report-dir", str(report)),
        # Pages, not the JSON API: the console's page and assets and this reference (HTML and
        # static files, tested in a browser by tests/console and below).
        *("--exclude-path-regex", "^/(console|api/docs)"),
    ]
    if token:
        args += ["--header", f"Authorization: Bearer {token}"]
        # Signing out would end the run's own session; the anonymous run covers it, and
        # tests/identity its effect.
        args += ["--exclude-path", "/api/v1/auth/logout"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=report.parent,  # its cache (.schemathesis/) stays out of the repository
    )
    out, _ = await proc.communicate()
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[text.find("FAILURES") :][:30_000]
    return text


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("role", ROLES)
async def test_the_server_keeps_its_documented_contract(
    role: str,
    api_url: str,
    litigant: Litigant,
    staff: Staff,
    emulator: Emulator,
    tmp_path: Path,
    app: Application,
) -> None:
    world = await _world(litigant, staff, emulator)
    config = _config(world, app.settings["openapi"], role, tmp_path / "schemathesis.toml")
    out = await _schemathesis(api_url, config, world.tokens.get(role), tmp_path / "report")
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 50, out[-5000:]


def test_the_document_says_what_the_server_does(app: Application) -> None:
    spec: dict[str, Any] = app.settings["openapi"]
    paths = spec["paths"]
    notify = paths["/api/v1/payments/wechat/notify"]["post"]["responses"]
    assert "204" in notify and "200" not in notify and "content" not in notify["204"]
    fail = notify["401"]["content"]["application/json"]["schema"]
    assert fail["properties"]["code"] == {"type": "string", "const": "FAIL"}
    pay = paths["/api/v1/payments"]["post"]
    assert {"200", "201", "413", "415", "422", "429", "500", "503"} <= set(pay["responses"])
    headers = {p["name"] for p in pay["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key", "X-Request-Id"}
    assert "X-Request-Id" in pay["responses"]["201"]["headers"]
    assert "Idempotent-Replayed" in pay["responses"]["201"]["headers"]
    assert "PaymentHandler.get" in pay["responses"]["201"]["links"]
    fields = spec["components"]["schemas"]["FilingCreate"]["properties"]
    assert fields["plaintiffs"]["type"] == "array" and "anyOf" not in fields["plaintiffs"]
    assert {"type": "null"} in fields["facts"]["anyOf"]  # taken: it empties the field
    form = paths["/api/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "court_document" not in form["schema"]["properties"]["purpose"]["enum"]


@pytest.mark.gen_test
async def test_the_reference_is_served_from_here(http_client: Any, api_url: str) -> None:
    page = await http_client.fetch(f"{api_url}/api/docs")
    html = page.body.decode()
    assert page.code == 200 and "/api/v1/openapi.json" in html
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert len(assets) == 2 and all(a.startswith("/console/assets/vendor/") for a in assets)
    for asset in assets:
        assert (await http_client.fetch(f"{api_url}{asset}")).code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
