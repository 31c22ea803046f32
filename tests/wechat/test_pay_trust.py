"""WeChat Pay as its documents say it behaves (issue 13): the emulator and the adapter.

Each test cites the rule it checks:
- 申请退款 (pay.weixin.qq.com/doc/v3/merchant/4012556457): "交易时间超过一年的订单无法提交退款
  （按支付成功时间+365天计算）"; "每个支付订单的部分退款次数不能超过50次"; "同一笔订单多次退款的请求
  需相隔1分钟"; errors 403 NOT_ENOUGH (余额不足), 429 FREQUENCY_LIMITED (频率限制).
- 发起异常退款 (/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund): only for a refund
  "确认状态为退款异常"; type USER_BANK_CARD (bank_type, bank_account, real_name 若退款至用户此字段
  必填) or MERCHANT_BANK_CARD.
- 下载平台证书 (GET /v3/certificates): encrypt_certificate sealed with AEAD_AES_256_GCM under
  the APIv3 key; the merchant picks the key by Wechatpay-Serial (公钥ID or 证书序列号).
- 申请交易账单: "此接口仅可下载三个月内的账单".
- 商户订单号查询订单: appid 选填.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from miniapp_stubs.emulator import Emulator
from miniapp_stubs.wechatpay_rules import PayError
from miniapp_stubs.wechatpay_state import Merchant
from server.platform.clock import FixedClock
from server.platform.config import Settings
from server.wechat.errors import CallbackSignatureInvalid
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import PayCredentials
from server.wechat.pay_models import RefundStatus, Transaction, WeChatPayError, parse_trade_bill
from tests.waiting import until
from tests.wechat.test_pay import Recorder, order, phone, recorder  # noqa: F401


def adapter(
    settings: Settings, creds: PayCredentials, clock: FixedClock, emulator: Emulator, **kw: Any
) -> WeChatPayAdapter:
    return WeChatPayAdapter.from_settings(
        settings, PayCredentials(**{**creds.__dict__, **kw}), clock, api_base=emulator.url
    )


def merchant(emulator: Emulator) -> Merchant:
    (only,) = emulator.pay.merchants.values()
    return only


@pytest.fixture
def by_hand(emulator: Emulator) -> None:
    emulator.pay.refund_seconds = None


async def paid(pay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock, no: str) -> None:
    prepay_id = await order(pay, clock, no, fen=10_000)
    await phone(emulator).request_payment({"prepay_id": prepay_id})


@pytest.mark.gen_test(timeout=60)
async def test_the_refund_limits_are_refused_as_documented(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock, by_hand: None
) -> None:
    await paid(wechatpay, emulator, clock, "FEE000LIMITS")
    args: dict[str, Any] = {"out_trade_no": "FEE000LIMITS", "refund_fen": 1, "total_fen": 10_000}
    await wechatpay.refund(out_refund_no="L-0", **args)
    with pytest.raises(WeChatPayError) as often:  # 同一笔订单多次退款的请求需相隔1分钟
        await wechatpay.refund(out_refund_no="L-1", **args)
    assert (often.value.status, often.value.code) == (429, "FREQUENCY_LIMITED")
    for n in range(1, 50):
        clock.advance(minutes=1)
        await wechatpay.refund(out_refund_no=f"L-{n}", **args)
    clock.advance(minutes=1)
    with pytest.raises(WeChatPayError) as fifty:  # 部分退款次数不能超过50次
        await wechatpay.refund(out_refund_no="L-50", **args)
    assert (fifty.value.status, fifty.value.code) == (400, "INVALID_REQUEST")
    assert "50次" in fifty.value.message

    await paid(wechatpay, emulator, clock, "FEE0000POOR")
    emulator.pay.refunds.balance_fen = 99
    poor = {"out_trade_no": "FEE0000POOR", "refund_fen": 100, "total_fen": 10_000}
    with pytest.raises(WeChatPayError) as balance:
        await wechatpay.refund(out_refund_no="P-1", **poor)
    assert (balance.value.status, balance.value.code) == (403, "NOT_ENOUGH")
    emulator.pay.refunds.balance_fen = None
    clock.advance(days=366)
    with pytest.raises(WeChatPayError) as late:  # 交易时间超过一年的订单无法提交退款
        await wechatpay.refund(out_refund_no="P-2", **poor)
    assert late.value.code == "INVALID_REQUEST" and "一年" in late.value.message


@pytest.mark.gen_test(timeout=30)
async def test_an_abnormal_refund_keeps_its_money_until_applied_for(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock, by_hand: None
) -> None:
    await paid(wechatpay, emulator, clock, "FEE00ABNORMAL")
    args: dict[str, Any] = {"out_trade_no": "FEE00ABNORMAL", "total_fen": 10_000}
    refund = await wechatpay.refund(out_refund_no="AB-1", refund_fen=10_000, **args)
    with pytest.raises(WeChatPayError) as not_yet:  # only an ABNORMAL refund
        await wechatpay.apply_abnormal_refund(
            refund_id=refund.refund_id, out_refund_no="AB-1", to_user=False
        )
    assert not_yet.value.code == "INVALID_REQUEST"
    emulator.pay.settle_refund("AB-1", "ABNORMAL")
    assert (await wechatpay.query_refund("AB-1")).status == RefundStatus.ABNORMAL
    clock.advance(minutes=1)
    with pytest.raises(WeChatPayError) as twice:  # the money is not back: nothing to refund
        await wechatpay.refund(out_refund_no="AB-2", refund_fen=1, **args)
    assert twice.value.code == "INVALID_REQUEST"
    with pytest.raises(WeChatPayError) as no_card:  # 若退款至用户此字段必填
        await wechatpay.apply_abnormal_refund(
            refund_id=refund.refund_id, out_refund_no="AB-1", to_user=True
        )
    assert no_card.value.code == "PARAM_ERROR"
    plain = {"out_refund_no": "AB-1", "type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT"}
    plain |= {"bank_account": "6222020200112233445", "real_name": "张三"}
    with pytest.raises(PayError) as unencrypted:  # 该字段需要使用微信支付公钥加密
        emulator.pay.apply_abnormal_refund(merchant(emulator), refund.refund_id, plain)
    assert unencrypted.value.code == "PARAM_ERROR"
    again = await wechatpay.apply_abnormal_refund(
        refund_id=refund.refund_id,
        out_refund_no="AB-1",
        to_user=True,
        bank_type="ICBC_DEBIT",
        bank_account="6222020200112233445",
        real_name="张三",
    )
    assert again.status == RefundStatus.PROCESSING
    emulator.pay.settle_refund("AB-1", "SUCCESS")
    assert (await wechatpay.query_refund("AB-1")).status == RefundStatus.SUCCESS


@pytest.mark.gen_test(timeout=60)
async def test_callbacks_verify_by_serial_in_either_mode_and_after_rotation(
    io_loop: IOLoop,
    settings: Settings,
    pay_credentials: PayCredentials,
    emulator: Emulator,
    recorder: Recorder,  # noqa: F811
    clock: FixedClock,
) -> None:
    both = adapter(settings, pay_credentials, clock, emulator, platform_certificates=True)
    certs_only = adapter(
        settings,
        pay_credentials,
        clock,
        emulator,
        platform_public_key_pem="",
        platform_public_key_id="",
        platform_certificates=True,
    )
    keys_only = adapter(settings, pay_credentials, clock, emulator)
    try:
        prepay_id = await order(both, clock, "FEE00BYPUBKEY", notify_url=recorder.url + "/a")
        await phone(emulator).request_payment({"prepay_id": prepay_id})
        emulator.pay.sign_with("certificate")
        prepay_id = await order(both, clock, "FEE00BYCERT01", notify_url=recorder.url + "/b")
        await phone(emulator).request_payment({"prepay_id": prepay_id})
        await until(lambda: {c.path for c in recorder.calls} >= {"/notify/a", "/notify/b"})
        by_key = next(c for c in recorder.calls if c.path == "/notify/a")
        by_cert = next(c for c in recorder.calls if c.path == "/notify/b")
        assert by_key.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")
        assert by_cert.headers["Wechatpay-Serial"] == emulator.pay.certificates.current.serial_no
        # switching over: both verify; on certificates alone the public key's is unknown
        for call in (by_key, by_cert):
            note = await both.verified_callback(call.headers, call.body)
            assert note.event_type == "TRANSACTION.SUCCESS"
        assert (await certs_only.verified_callback(by_cert.headers, by_cert.body)).id
        with pytest.raises(CallbackSignatureInvalid):
            await certs_only.verified_callback(by_key.headers, by_key.body)
        with pytest.raises(CallbackSignatureInvalid):  # and a public-key merchant knows no cert
            await keys_only.verified_callback(by_cert.headers, by_cert.body)

        # rotation: a new serial signs; the merchant downloads once and verifies (downloads
        # are at most one a minute, so that forged serials cannot make us download on and on)
        emulator.pay.rotate_certificate()
        clock.advance(minutes=1)
        prepay_id = await order(keys_only, clock, "FEE00BYCERT02", notify_url=recorder.url + "/c")
        await phone(emulator).request_payment({"prepay_id": prepay_id})
        await until(lambda: any(c.path == "/notify/c" for c in recorder.calls))
        rotated = next(c for c in recorder.calls if c.path == "/notify/c")
        assert rotated.headers["Wechatpay-Serial"] not in certs_only.certificate_serials
        assert (await certs_only.verified_callback(rotated.headers, rotated.body)).id
        assert len(certs_only.certificate_serials) == 2  # the old one is still served
        # a forged serial: refused, without another download within the minute
        downloaded = certs_only._keys.refreshed_at
        forged = {**rotated.headers, "Wechatpay-Serial": "ABCDEF0123456789"}
        with pytest.raises(CallbackSignatureInvalid):
            await certs_only.verified_callback(forged, rotated.body)
        assert certs_only._keys.refreshed_at == downloaded
    finally:
        for pay in (both, certs_only, keys_only):
            await pay.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_the_certificates_download_is_sealed_with_the_apiv3_key(
    wechatpay: WeChatPayAdapter, emulator: Emulator
) -> None:
    emulator.pay.rotate_certificate()
    emulator.pay.rotate_certificate()
    body = emulator.pay.certificates.download("k" * 32)
    assert [e["serial_no"] for e in body["data"]] == [
        c.serial_no for c in emulator.pay.certificates.issued
    ]
    assert len(body["data"]) == 2  # the two in service through the overlap
    sealed = body["data"][0]["encrypt_certificate"]
    assert sealed["algorithm"] == "AEAD_AES_256_GCM" and sealed["associated_data"] == "certificate"
    assert "BEGIN CERTIFICATE" not in str(body)


@pytest.mark.gen_test(timeout=30)
async def test_only_three_months_of_bills_and_a_byte_order_mark_is_fine(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock
) -> None:
    await paid(wechatpay, emulator, clock, "FEE000BOMBILL")
    emulator.pay.bill_bom = True
    clock.set(dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC))  # 10:00 the next day in Beijing
    bill = await wechatpay.trade_bill(dt.date(2026, 11, 23))
    assert [r.out_trade_no for r in bill.rows] == ["FEE000BOMBILL"]
    with pytest.raises(WeChatPayError) as old:  # 此接口仅可下载三个月内的账单
        await wechatpay.trade_bill(dt.date(2026, 8, 23))
    assert old.value.code == "INVALID_REQUEST" and "三个月" in old.value.message
    assert (await wechatpay.trade_bill(dt.date(2026, 8, 24))).rows == []

    text = "\ufeff交易时间,商户订单号\n`2026-11-23 10:00:00,`FEE1\n"
    (row,) = parse_trade_bill(text).rows
    assert row.out_trade_no == "FEE1"


def test_the_transaction_needs_no_appid() -> None:
    """商户订单号查询订单: appid is 选填; an order not yet paid carries no payer either."""
    txn = Transaction.model_validate(
        {
            "mchid": "1900000109",
            "out_trade_no": "FEE0000NOAPP",
            "trade_state": "NOTPAY",
            "trade_state_desc": "订单未支付",
            "amount": {"total": 100},
        }
    )
    assert txn.appid is None and not txn.paid
