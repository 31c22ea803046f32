"""What the WeChat Pay adapter returns and raises.

Results mirror WeChat Pay v3's JSON (field names and nesting as documented), amounts in fen,
times tz-aware. Errors: ``WeChatPayError`` (WeChat Pay said no: code, message, status),
``WeChatPayUnavailable`` (unreachable, 5xx, 429, or an answer we cannot trust: retry later,
the outcome is unknown). The callbacks we refuse raise ``CallbackRejected`` subclasses
(``server/wechat/errors.py``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from server.wechat.errors import CallbackMalformed

BEIJING = dt.timezone(dt.timedelta(hours=8))


class WeChatPayError(Exception):
    """WeChat Pay answered with an error: ``code`` as documented (ORDER_NOT_EXIST, ORDERPAID,
    OUT_TRADE_NO_USED, INVALID_REQUEST, PARAM_ERROR, SIGN_ERROR ...), its ``message`` and
    ``detail``, and the HTTP ``status`` (None when there was no answer)."""

    def __init__(
        self, code: str, message: str, status: int | None = None, detail: Any = None
    ) -> None:
        super().__init__(f"wechatpay {status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail


class WeChatPayUnavailable(WeChatPayError):
    """WeChat Pay could not be reached (status None, code NETWORK_ERROR), answered 5xx or 429
    FREQUENCY_LIMITED: the dependency is down; the call's outcome is unknown, query later."""


