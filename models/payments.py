"""Payments of fee notices through WeChat Pay (JSAPI), and their refunds. Money in fen."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.common import InputModel, ObjectIdStr, OutputModel
from models.fee_notices import FeeNoticeOut


class PaymentStatus(StrEnum):
    pending = "pending"  # ordered, not (yet) paid
    paid = "paid"
    closed = "closed"  # expired or closed unpaid
    partially_refunded = "partially_refunded"
    refunded = "refunded"


class RefundStatus(StrEnum):
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"  # WeChat Pay refused or closed it; the amount is refundable again
    # WeChat Pay could not pay it back (the payer's account closed, a card frozen ...): the money
    # waits in an intermediate account until staff resolve it; never refundable again
    abnormal = "abnormal"


class AbnormalResolution(StrEnum):
    """How staff resolve an abnormal refund: WeChat Pay's apply-abnormal-refund to the payer's
    bank card or to the court's own account, or paid back outside WeChat Pay (recorded)."""

    user_bank_card = "user_bank_card"
    merchant_bank_card = "merchant_bank_card"
    offline = "offline"


class RefundReason(StrEnum):
    """Why money goes back. The law's own reasons are computed by the fee schedule; ``other``
    (overpayment, a winner's refund ordered in the judgment …) takes the amount from staff."""

    dismissed = "dismissed"  # 驳回起诉 / 不予受理: the whole acceptance fee
    withdrawal = "withdrawal"  # 撤诉: half (Art. 15)
    mediation = "mediation"  # 调解结案: half (Art. 15)
    reduced_claim = "reduced_claim"  # 变更诉讼请求减少标的额: the difference
    other = "other"


REASON_NAMES = {
    RefundReason.dismissed: "驳回起诉或不予受理，退还受理费",
    RefundReason.withdrawal: "撤诉，减半收取受理费",
    RefundReason.mediation: "调解结案，减半收取受理费",
    RefundReason.reduced_claim: "减少诉讼请求金额，退还差额",
    RefundReason.other: "其他",
}


class PaymentCreate(InputModel):
    fee_notice_id: ObjectIdStr


class RefundCreate(InputModel):
    reason: RefundReason
    amount_fen: int | None = Field(None, gt=0, le=10**13, description="reason=other only")
    new_amount_fen: int | None = Field(
        None, ge=0, le=10**13, description="reduced_claim: the amount now claimed"
    )
    note: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _fits_reason(self) -> RefundCreate:
        if (self.reason == RefundReason.other) != (self.amount_fen is not None):
            raise ValueError("amount_fen is given for reason=other, and only then")
        if (self.reason == RefundReason.reduced_claim) != (self.new_amount_fen is not None):
            raise ValueError("new_amount_fen is given for reason=reduced_claim, and only then")
        return self


# ---- stored


class PaymentDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    out_trade_no: str
    fee_notice_id: str
    case_id: str
    case_no: str
    court_id: str
    payer_id: str
    payer_openid: str
    amount_fen: int
    description: str
    status: PaymentStatus
    prepay_id: str | None = None
    expires_at: dt.datetime  # WeChat Pay's time_expire: unpaid after this, the order closes
    transaction_id: str | None = None
    paid_at: dt.datetime | None = None
    refundable_fen: int = 0  # paid minus refunded minus refunds in flight
    refunded_fen: int = 0
    refund_count: int = 0  # refunds asked of WeChat Pay (at most 50 an order)
    last_refund_at: dt.datetime | None = None  # WeChat Pay: one refund a minute per order
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = 1


class RefundResolve(InputModel):
    """``user_bank_card`` needs the payer's bank, card number and name (sent to WeChat Pay
    encrypted, never stored); ``offline`` needs a note of how the money went back."""

    method: AbnormalResolution
    bank_type: str | None = Field(None, min_length=1, max_length=16, examples=["ICBC_DEBIT"])
    bank_account: str | None = Field(None, pattern=r"^[0-9]{12,30}$")
    real_name: str | None = Field(None, min_length=1, max_length=50)
    note: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _fits_method(self) -> RefundResolve:
        card = (self.bank_type, self.bank_account, self.real_name)
        if self.method == AbnormalResolution.user_bank_card and not all(card):
            raise ValueError("退款至用户银行卡须填写开户银行、卡号和户名")
        if self.method != AbnormalResolution.user_bank_card and any(card):
            raise ValueError("只有退款至用户银行卡时填写银行卡信息")
        if self.method == AbnormalResolution.offline and not self.note:
            raise ValueError("线下退款须说明退款方式和凭证")
        return self


class RefundDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    out_refund_no: str
    payment_id: str
    out_trade_no: str
    case_id: str
    court_id: str
    payer_id: str
    amount_fen: int
    reason: RefundReason
    note: str | None = None
    status: RefundStatus
    refund_id: str | None = None  # WeChat Pay's
    requested_by: str
    created_at: dt.datetime
    succeeded_at: dt.datetime | None = None
    error: str | None = None
    # how an abnormal refund was resolved: {method, by, at, note?, bank_type?, account_tail?}
    resolution: dict[str, Any] | None = None


# ---- outputs


class PayParams(OutputModel):
    """What the mini-program passes to ``wx.requestPayment``."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str
    signType: str = "RSA"
    paySign: str


class PaymentOut(OutputModel):
    payment_id: str
    fee_notice_id: str
    case_id: str
    case_no: str
    amount_fen: int
    status: PaymentStatus
    expires_at: dt.datetime
    paid_at: dt.datetime | None = None
    refunded_fen: int = 0
    pay_params: PayParams | None = Field(None, description="while pending, for the payer")


class RefundOut(OutputModel):
    id: str
    payment_id: str
    case_id: str
    amount_fen: int
    reason: RefundReason
    status: RefundStatus
    created_at: dt.datetime
    succeeded_at: dt.datetime | None = None
    resolution: str | None = Field(None, description="how an abnormal refund was resolved")


class FeesOut(OutputModel):
    notices: list[FeeNoticeOut]
    payments: list[PaymentOut]
    refunds: list[RefundOut]


def payment_out(doc: PaymentDoc, pay_params: PayParams | None = None) -> PaymentOut:
    return PaymentOut(
        payment_id=str(doc.id),
        fee_notice_id=doc.fee_notice_id,
        case_id=doc.case_id,
        case_no=doc.case_no,
        amount_fen=doc.amount_fen,
        status=doc.status,
        expires_at=doc.expires_at,
        paid_at=doc.paid_at,
        refunded_fen=doc.refunded_fen,
        pay_params=pay_params,
    )


def refund_out(doc: RefundDoc) -> RefundOut:
    return RefundOut(
        id=str(doc.id),
        payment_id=doc.payment_id,
        case_id=doc.case_id,
        amount_fen=doc.amount_fen,
        reason=doc.reason,
        status=doc.status,
        created_at=doc.created_at,
        succeeded_at=doc.succeeded_at,
        resolution=doc.resolution["method"] if doc.resolution else None,
    )
