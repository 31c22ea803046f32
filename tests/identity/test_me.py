"""Real-name identity and lawyer registration."""

from __future__ import annotations

import pytest

from server.app import Services
from server.identity.idnumber import check_char
from tests.factories import Litigant, Phone, Staff, id_number


@pytest.mark.gen_test
async def test_identity_is_stored_encrypted_and_shown_masked(
    phone: Phone, services: Services
) -> None:
    mp = phone()
    await mp.login()
    number = id_number("19850615", "310115", "042")
    res = await mp.verify_identity("王小明", number, "13912345678")
    assert res.status == 200, res.body
    ident = res.body["identity"]
    assert ident["name"] == "王小明"
    assert ident["id_number_masked"] == "310***********" + number[-4:]
    assert ident["phone_masked"] == "139****5678"
    assert number not in str(res.body)
    me = await mp.me()
    assert me.body["identity"]["id_number_masked"] == ident["id_number_masked"]
    stored = await services.db["users"].find_one({"openid": mp.openid})
    assert stored is not None
    assert number not in str(stored)  # neither plain nor in any field
    assert stored["identity"]["id_hash"] == services.users.cipher.keyed_hash(number)
    assert services.users.cipher.decrypt(stored["identity"]["id_cipher"], b"id_number") == number


@pytest.mark.gen_test
async def test_invalid_id_numbers_are_refused_and_nothing_written(
    phone: Phone, services: Services
) -> None:
    mp = phone()
    await mp.login()
    good = id_number()
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    no_such_day = "11010519900230" + "123"
    no_such_day += check_char(no_such_day)
    future = "11010520991231" + "123"
    future += check_char(future)
    cases = {
        wrong_check: "校验码",
        no_such_day: "出生日期不存在",
        future: "不合理",
        "11010519900101123": "18位",
        "A10105199001011234": "18位",
        "010105199001011238": "地区",
    }
    for number, words in cases.items():
        res = await mp.verify_identity("张三", number)
        assert (res.status, res.error_code) == (422, "invalid_id_number"), number
        assert words in res.body["error"]["message"]
        assert number not in str(res.body)
    for body in [
        {"name": "张", "id_number": good},
        {"name": "张三"},
        {"name": "张三", "id_number": good, "phone": "12345"},
        {"name": "<script>", "id_number": good},
    ]:
        res = await mp.put("/api/v1/me/identity", body)
        assert (res.status, res.error_code) == (422, "validation_failed"), body
        assert good not in str(res.body)  # the input is never echoed back
    stored = await services.db["users"].find_one({"openid": mp.openid})
    assert stored is not None and stored.get("identity") is None


@pytest.mark.gen_test
async def test_lowercase_x_is_accepted_as_check_character(phone: Phone) -> None:
    number = next(n for n in (id_number(seq=f"{i:03d}") for i in range(200)) if n.endswith("X"))
    mp = phone()
    await mp.login()
    res = await mp.verify_identity("李四", number.lower())
    assert res.status == 200
    assert res.body["identity"]["id_number_masked"].endswith("X")


@pytest.mark.gen_test
async def test_identity_cannot_change_or_be_taken_twice(phone: Phone) -> None:
    number = id_number(seq="555")
    a, b = phone(), phone()
    await a.login()
    await b.login()
    assert (await a.verify_identity("赵六", number)).status == 200
    same = await a.verify_identity("赵六", number, "13700000000")  # a retry, with a phone
    assert same.status == 200 and same.body["identity"]["phone_masked"] == "137****0000"
    other = await a.verify_identity("赵六", id_number(seq="556"))
    assert (other.status, other.error_code) == (409, "identity_already_verified")
    # Someone else's claim of the number never blocks nor takes it: it waits for the face
    taken = await b.verify_identity("赵六", number, outcome="fail")
    assert (taken.status, taken.error_code) == (422, "face_verification_failed")
    assert (await b.me()).body["identity"]["status"] == "pending"
    assert (await a.me()).body["identity"]["status"] == "verified"


LICENCE, FIRM = "11101201510123456", "北京市某某律师事务所"


