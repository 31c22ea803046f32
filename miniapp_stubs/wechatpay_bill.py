"""The trade bill (交易账单) as WeChat Pay writes it: CSV-like text, every value prefixed with a
backtick, amounts in yuan; a header line, one line per trade, then a summary header and line.

A faithful subset: the documented columns of the ALL, SUCCESS and REFUND bills; payments are
listed on the day they succeeded, refunds on the day they succeeded; the fee is 0.6% of the
payment rounded to the fen, none on refunds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_COMMON = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
]
_REFUND = ["微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态"]
_TAIL = ["商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"]
HEADERS = {
    "ALL": [*_COMMON, *_REFUND, *_TAIL],
    "SUCCESS": [*_COMMON, "商品名称", "商户数据包", "手续费", "费率", "订单金额", "费率备注"],
    "REFUND": [*_COMMON, "退款申请时间", "退款成功时间", *_REFUND, *_TAIL],
}
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
FEE_PER_MILLE = 6


@dataclass(frozen=True)
class BillLine:
    """One trade of the day: a payment (refund fields empty) or a refund."""

    when: dt.datetime  # Beijing time
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    description: str
    attach: str
    total: int  # fen
    refund_id: str = ""
    out_refund_no: str = ""
    refund: int = 0
    refund_created: dt.datetime | None = None
    refund_status: str = ""

    @property
    def is_refund(self) -> bool:
        return bool(self.refund_id)

    @property
    def fee(self) -> int:
        return 0 if self.is_refund else (self.total * FEE_PER_MILLE + 500) // 1000


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _stamp(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def _values(line: BillLine) -> dict[str, str]:
    refund = line.is_refund
    return {
        "交易时间": _stamp(line.when),
        "公众账号ID": line.appid,
        "商户号": line.mchid,
        "特约商户号": "0",
        "设备号": "",
        "微信订单号": line.transaction_id,
        "商户订单号": line.out_trade_no,
        "用户标识": line.openid,
        "交易类型": "JSAPI",
        "交易状态": "REFUND" if refund else "SUCCESS",
        "付款银行": "OTHERS",
        "货币种类": "CNY",
        "应结订单金额": _yuan(0 if refund else line.total),
        "代金券金额": "0.00",
        "退款申请时间": _stamp(line.refund_created),
        "退款成功时间": _stamp(line.when) if refund else "",
        "微信退款单号": line.refund_id or "0",
        "商户退款单号": line.out_refund_no or "0",
        "退款金额": _yuan(line.refund),
        "充值券退款金额": "0.00",
        "退款类型": "ORIGINAL" if refund else "",
        "退款状态": line.refund_status,
        "商品名称": line.description,
        "商户数据包": line.attach,
        "手续费": f"{_yuan(line.fee)}000",
        "费率": "0.60%",
        "订单金额": _yuan(line.total),
        "申请退款金额": _yuan(line.refund),
        "费率备注": "",
    }


def render(lines: list[BillLine], bill_type: str) -> str:
    """The bill text of ``bill_type`` (ALL, SUCCESS or REFUND) for the given trades."""
    header = HEADERS[bill_type]
    out = [",".join(header)]
    for line in sorted(lines, key=lambda item: item.when):
        values = _values(line)
        out.append(",".join("`" + values[column] for column in header))
    payments = [line for line in lines if not line.is_refund]
    refunds = sum(line.refund for line in lines)
    summary = [
        str(len(lines)),
        _yuan(sum(line.total for line in payments)),
        _yuan(refunds),
        "0.00",
        f"{_yuan(sum(line.fee for line in lines))}000",
        _yuan(sum(line.total for line in payments)),
        _yuan(refunds),
    ]
    out += [SUMMARY, ",".join("`" + value for value in summary)]
    return "\r\n".join(out) + "\r\n"