class WeChatPayBadResponse(WeChatPayUnavailable):
    """An answer we cannot trust: its platform signature fails, or its shape or bill hash is
    wrong (code INVALID_RESPONSE). Treated as an outage: never act on its content."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


class RefundStatus(StrEnum):
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    PROCESSING = "PROCESSING"
    ABNORMAL = "ABNORMAL"


class Amount(_Wire):
    total: int  # fen
    payer_total: int | None = None  # what the payer paid, once paid
    currency: str = "CNY"
    payer_currency: str | None = None


class Payer(_Wire):
    openid: str | None = None


class Transaction(_Wire):
    """GET /v3/pay/transactions/out-trade-no/{no}, and TRANSACTION.SUCCESS's resource.
    ``appid`` is optional: the query's documentation marks it 选填 (absent is no mismatch);
    payer, transaction_id and the rest come only once paid."""

    appid: str | None = None
    mchid: str
    out_trade_no: str
    trade_state: TradeState
    trade_state_desc: str = ""
    transaction_id: str | None = None
    trade_type: str | None = None
    bank_type: str | None = None
    attach: str | None = None
    success_time: dt.datetime | None = None
    amount: Amount
    payer: Payer = Payer()

    @property
    def paid(self) -> bool:
        """Paid (possibly refunded since): SUCCESS or REFUND."""
        return self.trade_state in (TradeState.SUCCESS, TradeState.REFUND)


class RefundAmount(_Wire):
    total: int
    refund: int
    payer_total: int | None = None
    payer_refund: int | None = None
    currency: str = "CNY"


class Refund(_Wire):
    """POST /v3/refund/domestic/refunds and GET /v3/refund/domestic/refunds/{no}."""

    refund_id: str
    out_refund_no: str
    transaction_id: str
    out_trade_no: str
    status: RefundStatus
    channel: str | None = None
    user_received_account: str | None = None
    create_time: dt.datetime | None = None
    success_time: dt.datetime | None = None
    amount: RefundAmount


class RefundNotice(_Wire):
    """The resource of REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED."""

    mchid: str
    transaction_id: str
    out_trade_no: str
    refund_id: str
    out_refund_no: str
    refund_status: RefundStatus
    success_time: dt.datetime | None = None
    user_received_account: str | None = None
    amount: RefundAmount


class PayNotification(_Wire):
    """A verified, decrypted callback: the envelope, and ``resource`` in plaintext."""

    id: str
    create_time: dt.datetime
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    resource_type: str
    summary: str = ""
    resource: dict[str, Any]

    def transaction(self) -> Transaction:
        """The resource of a TRANSACTION.* event; CallbackMalformed if it is not one."""
        return _parse(Transaction, self.resource, self.event_type.startswith("TRANSACTION."))

    def refund(self) -> RefundNotice:
        """The resource of a REFUND.* event; CallbackMalformed if it is not one."""
        return _parse(RefundNotice, self.resource, self.event_type.startswith("REFUND."))


M = TypeVar("M", bound=_Wire)


def _parse(model: type[M], data: dict[str, Any], kind_ok: bool) -> M:
    if not kind_ok:
        raise CallbackMalformed("通知类型与资源不符")
    try:
        return model.model_validate(data)
    except ValidationError:
        raise CallbackMalformed("通知资源格式有误") from None


class BillRow(_Wire):
    """One line of a trade bill: a payment (trade_state SUCCESS) or a refund (REFUND)."""

    trade_time: dt.datetime  # Beijing time
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str
    settlement_fen: int  # 应结订单金额
    total_fen: int  # 订单金额
    refund_id: str | None = None
    out_refund_no: str | None = None
    refund_fen: int = 0
    refund_status: str | None = None
    description: str = ""
    attach: str = ""
    fee_yuan: Decimal = Decimal(0)


class BillSummary(_Wire):
    count: int
    settlement_fen: int
    refund_fen: int
    fee_yuan: Decimal
    total_fen: int


class TradeBill(_Wire):
    """A day's trade bill; ``rows`` empty (``summary`` None) when WeChat Pay has no bill for
    the day because nothing was traded (NO_STATEMENT_EXIST)."""

    day: dt.date
    bill_type: str
    rows: list[BillRow]
    summary: BillSummary | None = None


def _fen(text: str) -> int:
    value = Decimal(text or "0") * 100
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number of fen: {text}")
    return int(value)


def _fields(line: str) -> list[str]:
    return [part.removeprefix("`") for part in line.split(",")]


def _row(values: dict[str, str]) -> BillRow:
    def get(name: str) -> str:
        return values.get(name, "")

    stamp = dt.datetime.strptime(get("交易时间"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    refund_id = get("微信退款单号")
    return BillRow(
        trade_time=stamp,
        appid=get("公众账号ID"),
        mchid=get("商户号"),
        transaction_id=get("微信订单号"),
        out_trade_no=get("商户订单号"),
        openid=get("用户标识"),
        trade_type=get("交易类型"),
        trade_state=get("交易状态"),
        settlement_fen=_fen(get("应结订单金额")),
        total_fen=_fen(get("订单金额")),
        refund_id=refund_id if refund_id not in ("", "0") else None,
        out_refund_no=get("商户退款单号") if refund_id not in ("", "0") else None,
        refund_fen=_fen(get("退款金额")),
        refund_status=get("退款状态") or None,
        description=get("商品名称"),
        attach=get("商户数据包"),
        fee_yuan=Decimal(get("手续费") or "0"),
    )


class ParsedBill(NamedTuple):
    rows: list[BillRow]
    summary: BillSummary | None


def parse_trade_bill(text: str) -> ParsedBill:
    """Rows and summary of a trade bill's text; ValueError if it is not one. A leading UTF-8
    byte-order mark (which spreadsheet tools, and WeChat Pay's files, may carry) is no part
    of the first column's name."""
    lines = [line for line in text.removeprefix("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty bill")
    header = _fields(lines[0])
    split = next((i for i, line in enumerate(lines) if line.startswith("总交易单数")), len(lines))
    try:
        rows = [_row(dict(zip(header, _fields(line), strict=True))) for line in lines[1:split]]
        summary = None
        if split + 1 < len(lines):
            totals = dict(zip(_fields(lines[split]), _fields(lines[split + 1]), strict=True))
            summary = BillSummary(
                count=int(totals["总交易单数"]),
                settlement_fen=_fen(totals["应结订单总金额"]),
                refund_fen=_fen(totals["退款总金额"]),
                fee_yuan=Decimal(totals["手续费总金额"]),
                total_fen=_fen(totals.get("订单总金额", "0")),
            )
    except (KeyError, ValueError, InvalidOperation) as e:
        raise ValueError(f"not a trade bill: {type(e).__name__}") from None
    return ParsedBill(rows, summary)
