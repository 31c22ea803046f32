"""The errors of fees: the schedule, notices and relief, payments, refunds and reconciliation.

Also the payment callbacks this capability refuses (``UnknownOrder``, ``OrderMismatch``),
in the ``CallbackRejected`` family of ``server/wechat/errors.py``."""

from __future__ import annotations

from server.platform.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from server.wechat.errors import CallbackRejected


class FeeAmountOutOfRange(ValidationFailed):
    code = "fee_amount_out_of_range"
    message = "金额超出可计算的范围"


class FeeAmountRequired(ValidationFailed):
    code = "fee_amount_required"
    message = "此类费用须填写大于零的争议金额"


class FeeAmountNotAllowed(ValidationFailed):
    code = "fee_amount_not_allowed"
    message = "此类案件不按金额计费；涉及金额的请按财产案件计算"


class FeeProcedureNotAllowed(ValidationFailed):
    code = "fee_procedure_not_allowed"
    message = "申请类费用（执行、保全、支付令）不适用简易程序"


class FeeHalvingNotAllowed(ValidationFailed):
    code = "fee_halving_not_allowed"
    message = "申请类费用不减半交纳"


class FeeClaimNotReduced(ValidationFailed):
    code = "fee_claim_not_reduced"
    message = "变更后的金额不得高于原金额"


class FeeReliefNotRequested(ValidationFailed):
    code = "fee_relief_not_requested"
    message = "当事人未申请司法救助"


class FeeReliefUndecided(ValidationFailed):
    code = "fee_relief_undecided"
    message = "请先对司法救助申请作出决定"


class FeeReliefAmount(ValidationFailed):
    code = "fee_relief_amount"
    message = "减交后的金额应低于应交金额"


class FeeNoticeNotFound(NotFound):
    code = "fee_notice_not_found"
    message = "缴费通知不存在"


class FeeNoticePaid(Conflict):
    code = "fee_notice_paid"
    message = "该笔费用已缴纳"


class FeeNoticeClosed(Conflict):
    code = "fee_notice_closed"
    message = "该缴费通知无需缴费"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    message = "支付记录不存在"


class PaymentInProgress(Conflict):
    code = "payment_in_progress"
    message = "支付订单正在创建，请稍后重试"


class PaymentNotPaid(Conflict):
    code = "payment_not_paid"
    message = "该笔支付未完成，不能退款"


class NothingToRefund(ValidationFailed):
    code = "nothing_to_refund"
    message = "按规定无需退费"


class NoAmountInDispute(ValidationFailed):
    code = "no_amount_in_dispute"
    message = "本案没有争议金额，不适用减少诉讼请求退费"


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"
    message = "退款金额超过可退金额"


class RefundRefused(Conflict):
    code = "refund_refused"
    message = "微信支付拒绝退款"


class RefundWindowClosed(Conflict):
    """WeChat Pay: "交易时间超过一年的订单无法提交退款（按支付成功时间+365天计算）"."""

    code = "refund_window_closed"
    message = "支付已超过365天，微信支付不再受理退款，请线下办理退费"


class RefundCountExceeded(Conflict):
    """WeChat Pay: "每个支付订单的部分退款次数不能超过50次"."""

    code = "refund_count_exceeded"
    message = "该笔支付已申请退款50次，微信支付不再受理，请线下办理退费"


class RefundTooFrequent(RateLimited):
    """WeChat Pay: "同一笔订单多次退款的请求需相隔1分钟"."""

    code = "refund_too_frequent"
    message = "同一笔支付的退款申请须间隔1分钟，请稍后再试"


class RefundBalanceInsufficient(Conflict):
    """WeChat Pay answered NOT_ENOUGH: the court's merchant account cannot pay it back now."""

    code = "refund_balance_insufficient"
    message = "法院微信支付商户账户余额不足，请充值后重新发起退款"


class RefundNotFound(NotFound):
    code = "refund_not_found"
    message = "退款记录不存在"


class RefundNotAbnormal(Conflict):
    code = "refund_not_abnormal"
    message = "只有退款异常的退款单需要处理"


class SystemAdminOnly(Forbidden):
    code = "system_admin_only"
    message = "对账仅限系统管理员"


class BillUnavailable(ValidationFailed):
    code = "bill_unavailable"
    message = "微信支付账单不可用"


class BillTooOld(ValidationFailed):
    """WeChat Pay: "此接口仅可下载三个月内的账单"."""

    code = "bill_too_old"
    message = "微信支付仅提供最近三个月的交易账单"


class UnknownOrder(CallbackRejected):
    """A verified callback for an order we have no record of: refused, so that WeChat Pay
    delivers it again (and reconciliation finds it)."""

    status = 404
    code = "callback_unknown_order"
    message = "订单不存在"


class OrderMismatch(CallbackRejected):
    """A verified callback whose merchant, app or amount is not the order's."""

    code = "callback_order_mismatch"
    message = "订单信息不符"
