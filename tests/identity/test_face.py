"""Real-name identity confirmed by WeChat's face verification (人脸核身).

WeChat's documented flow for government-service mini-programs: the page calls
``wx.startFacialRecognitionVerify`` with the name and ID number, and the server asks
``/cityservice/face/identify/getinfo`` {verify_result} what the returned ``verifyResult``
means (``identify_ret`` 0 passed, the ``openid`` that verified, ``identify_time`` and the MD5
of the ID number and name). Only that answer turns a claim into an identity.
"""

from __future__ import annotations

import pytest
from bson import ObjectId

from miniapp_stubs.client import MiniProgram
from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import DEFENDANT_ID, SELF_ID, Litigant, Phone, Staff, accepted_case, id_number


async def signed_in(phone: Phone) -> MiniProgram:
    mp = phone()
    assert (await mp.login()).status == 200
    return mp


async def claimed(mp: MiniProgram, name: str, number: str) -> None:
    res = await mp.put("/api/v1/me/identity", {"name": name, "id_number": number})
    assert res.status == 202, res.body


@pytest.mark.gen_test
async def test_claim_is_pending_until_the_face_passes(phone: Phone, services: Services) -> None:
    mp = await signed_in(phone)
    number = id_number(seq="701")
    code = await mp.phone_code("13812345678")
    res = await mp.put(
        "/api/v1/me/identity", {"name": "王小明", "id_number": number, "phone_code": code}
    )
    assert res.status == 202
    assert res.body["status"] == "pending"
    assert res.body["face_verify"]["api"] == "wx.startFacialRecognitionVerify"
    assert res.body["face_verify"]["name"] == "王小明"
    assert res.body["verify_path"] == "/api/v1/me/identity/verify"
    assert number not in str(res.body)  # shown masked only
    me = (await mp.me()).body["identity"]
    assert (me["status"], me["verified_at"]) == ("pending", None)
    # a pending claim is not an identity: no filing, no lawyer registration
    res = await mp.register_lawyer("11101201510123456", "北京市某某律师事务所")
    assert (res.status, res.error_code) == (403, "identity_pending")
    assert await services.db["users"].count_documents({"identity.id_hash": {"$exists": 1}}) == 0

    verified = await mp.confirm_identity(await mp.face_verify("王小明", number))
    assert verified.status == 200, verified.body
    ident = verified.body["identity"]
    assert ident["status"] == "verified" and ident["verified_at"] is not None
    # the number WeChat gave for the getPhoneNumber code is recorded as verified
    assert (ident["phone_masked"], ident["phone_verified"]) == ("138****5678", True)
    assert (await mp.me()).body["identity"]["status"] == "verified"


@pytest.mark.gen_test
async def test_every_bad_verify_result_is_422(
    phone: Phone, emulator: Emulator, clock: FixedClock
) -> None:
    mp, other = await signed_in(phone), await signed_in(phone)
    number = id_number(seq="702")
    await claimed(mp, "赵六", number)

    async def answer(verify_result: str) -> tuple[int, str | None]:
        res = await mp.confirm_identity(verify_result)
        return res.status, res.error_code

    # identify_ret not 0: the face did not match the ID card's photo
    assert await answer(await mp.face_verify("赵六", number, "fail")) == (
        422,
        "face_verification_failed",
    )
    # a result WeChat never issued (getinfo answers an errcode)
    assert await answer("forged-" + "x" * 40) == (422, "face_verification_invalid")
    # a passing face, but for another name: name_utf8_md5 does not match the claim
    assert await answer(await mp.face_verify("赵七", number)) == (422, "face_verification_mismatch")
    # another user's passing result, replayed: getinfo's openid is not the caller's
    assert await answer(await other.face_verify("赵六", number)) == (
        422,
        "face_verification_invalid",
    )
    # a result older than face_result_max_age_seconds (1800 s)
    old = await mp.face_verify("赵六", number)
    emulator.state.face.age(old, 1801)
    assert await answer(old) == (422, "face_verification_expired")
    assert (await mp.me()).body["identity"]["status"] == "pending"

    good = await mp.face_verify("赵六", number)
    assert await answer(good) == (200, None)
    assert await answer(good) == (422, "face_verification_reused")


@pytest.mark.gen_test
async def test_a_claim_expires_and_nothing_pending_is_409(phone: Phone, clock: FixedClock) -> None:
    mp = await signed_in(phone)
    res = await mp.confirm_identity("anything")
    assert (res.status, res.error_code) == (409, "identity_not_pending")
    number = id_number(seq="703")
    await claimed(mp, "孙七", number)
    clock.advance(seconds=3601)  # identity_claim_seconds
    result = await mp.face_verify("孙七", number)
    res = await mp.confirm_identity(result)
    assert (res.status, res.error_code) == (422, "face_verification_expired")
    await claimed(mp, "孙七", number)  # claiming again starts a new window
    assert (await mp.confirm_identity(await mp.face_verify("孙七", number))).status == 200


@pytest.mark.gen_test
async def test_bad_input_and_staff(phone: Phone, staff: Staff) -> None:
    mp = await signed_in(phone)
    for body in [{}, {"verify_result": ""}, {"verify_result": 5}, {"verify_result": "a", "x": 1}]:
        res = await mp.post("/api/v1/me/identity/verify", body)
        assert (res.status, res.error_code) == (422, "validation_failed"), body
    res = await mp.put(
        "/api/v1/me/identity", {"name": "张三", "id_number": SELF_ID, "phone_code": "bad"}
    )
    assert (res.status, res.error_code) == (422, "invalid_phone_code")
    judge = await staff("judge")
    res = await judge.post("/api/v1/me/identity/verify", {"verify_result": "x"})
    assert res.status == 403