@pytest.mark.gen_test
async def test_lawyer_registration(phone: Phone, litigant: Litigant) -> None:
    bare = phone()
    await bare.login()
    res = await bare.register_lawyer("11101201510123456", "北京市某某律师事务所")
    assert (res.status, res.error_code) == (403, "identity_required")

    lawyer = await litigant(name="周律师")
    for bad in [{"license_no": "123", "firm": "某所"}, {"license_no": "11101201510123456"}]:
        res = await lawyer.post("/api/v1/me/lawyer", bad)
        assert (res.status, res.error_code) == (422, "validation_failed")
    res = await lawyer.register_lawyer("11101201510123456", "北京市某某律师事务所")
    assert res.status == 200
    assert res.body["lawyer"] == {
        "license_no": "11101201510123456",
        "firm": "北京市某某律师事务所",
        "status": "pending",
        "reason": None,
    }
    assert res.body["role"] == "litigant"


@pytest.mark.gen_test
async def test_lawyer_verification(litigant: Litigant, staff: Staff, services: Services) -> None:
    lawyer = await litigant(name="周律师")
    res = await lawyer.register_lawyer(LICENCE, FIRM)
    assert res.status == 200
    admin = await staff("admin", court_id=None)
    clerk = await staff("clerk")
    uid = res.body["id"]
    queue = await admin.get("/api/v1/admin/lawyers")
    assert [u["id"] for u in queue.body["items"]] == [uid]
    assert queue.body["items"][0]["lawyer"]["license_no"] == "11101201510123456"
    assert (await clerk.verify_lawyer(uid)).status == 403
    no_reason = await admin.verify_lawyer(uid, approved=False)
    assert (no_reason.status, no_reason.error_code) == (422, "reason_required")
    ok = await admin.verify_lawyer(uid)
    assert ok.status == 200
    assert ok.body["role"] == "lawyer" and ok.body["lawyer"]["status"] == "verified"
    again = await admin.verify_lawyer(uid)
    assert (again.status, again.error_code) == (409, "lawyer_already_decided")
    assert (await admin.verify_lawyer("0" * 24)).status == 404
    assert (await admin.post("/api/v1/admin/lawyers/not-an-id/verify", {})).status == 404
    # the serving process sees the new role at once
    me = await lawyer.me()
    assert me.body["role"] == "lawyer"
    audit = await services.db["audit"].find_one({"action": "lawyer.verified"})
    assert audit is not None and audit["target"] == uid
    assert (await admin.get("/api/v1/admin/lawyers")).body["items"] == []
    verified = await admin.get("/api/v1/admin/lawyers?status=verified")
    assert [u["id"] for u in verified.body["items"]] == [uid]
    assert (await admin.get("/api/v1/admin/lawyers?status=bogus")).status == 422
    res = await lawyer.register_lawyer("11101201510123456", "另一所")
    assert (res.status, res.error_code) == (409, "lawyer_already_verified")


@pytest.mark.gen_test
async def test_rejected_lawyer_may_apply_again(litigant: Litigant, staff: Staff) -> None:
    lawyer = await litigant()
    res = await lawyer.register_lawyer("11101201510123456", "某律师事务所")
    admin = await staff("admin", court_id=None)
    rejected = await admin.verify_lawyer(res.body["id"], approved=False, reason="执业证号无法核实")
    assert rejected.status == 200
    assert rejected.body["lawyer"]["status"] == "rejected"
    assert rejected.body["lawyer"]["reason"] == "执业证号无法核实"
    assert rejected.body["role"] == "litigant"
    again = await lawyer.register_lawyer("11101201510654321", "某律师事务所")
    assert again.status == 200 and again.body["lawyer"]["status"] == "pending"


@pytest.mark.gen_test
async def test_staff_have_no_identity_or_lawyer_pages(staff: Staff) -> None:
    judge = await staff("judge")
    res = await judge.put("/api/v1/me/identity", {"name": "李四", "id_number": id_number()})
    assert res.status == 403
    res = await judge.post("/api/v1/me/lawyer", {"license_no": "1" * 17, "firm": "某所"})
    assert res.status == 403
    me = await judge.me()
    assert me.status == 200 and me.body["role"] == "judge" and me.body["court_id"] == "bj-chaoyang"
