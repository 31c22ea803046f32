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


@pytest.mark.gen_test(timeout=30)
async def test_courts_are_listed_for_everyone(phone: Phone) -> None:
    res = await phone().courts()
    assert res.status == 200
    courts = {c["id"]: c for c in res.body["items"]}
    assert courts["bj-chaoyang"]["name"] == "北京市朝阳区人民法院"
    assert courts["bj-chaoyang"]["code"] == "京0105"
    assert courts["bj-chaoyang"]["case_types"]["civil"] == "民初"
    assert courts["sh-pudong"]["code"] == "沪0115"