@pytest.mark.gen_test
async def test_a_number_moves_only_on_a_passing_face_and_both_are_told(
    phone: Phone, services: Services
) -> None:
    holder, newcomer = await signed_in(phone), await signed_in(phone)
    number = id_number(seq="704")
    assert (await holder.verify_identity("周八", number)).status == 200

    # someone else's claim neither blocks nor takes it
    assert (await newcomer.verify_identity("周八", number, outcome="fail")).status == 422
    assert (await holder.me()).body["identity"]["status"] == "verified"
    assert (await newcomer.me()).body["identity"]["status"] == "pending"

    # the person themselves, on a new WeChat account: the face passes, the number moves
    res = await newcomer.confirm_identity(await newcomer.face_verify("周八", number))
    assert res.status == 200 and res.body["identity"]["status"] == "verified"
    services.users.forget(str((await holder.me()).body["id"]))
    assert (await holder.me()).body["identity"] is None
    told = [n["kind"] for n in (await holder.notifications()).body["items"]]
    assert "identity_moved_away" in told
    told = [n["kind"] for n in (await newcomer.notifications()).body["items"]]
    assert "identity_moved_here" in told
    audit = await services.db["audit"].find_one({"action": "identity.moved"})
    assert audit is not None and audit["details"]["id_masked"].endswith(number[-4:])
    assert number not in str(audit)  # never logged in clear


@pytest.mark.gen_test
async def test_the_cases_follow_a_number_that_moves(
    litigant: Litigant, staff: Staff, phone: Phone, services: Services
) -> None:
    """李四, a party linked to a case, verifies on a new WeChat account: the case goes with
    the number, and the account that held it before reads it no more."""
    case_id, plaintiff, defendant, _ = await accepted_case(litigant, staff)
    assert (await defendant.case(case_id)).status == 200
    old_id = str((await defendant.me()).body["id"])

    newcomer = await signed_in(phone)
    await claimed(newcomer, "李四", DEFENDANT_ID)
    res = await newcomer.confirm_identity(await newcomer.face_verify("李四", DEFENDANT_ID))
    assert res.status == 200, res.body
    services.users.forget(old_id)

    assert (await defendant.case(case_id)).status == 404
    assert (await defendant.cases()).body["items"] == []
    mine = await newcomer.case(case_id)
    assert mine.status == 200 and mine.body["case_no"]
    assert [c["id"] for c in (await newcomer.cases()).body["items"]] == [case_id]
    assert (await plaintiff.case(case_id)).status == 200  # the other party keeps it
    stored = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert stored is not None and old_id not in stored["party_user_ids"]
    assert [d["user_id"] for d in stored["defendants"]] == [str((await newcomer.me()).body["id"])]
    audit = await services.db["audit"].find_one({"action": "case.links_moved"})
    assert audit is not None and audit["target"] == old_id


@pytest.mark.gen_test
async def test_stranger_with_name_id_case_number_and_query_code_gets_nothing(
    litigant: Litigant, staff: Staff, phone: Phone
) -> None:
    """The held-out journey: a stranger who knows someone's name, ID number, case number and
    query code never reads their case and cannot take their identity; a failed or forged
    verification is 422; the real person keeps identity and case."""
    case_id, plaintiff, defendant, _ = await accepted_case(litigant, staff)
    victim = await defendant.case(case_id)
    assert victim.status == 200
    case_no, query_code = victim.body["case_no"], victim.body["query_code"]

    stranger = await signed_in(phone)
    await claimed(stranger, "李四", DEFENDANT_ID)  # a claim is accepted, as pending
    lookup = await stranger.lookup_case(case_no, query_code)
    assert (lookup.status, lookup.error_code) == (403, "identity_pending")
    assert (await stranger.case(case_id)).status == 404
    message = await stranger.post(
        "/api/v1/messages",
        {"case_id": case_id, "category": "进度查询", "content": "案件进展如何？"},
    )
    assert (message.status, message.error_code) == (403, "identity_pending")

    # the stranger's own face does not match 李四's ID card
    failed = await stranger.confirm_identity(
        await stranger.face_verify("李四", DEFENDANT_ID, "fail")
    )
    assert (failed.status, failed.error_code) == (422, "face_verification_failed")
    forged = await stranger.confirm_identity("0" * 64)
    assert (forged.status, forged.error_code) == (422, "face_verification_invalid")
    # the real person's own passing result, captured and replayed, is theirs alone
    theirs = await defendant.face_verify("李四", DEFENDANT_ID)
    replayed = await stranger.confirm_identity(theirs)
    assert (replayed.status, replayed.error_code) == (422, "face_verification_invalid")

    lookup = await stranger.lookup_case(case_no, query_code)
    assert (lookup.status, lookup.error_code) == (403, "identity_pending")
    assert (await stranger.cases()).body["items"] == []
    assert (await stranger.me()).body["identity"]["status"] == "pending"
    # the real person keeps both
    me = (await defendant.me()).body["identity"]
    assert (me["status"], me["name"]) == ("verified", "李四")
    assert (await defendant.case(case_id)).status == 200
    assert (await plaintiff.case(case_id)).status == 200
