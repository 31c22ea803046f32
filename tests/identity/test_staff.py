"""Staff accounts and the courts list."""

from __future__ import annotations

import pytest

from miniapp_stubs.client import StaffConsole
from server.app import Services
from tests.factories import Phone, Staff

NEW_CLERK = {
    "username": "clerk.wang",
    "password": "a-long-password",
    "name": "王书记员",
    "role": "clerk",
    "court_id": "bj-chaoyang",
}


@pytest.mark.gen_test(timeout=30)
async def test_system_admin_creates_staff_who_can_sign_in(
    staff: Staff, api_url: str, services: Services
) -> None:
    admin = await staff("admin", court_id=None)
    res = await admin.create_staff(**NEW_CLERK)
    assert res.status == 201, res.body
    assert res.body["role"] == "clerk" and res.body["court_id"] == "bj-chaoyang"
    assert res.body["username"] == "clerk.wang" and "password" not in str(res.body)
    stored = await services.db["users"].find_one({"username": "clerk.wang"})
    assert stored is not None and stored["password_hash"].startswith("$argon2")
    console = StaffConsole(api_url)
    assert (await console.login("clerk.wang", "a-long-password")).status == 200
    assert (await console.me()).body["name"] == "王书记员"
    dup = await admin.create_staff(**NEW_CLERK)
    assert (dup.status, dup.error_code) == (409, "username_taken")
    assert await services.db["audit"].count_documents({"action": "staff.create"}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_staff_input_is_validated(staff: Staff, services: Services) -> None:
    admin = await staff("admin", court_id=None)
    bad = [
        {**NEW_CLERK, "password": "short"},
        {**NEW_CLERK, "role": "litigant"},
        {**NEW_CLERK, "role": "emperor"},
        {**NEW_CLERK, "username": "Bad Name"},
        {**NEW_CLERK, "court_id": "nowhere"},
        {**NEW_CLERK, "extra": True},
        {k: v for k, v in NEW_CLERK.items() if k != "name"},
    ]
    for body in bad:
        res = await admin.post("/api/v1/admin/staff", body)
        assert res.status == 422, (body, res.body)
        assert "a-long-password" not in str(res.body)
    assert await services.db["users"].count_documents({"username": "clerk.wang"}) == 0


@pytest.mark.gen_test(timeout=30)
async def test_court_admin_manages_only_their_court(staff: Staff) -> None:
    court_admin = await staff("admin", court_id="sh-pudong")
    other = await court_admin.create_staff(**{**NEW_CLERK, "court_id": "bj-chaoyang"})
    assert (other.status, other.error_code) == (403, "other_court")
    own = await court_admin.create_staff(**{**NEW_CLERK, "court_id": "sh-pudong"})
    assert own.status == 201 and own.body["court_id"] == "sh-pudong"
    res = await court_admin.get("/api/v1/admin/staff?court_id=bj-chaoyang")
    assert res.status == 403
    listed = await court_admin.get("/api/v1/admin/staff")
    assert {u["court_id"] for u in listed.body["items"]} == {"sh-pudong"}


@pytest.mark.gen_test(timeout=30)
async def test_staff_list_is_cursor_paged(staff: Staff) -> None:
    admin = await staff("admin", court_id=None)
    for i in range(5):
        res = await admin.create_staff(
            **{**NEW_CLERK, "username": f"judge{i:02d}", "role": "judge"}
        )
        assert res.status == 201
    await staff("clerk", court_id="sh-pudong")
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/admin/staff?court_id=bj-chaoyang&role=judge&limit=2"
        res = await admin.get(path + (f"&cursor={cursor}" if cursor else ""))
        assert res.status == 200
        seen += [u["username"] for u in res.body["items"]]
        cursor = res.body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"judge{i:02d}" for i in reversed(range(5))]
    everyone = await admin.get("/api/v1/admin/staff?limit=100")
    assert {u["court_id"] for u in everyone.body["items"]} == {"bj-chaoyang", "sh-pudong"}
    for query in ["limit=0", "limit=101", "role=emperor", "cursor=%%%", "cursor=WzFd"]:
        res = await admin.get(f"/api/v1/admin/staff?{query}")
        assert res.status in (400, 422), query
        assert res.body["error"]["code"] in ("validation_failed", "invalid_cursor")


