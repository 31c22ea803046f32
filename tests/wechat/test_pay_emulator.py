"""The WeChat Pay side of the emulator over raw HTTP: signatures both ways, WeChat Pay's
shapes and error codes, bills, and the ``/_emulator/pay`` controls."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs.emulator import Emulator, PayOptions, start_emulator
from server.platform.clock import FixedClock
from tests.factories import PAY_MCHID, PAY_SERIAL, START, PayKeys, new_key

APPID = "wx0000000000000dev"
OPENID = "o" + "E" * 27


def jsapi(no: str = "EMU000000000001", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": APPID,
        "mchid": PAY_MCHID,
        "description": "诉讼费",
        "out_trade_no": no,
        "notify_url": "https://court.example.cn/api/v1/payments/wechat/notify",
        "amount": {"total": 100, "currency": "CNY"},
        "payer": {"openid": OPENID},
    }
    return {**body, **changes}


class Merchant:
    """Signs requests as the merchant does (WECHATPAY2-SHA256-RSA2048)."""

    def __init__(self, emu: Emulator, key_pem: str, clock: FixedClock) -> None:
        self.emu = emu
        self.key = wpc.load_private(key_pem)
        self.clock = clock
        self.platform = wpc.load_public(emu.platform_public_key_pem)

    def authorization(self, method: str, uri: str, body: str, **fields: str) -> str:
        stamp = fields.pop("timestamp", str(int(self.clock.now().timestamp())))
        nonce = wpc.nonce()
        message = wpc.request_message(method, uri, stamp, nonce, body)
        values = {
            "mchid": PAY_MCHID,
            "nonce_str": nonce,
            "signature": wpc.sign(self.key, message),
            "timestamp": stamp,
            "serial_no": PAY_SERIAL,
            **fields,
        }
        return wpc.SCHEME + " " + ",".join(f'{k}="{v}"' for k, v in values.items())

    async def call(
        self,
        method: str,
        uri: str,
        body: Any = None,
        *,
        sent: bytes | None = None,
        auth: str | None = None,
        **fields: str,
    ) -> tuple[int, Any, HTTPResponse]:
        text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        headers["Authorization"] = (
            auth if auth is not None else self.authorization(method, uri, text, **fields)
        )
        raw = sent if sent is not None else text.encode()
        request = HTTPRequest(
            self.emu.url + uri,
            method=method,
            headers=headers,
            body=raw if method == "POST" else None,
        )
        res = await AsyncHTTPClient().fetch(request, raise_error=False)
        is_json = res.headers.get("Content-Type", "").startswith("application/json")
        return res.code, json.loads(res.body) if is_json else res.body, res

    def verify_answer(self, res: HTTPResponse) -> bool:
        h = res.headers
        message = wpc.response_message(
            h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], (res.body or b"").decode()
        )
        signed = wpc.verify(self.platform, message, h["Wechatpay-Signature"])
        return signed and h["Wechatpay-Serial"] == self.emu.platform_public_key_id


@pytest.fixture
def merchant(emulator: Emulator, pay_keys: PayKeys, clock: FixedClock) -> Merchant:
    return Merchant(emulator, pay_keys.merchant, clock)


async def control(emu: Emulator, path: str, body: Any = None) -> tuple[int, Any]:
    method = "GET" if body is None else "POST"
    raw = None if body is None else body if isinstance(body, str) else json.dumps(body)
    res = await AsyncHTTPClient().fetch(emu.url + path, method=method, body=raw, raise_error=False)
    return res.code, json.loads(res.body)


@pytest.mark.gen_test
async def test_every_answer_is_signed_and_requests_must_be(
    merchant: Merchant, emulator: Emulator
) -> None:
    status, body, res = await merchant.call("POST", "/v3/pay/transactions/jsapi", jsapi())
    assert status == 200 and body["prepay_id"].startswith("wx20261123100000")
    assert merchant.verify_answer(res) and res.headers["Request-ID"]
    assert res.headers["Wechatpay-Timestamp"] == str(int(START.timestamp()))
    assert res.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"

    uri = "/v3/pay/transactions/jsapi"
    other = json.dumps(jsapi("EMU000000000003")).encode()
    cases: list[dict[str, Any]] = [
        {"auth": ""},
        {"auth": "Bearer abc"},
        {"auth": 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"'},
        {"sent": other},  # signed one body, sent another
        {"serial_no": "0123456789ABCDEF"},
        {"signature": "bm90IGEgc2lnbmF0dXJl"},
        {"timestamp": "soon"},
    ]
    for case in cases:
        status, body, res = await merchant.call("POST", uri, jsapi("EMU000000000002"), **case)
        assert (status, body["code"]) == (401, "SIGN_ERROR"), case
        assert body["detail"]["location"] == "authorization" and merchant.verify_answer(res)
    status, body, _ = await merchant.call("POST", uri, jsapi(), mchid="1900000999")
    assert (status, body["code"]) == (400, "MCH_NOT_EXISTS")
    assert len(emulator.pay.orders) == 1


@pytest.mark.gen_test
async def test_jsapi_bodies_are_checked_field_by_field(
    merchant: Merchant, emulator: Emulator
) -> None:
    uri = "/v3/pay/transactions/jsapi"
    bad: list[tuple[Any, int, str, str | None]] = [
        (
            {k: v for k, v in jsapi().items() if k != "description"},
            400,
            "PARAM_ERROR",
            "/description",
        ),
        (jsapi(description="字" * 128), 400, "PARAM_ERROR", "/description"),
        (jsapi("short"), 400, "PARAM_ERROR", "/out_trade_no"),
        (jsapi("EMU#0000000001"), 400, "PARAM_ERROR", "/out_trade_no"),
        (jsapi(notify_url="http://court.example.cn/notify"), 400, "PARAM_ERROR", "/notify_url"),
        (jsapi(notify_url="https://court.example.cn/n?x=1"), 400, "PARAM_ERROR", "/notify_url"),
        (jsapi(amount={"total": 0}), 400, "PARAM_ERROR", "/amount/total"),
        (jsapi(amount={"total": "100"}), 400, "PARAM_ERROR", "/amount/total"),
        (jsapi(amount={"total": 100, "currency": "USD"}), 400, "PARAM_ERROR", "/amount/currency"),
        (jsapi(payer={}), 400, "PARAM_ERROR", "/payer/openid"),
        (jsapi(time_expire="2026-11-23 10:30:00"), 400, "PARAM_ERROR", "/time_expire"),
        (jsapi(appid="wx1111111111111111"), 400, "APPID_MCHID_NOT_MATCH", None),
        (jsapi(mchid="1900000999"), 400, "INVALID_REQUEST", None),
        ("{not json", 400, "PARAM_ERROR", None),
        ("[1, 2]", 400, "PARAM_ERROR", None),
    ]
    for body, status, code, field in bad:
        got, answer, _ = await merchant.call("POST", uri, body)
        assert (got, answer["code"]) == (status, code), body
        assert field is None or answer["detail"]["field"] == field, answer
    assert emulator.pay.orders == {}
    status, answer, _ = await merchant.call(
        "POST", uri, jsapi(time_expire="2026-11-23T10:30:00+08:00")
    )
    assert status == 200
    [order] = emulator.pay.orders.values()
    assert order.time_expire == START.timestamp() + 30 * 60


@pytest.mark.gen_test
async def test_queries_shapes_and_unknown_paths(merchant: Merchant, emulator: Emulator) -> None:
    await merchant.call("POST", "/v3/pay/transactions/jsapi", jsapi(attach="case-9"))
    uri = f"/v3/pay/transactions/out-trade-no/EMU000000000001?mchid={PAY_MCHID}"
    status, body, res = await merchant.call("GET", uri)
    assert status == 200 and merchant.verify_answer(res)
    assert body == {
        "appid": APPID,
        "mchid": PAY_MCHID,
        "out_trade_no": "EMU000000000001",
        "trade_state": "NOTPAY",
        "trade_state_desc": "订单未支付",
        "attach": "case-9",
        "amount": {"total": 100, "currency": "CNY", "payer_currency": "CNY"},
        "payer": {},
        "promotion_detail": [],
    }
    missing = await merchant.call("GET", "/v3/pay/transactions/out-trade-no/EMU000000000001")
    assert (missing[0], missing[1]["code"]) == (400, "PARAM_ERROR")
    other = await merchant.call(
        "GET", "/v3/pay/transactions/out-trade-no/EMU000000000009?mchid=" + PAY_MCHID
    )
    assert (other[0], other[1]) == (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
    status, body, res = await merchant.call("GET", "/v3/no/such/api")
    assert (status, body["code"]) == (404, "NOT_FOUND") and merchant.verify_answer(res)
    close = "/v3/pay/transactions/out-trade-no/EMU000000000001/close"
    status, body, res = await merchant.call("POST", close, {"mchid": PAY_MCHID})
    assert status == 204 and res.body == b"" and merchant.verify_answer(res)
    assert (await merchant.call("POST", close, {}))[0] == 400


@pytest.mark.gen_test
async def test_refund_answers_carry_the_documented_fields(
    merchant: Merchant, emulator: Emulator
) -> None:
    emulator.pay.refund_seconds = None
    _, body, _ = await merchant.call("POST", "/v3/pay/transactions/jsapi", jsapi())
    status, paid = await control(
        emulator, "/_emulator/pay/confirm", {"prepay_id": body["prepay_id"]}
    )
    assert status == 200 and paid["trade_state"] == "SUCCESS"
    refund = {
        "transaction_id": paid["transaction_id"],
        "out_refund_no": "ER-1",
        "amount": {"refund": 40, "total": 100, "currency": "CNY"},
    }
    status, body, res = await merchant.call("POST", "/v3/refund/domestic/refunds", refund)
    assert status == 200 and merchant.verify_answer(res)
    assert body["status"] == "PROCESSING" and body["out_trade_no"] == "EMU000000000001"
    assert body["amount"]["refund"] == 40 and body["amount"]["payer_refund"] == 40
    assert body["create_time"] == "2026-11-23T10:00:00+08:00" and "success_time" not in body
    for bad in (
        {**refund, "out_refund_no": ""},
        {k: v for k, v in refund.items() if k != "transaction_id"},
        {**refund, "notify_url": "ftp://x"},
        {**refund, "amount": {"refund": 40, "total": 100}, "reason": "理" * 81},
    ):
        got = await merchant.call("POST", "/v3/refund/domestic/refunds", bad)
        assert (got[0], got[1]["code"]) == (400, "PARAM_ERROR"), bad
    status, settled = await control(
        emulator, "/_emulator/pay/refunds/settle", {"out_refund_no": "ER-1"}
    )
    assert status == 200 and settled["status"] == "SUCCESS"
    status, body, _ = await merchant.call("GET", "/v3/refund/domestic/refunds/ER-1")
    assert body["status"] == "SUCCESS" and body["success_time"] == "2026-11-23T10:00:00+08:00"
    assert (await control(emulator, "/_emulator/pay/refunds/settle", {"out_refund_no": "ER-9"}))[
        0
    ] == 404
    bad_status = await control(
        emulator, "/_emulator/pay/refunds/settle", {"out_refund_no": "ER-1", "status": "DONE"}
    )
    assert bad_status[0] == 400


@pytest.mark.gen_test
async def test_bills_are_downloaded_once_asked_and_match_their_hash(
    merchant: Merchant, emulator: Emulator, clock: FixedClock
) -> None:
    _, body, _ = await merchant.call(
        "POST", "/v3/pay/transactions/jsapi", jsapi(description="诉讼费,含逗号")
    )
    await control(emulator, "/_emulator/pay/confirm", {"prepay_id": body["prepay_id"]})
    clock.advance(days=1)
    for query, code in (
        ("bill_date=2026/11/23", "PARAM_ERROR"),
        ("bill_date=2026-02-30", "PARAM_ERROR"),
        ("bill_date=2026-11-23&bill_type=FUND", "PARAM_ERROR"),
        ("bill_date=2026-11-23&tar_type=ZIP", "PARAM_ERROR"),
        ("bill_date=2026-11-24", "STATEMENT_CREATING"),
        ("bill_date=2026-11-22", "NO_STATEMENT_EXIST"),
    ):
        got = await merchant.call("GET", "/v3/bill/tradebill?" + query)
        assert (got[0], got[1]["code"]) == (400, code), query
    status, info, _ = await merchant.call("GET", "/v3/bill/tradebill?bill_date=2026-11-23")
    assert status == 200 and info["hash_type"] == "SHA1"
    uri = info["download_url"].removeprefix(emulator.url)
    assert uri.startswith("/v3/billdownload/file?token=")
    status, raw, res = await merchant.call("GET", uri)
    assert status == 200 and res.headers["Content-Type"] == "application/octet-stream"
    assert hashlib.sha1(raw).hexdigest() == info["hash_value"]
    lines = raw.decode().split("\r\n")
    assert lines[0].startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号")
    values = lines[1].split(",`")
    assert values[0] == "`2026-11-23 10:00:00" and "`SUCCESS" in lines[1] and "`1.00" in lines[1]
    assert lines[2].startswith("总交易单数") and lines[3].startswith("`1,`1.00,`0.00")

    _, zipped_info, _ = await merchant.call(
        "GET", "/v3/bill/tradebill?bill_date=2026-11-23&tar_type=GZIP"
    )
    _, zipped, _ = await merchant.call(
        "GET", zipped_info["download_url"].removeprefix(emulator.url)
    )
    assert gzip.decompress(zipped) == raw
    clock.advance(seconds=31)
    expired = await merchant.call("GET", uri)
    assert (expired[0], expired[1]["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.gen_test
async def test_control_paths(merchant: Merchant, emulator: Emulator) -> None:
    _, body, _ = await merchant.call("POST", "/v3/pay/transactions/jsapi", jsapi())
    prepay_id = body["prepay_id"]
    assert (await control(emulator, "/_emulator/pay/confirm", {"prepay_id": "wx1"}))[0] == 404
    assert (await control(emulator, "/_emulator/pay/confirm", "[]"))[0] == 400
    assert (await control(emulator, "/_emulator/pay/confirm", {}))[0] == 400
    forged = {
        "appId": APPID,
        "timeStamp": "1795485600",
        "nonceStr": "abc",
        "package": f"prepay_id={prepay_id}",
        "signType": "RSA",
        "paySign": wpc.sign(new_key(), "anything"),
    }
    status, answer = await control(emulator, "/_emulator/pay/confirm", forged)
    assert (status, answer["code"]) == (400, "SIGN_ERROR")
    wrong_payer = {"prepay_id": prepay_id, "openid": "o" + "X" * 27}
    assert (await control(emulator, "/_emulator/pay/confirm", wrong_payer))[0] == 403
    status, seen = await control(emulator, "/_emulator/pay/orders?out_trade_no=EMU000000000001")
    assert status == 200 and seen["prepay_id"] == prepay_id
    assert seen["transaction"]["trade_state"] == "NOTPAY"
    assert (await control(emulator, "/_emulator/pay/orders?out_trade_no=nope"))[0] == 404

    drop = await control(
        emulator, "/_emulator/pay/notifications/drop", {"out_trade_no": "EMU000000000001"}
    )
    assert drop == (200, {"out_trade_no": "EMU000000000001", "drop": True})
    assert (await control(emulator, "/_emulator/pay/confirm", {"prepay_id": prepay_id}))[0] == 200
    await emulator.pay.notifier.idle()
    status, listed = await control(
        emulator, "/_emulator/pay/notifications?out_trade_no=EMU000000000001"
    )
    [note] = listed["notifications"]
    assert note["event_type"] == "TRANSACTION.SUCCESS" and note["dropped"] and note["done"]
    assert note["resource"]["trade_state"] == "SUCCESS" and note["attempts"] == []
    assert note["url"] == jsapi()["notify_url"]
    other = await control(emulator, "/_emulator/pay/notifications?event_type=REFUND.SUCCESS")
    assert other == (200, {"notifications": []})
    undrop = {"out_trade_no": "EMU000000000001", "drop": False}
    assert (await control(emulator, "/_emulator/pay/notifications/drop", undrop))[1][
        "drop"
    ] is False

    assert (await control(emulator, "/_emulator/pay/fail-next", {"count": "x"}))[0] == 400
    assert (await control(emulator, "/_emulator/pay/fail-next", {"status": 200}))[0] == 400
    await control(emulator, "/_emulator/pay/fail-next", {"status": 503, "code": "SYSTEM_ERROR"})
    status, body, res = await merchant.call("GET", "/v3/refund/domestic/refunds/none")
    assert (status, body["code"]) == (503, "SYSTEM_ERROR") and merchant.verify_answer(res)
    assert (await merchant.call("GET", "/v3/refund/domestic/refunds/none"))[0] == 404

    assert await control(emulator, "/_emulator/pay/reset", {}) == (200, {"ok": True})
    assert emulator.pay.orders == {} and emulator.pay.notifier.deliveries == []
    assert PAY_MCHID in emulator.pay.merchants


@pytest.mark.gen_test
async def test_request_time_is_checked_when_asked(pay_keys: PayKeys, clock: FixedClock) -> None:
    options = PayOptions(
        clock=lambda: clock.now().timestamp(),
        platform_private_key_pem=pay_keys.platform,
        check_request_time=True,
    )
    emu = await start_emulator(APPID, "secret", pay=options)
    try:
        emu.pay.add_merchant(
            PAY_MCHID,
            APPID,
            wpc.public_pem(wpc.load_private(pay_keys.merchant)),
            PAY_SERIAL,
            "k" * 32,
        )
        merchant = Merchant(emu, pay_keys.merchant, clock)
        uri = "/v3/pay/transactions/jsapi"
        assert (await merchant.call("POST", uri, jsapi()))[0] == 200
        old = str(int((clock.now() - dt.timedelta(minutes=6)).timestamp()))
        status, body, _ = await merchant.call("POST", uri, jsapi(), timestamp=old)
        assert (status, body["code"]) == (401, "SIGN_ERROR")
        with pytest.raises(ValueError):
            emu.pay.add_merchant("1900000002", APPID, emu.platform_public_key_pem, "AB", "short")
    finally:
        await emu.stop()
