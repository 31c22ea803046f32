"""GET /api/v1/colleagues: the staff of my own court, for the console's pickers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.platform.db import Database


@pytest.mark.gen_test(timeout=30)  # five staff sign-ins (argon2), as in test_staff.py
async def test_staff_see_their_own_courts_active_staff_only(
    staff: Callable[..., Awaitable[StaffConsole]],
    litigant: Callable[..., Awaitable[MiniProgram]],
    db: Database,
) -> None:
    clerk = await staff("clerk")
    judge = await staff("judge", supervisor=True)
    await staff("judge", court_id="sh-pudong")
    gone = await staff("judge")
    assert gone.user is not None and judge.user is not None and clerk.user is not None
    await db["users"].update_one({"username": gone.user["username"]}, {"$set": {"active": False}})

    res = await clerk.get("/api/v1/colleagues?role=judge")
    assert res.status == 200
    assert [(c["id"], c["role"], c["supervisor"]) for c in res.body["items"]] == [
        (judge.user["id"], "judge", True)
    ]
    assert "username" not in res.body["items"][0]
    everyone = await judge.get("/api/v1/colleagues?limit=1")
    assert len(everyone.body["items"]) == 1 and everyone.body["next_cursor"]
    rest = await judge.get(f"/api/v1/colleagues?limit=5&cursor={everyone.body['next_cursor']}")
    ids = {c["id"] for c in everyone.body["items"] + rest.body["items"]}
    assert ids == {clerk.user["id"], judge.user["id"]}

    assert (await (await litigant()).get("/api/v1/colleagues")).status == 403
    system_admin = await staff("admin", court_id=None)
    res = await system_admin.get("/api/v1/colleagues")
    assert (res.status, res.error_code) == (403, "no_court")
    assert (await clerk.get("/api/v1/colleagues?role=nobody")).status == 422