@pytest.mark.gen_test(timeout=60)
async def test_an_admin_changes_flags_resets_a_password_and_disables_an_account(
    staff: Staff, api_url: str, services: Services
) -> None:
    admin = await staff("admin", court_id="bj-chaoyang")
    created = await admin.create_staff(**{**NEW_CLERK, "role": "judge"})
    judge_id = created.body["id"]
    judge = StaffConsole(api_url)
    assert (await judge.login("clerk.wang", "a-long-password")).status == 200
    elsewhere = StaffConsole(api_url)  # the same account on another computer
    assert (await elsewhere.login("clerk.wang", "a-long-password")).status == 200

    # flags and the team number change; the sessions go on
    res = await admin.update_staff(
        judge_id, supervisor=True, service_desk=True, team_phone="010-12368", name="王法官"
    )
    assert res.status == 200, res.body
    body = res.body
    assert (body["supervisor"], body["service_desk"], body["team_phone"]) == (
        True,
        True,
        "010-12368",
    )
    assert (body["name"], body["division_head"], body["active"]) == ("王法官", False, True)
    assert (await judge.me()).body["supervisor"] is True
    cleared = await admin.update_staff(judge_id, team_phone=None)
    assert cleared.status == 200 and cleared.body["team_phone"] is None
    assert cleared.body["supervisor"] is True  # what was not sent stays

    # a new password ends every session; the old password no longer signs in
    assert (await admin.update_staff(judge_id, password="another-long-one")).status == 200
    for session in (judge, elsewhere):
        res = await session.me()
        assert (res.status, res.error_code) == (401, "token_revoked")
    assert (await judge.login("clerk.wang", "a-long-password")).status == 401
    assert (await judge.login("clerk.wang", "another-long-one")).status == 200
    assert (await judge.me()).status == 200

    # 停用: signed out at once and refused at sign-in; 启用 again, only a new sign-in works
    off = await admin.update_staff(judge_id, active=False)
    assert off.status == 200 and off.body["active"] is False
    res = await judge.me()
    assert res.status == 401 and res.error_code in ("account_disabled", "token_revoked")
    assert (await elsewhere.login("clerk.wang", "another-long-one")).status == 401
    colleagues = (await admin.get("/api/v1/colleagues?limit=100")).body["items"]
    assert judge_id not in {c["id"] for c in colleagues}
    listed = (await admin.get("/api/v1/admin/staff?role=judge")).body["items"]
    assert [u["active"] for u in listed if u["id"] == judge_id] == [False]
    assert (await admin.update_staff(judge_id, active=True)).status == 200
    assert (await judge.me()).error_code == "token_revoked"  # a session from before stays dead
    assert (await judge.login("clerk.wang", "another-long-one")).status == 200
    assert (await judge.me()).status == 200

    audit = [a async for a in services.db["audit"].find({"action": "staff.update"})]
    assert [a["details"]["fields"] for a in audit] == [
        ["name", "service_desk", "supervisor", "team_phone"],
        ["team_phone"],
        ["password"],
        ["active"],
        ["active"],
    ]
    assert "another-long-one" not in str(audit)


@pytest.mark.gen_test(timeout=60)
async def test_staff_changes_are_refused_outside_the_admins_reach(
    staff: Staff, phone: Phone, services: Services
) -> None:
    admin = await staff("admin", court_id="bj-chaoyang")
    me = (await admin.me()).body["id"]
    clerk = await staff("clerk")
    clerk_id = (await clerk.me()).body["id"]
    other_court = await staff("judge", court_id="sh-pudong")
    other_id = (await other_court.me()).body["id"]
    litigant = phone()
    assert (await litigant.login()).status == 200
    litigant_id = (await litigant.me()).body["id"]
    system = await staff("admin", court_id=None)
    system_id = (await system.me()).body["id"]

    # not theirs: another court's staff, a litigant, the system admin, no such account
    for target in (other_id, litigant_id, system_id, "0" * 24):
        res = await admin.update_staff(target, active=False)
        assert (res.status, res.error_code) == (404, "staff_not_found"), target
    assert (await other_court.me()).status == 200
    # not an admin
    res = await clerk.update_staff(clerk_id, supervisor=True)
    assert res.status == 403
    # oneself: may change but not disable
    res = await admin.update_staff(me, active=False)
    assert (res.status, res.error_code) == (409, "cannot_disable_self")
    assert (await admin.update_staff(me, name="李管理员")).status == 200
    # bad input
    for body in (
        {},
        {"password": "short"},
        {"team_phone": "call me"},
        {"active": "no"},
        {"role": "admin"},
        {"name": None},
    ):
        res = await admin.request("PATCH", f"/api/v1/admin/staff/{clerk_id}", body)
        assert res.status == 422, (body, res.body)
        assert res.body["error"]["code"] == "validation_failed"
    assert (
        await admin.request("PATCH", "/api/v1/admin/staff/nothex", {"active": True})
    ).status == 404
    # the system admin reaches every court
    assert (await system.update_staff(other_id, division_head=True)).status == 200
    stored = await services.db["users"].find_one({"username": (await clerk.me()).body["username"]})
    assert stored is not None and stored["active"] is True and not stored.get("supervisor")


@pytest.mark.gen_test(timeout=30)
async def test_courts_are_listed_for_everyone(phone: Phone) -> None:
    res = await phone().courts()
    assert res.status == 200
    courts = {c["id"]: c for c in res.body["items"]}
    assert courts["bj-chaoyang"]["name"] == "北京市朝阳区人民法院"
    assert courts["bj-chaoyang"]["code"] == "京0105"
    assert courts["bj-chaoyang"]["case_types"]["civil"] == "民初"
    assert courts["sh-pudong"]["code"] == "沪0115"
