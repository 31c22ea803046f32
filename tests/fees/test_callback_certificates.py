"""Payment callbacks signed under WeChat Pay's platform certificates (issue 13), over HTTP.

WeChat Pay signs callbacks either with the platform public key (``Wechatpay-Serial``:
``PUB_KEY_ID_...``) or with a platform certificate (the serial: the certificate's serial
number), the certificates downloaded from ``GET /v3/certificates`` and decrypted with the
APIv3 key ("平台证书简介与使用说明"; 微信支付公钥: "切换期间…根据 Wechatpay-Serial 选择验签的公钥或
证书"). A merchant on certificates, or switching over with both, must be credited once.
"""

from __future__ import annotations

import pytest
from bson import ObjectId

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.platform.config import Settings
from server.wechat.pay_config import PayCredentials
from tests.factories import (
    PAY_APIV3_KEY,
    PAY_MCHID,
    PAY_SERIAL,
    Litigant,
    PayKeys,
    Staff,
    kinds,
    paid_case,
)


@pytest.fixture(params=["certificates", "switch-over"])
def pay_credentials(
    request: pytest.FixtureRequest, settings: Settings, emulator: Emulator, pay_keys: PayKeys
) -> PayCredentials:
    """The merchant on platform certificates alone, or with the public key too; the emulator
    signs with its newest certificate either way."""
    emulator.pay.sign_with("certificate")
    both = request.param == "switch-over"
    return PayCredentials(
        mchid=PAY_MCHID,
        appid=settings.wechatpay.appid,
        serial_no=PAY_SERIAL,
        private_key_pem=pay_keys.merchant,
        apiv3_key=PAY_APIV3_KEY,
        platform_public_key_pem=emulator.platform_public_key_pem if both else "",
        platform_public_key_id=emulator.platform_public_key_id if both else "",
        platform_certificates=True,
    )


@pytest.mark.gen_test(timeout=120)
async def test_a_callback_signed_under_a_platform_certificate_credits_once(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    case_id, order, plaintiff, _, _ = await paid_case(litigant, staff, emulator)
    (delivery,) = [
        d for d in emulator.pay.notifier.deliveries if d.event_type == "TRANSACTION.SUCCESS"
    ]
    # accepted at the first attempt (by the callback, not a later query), and its repeat too
    assert [a.status for a in delivery.attempts] == [204, 204]
    serial = emulator.pay.certificates.current.serial_no
    assert not serial.startswith("PUB_KEY_ID_")
    payment = await services.payments.load(order["payment_id"])
    assert payment.status == "paid"
    assert (await kinds(plaintiff)).count("payment_paid") == 1
    raw = await services.db["fee_notices"].find_one({"case_id": case_id})
    assert raw is not None and raw["status"] == "paid"


@pytest.mark.gen_test(timeout=120)
async def test_a_rotated_certificate_is_downloaded_and_the_refund_callback_credits_once(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    emulator.pay.refund_seconds = None
    _, order, plaintiff, _, clerk = await paid_case(litigant, staff, emulator)
    old = emulator.pay.certificates.current.serial_no
    new = emulator.pay.rotate_certificate()["serial"]
    assert new != old
    refund = await clerk.refund(order["payment_id"], {"reason": "other", "amount_fen": 1_000})
    assert refund.status == 201, refund.body
    raw = await services.db["refunds"].find_one({"_id": ObjectId(refund.body["id"])})
    assert raw is not None
    emulator.pay.settle_refund(raw["out_refund_no"])
    await emulator.pay.notifier.idle()
    (delivery,) = [d for d in emulator.pay.notifier.deliveries if d.event_type == "REFUND.SUCCESS"]
    assert [a.status for a in delivery.attempts] == [204, 204]
    assert new in services.wechatpay.certificate_serials
    assert (await services.payments.load(order["payment_id"])).refunded_fen == 1_000
    assert (await kinds(plaintiff)).count("refund_succeeded") == 1
