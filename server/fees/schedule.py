"""Court fees by 《诉讼费用交纳办法》 (State Council Order 481): pure arithmetic, no I/O.

``court_fee`` computes a case acceptance fee (Art. 13) or an application fee (Art. 14) with its
breakdown; ``refund_*`` compute the refunds the law names; ``fee_kind_for`` maps a case to its
kind of fee.

Amounts, by kind:
- required, more than 0: property, payment_order;
- optional (absent and 0 both mean "none"): divorce (property to divide), personality_rights
  (damages claimed), execution (amount to execute), preservation (property to preserve);
- accepted and ignored (the fee is per case whatever is claimed): labor, administrative,
  administrative_special;
- refused unless 0 (an amount would make it a property case): non_property, ip_no_amount.
Every amount is an int of fen, 0 to MAX_AMOUNT_FEN.

Arithmetic: exact Decimal on the amount in fen, rounded half up to the fen once at the end; a
halving halves that rounded fee and rounds half up again. A payment order is a third of the
exact property fee, rounded once. The preservation fee is capped at 5,000 yuan.

Halving (Art. 15, 16, 18) applies to case acceptance fees only, and at most once: a simplified
case closed by mediation is halved once (the text halves "the acceptance fee"; it does not say
a halved fee is halved again). Applications (execution, preservation, payment order) are
never halved and cannot take the simplified procedure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from models.common import MAX_AMOUNT_FEN, Procedure
from models.fees import FeeKind, FeeLine, FeeResult, FeeStep, Halving
from server.fees.errors import (
    FeeAmountNotAllowed,
    FeeAmountOutOfRange,
    FeeAmountRequired,
    FeeClaimNotReduced,
    FeeHalvingNotAllowed,
    FeeProcedureNotAllowed,
)
from server.platform.config import FixedFees

YUAN = 100  # fen
PRESERVATION_CAP_FEN = 5_000 * YUAN
LABOR_FEN = 10 * YUAN
ADMINISTRATIVE_FEN = 50 * YUAN
ADMINISTRATIVE_SPECIAL_FEN = 100 * YUAN

APPLICATIONS = frozenset({FeeKind.execution, FeeKind.preservation, FeeKind.payment_order})
AMOUNT_REQUIRED = frozenset({FeeKind.property, FeeKind.payment_order})
AMOUNT_OPTIONAL = frozenset(
    {FeeKind.divorce, FeeKind.personality_rights, FeeKind.execution, FeeKind.preservation}
)
AMOUNT_IGNORED = frozenset({FeeKind.labor, FeeKind.administrative, FeeKind.administrative_special})
AMOUNT_REFUSED = frozenset({FeeKind.non_property, FeeKind.ip_no_amount})

HALVING_LABELS = {
    Halving.simplified: "适用简易程序审理的案件，减半交纳（第十六条）",
    Halving.mediation: "以调解方式结案的，减半交纳（第十五条）",
    Halving.withdrawal: "当事人申请撤诉的，减半交纳（第十五条）",
    Halving.counterclaim: "反诉合并审理的，减半交纳（第十八条）",
}


@dataclass(frozen=True)
class Schedule:
    """A fee covering the amount up to ``base_up_to`` yuan, then a rate on each part above.

    ``rates``: (upper bound in yuan, None for no bound; the rate in percent) from low to high.
    """

    base_label: str
    base_up_to: int
    rates: tuple[tuple[int | None, str], ...]


PROPERTY = Schedule(
    "不超过1万元的，每件交纳50元",
    10_000,
    (
        (100_000, "2.5"),
        (200_000, "2"),
        (500_000, "1.5"),
        (1_000_000, "1"),
        (2_000_000, "0.9"),
        (5_000_000, "0.8"),
        (10_000_000, "0.7"),
        (20_000_000, "0.6"),
        (None, "0.5"),
    ),
)
DIVORCE = Schedule("离婚案件每件（财产总额不超过20万元的，不另行交纳）", 200_000, ((None, "0.5"),))
PERSONALITY = Schedule(
    "侵害人格权案件每件（赔偿金额不超过5万元的，不另行交纳）",
    50_000,
    ((100_000, "1"), (None, "0.5")),
)
EXECUTION = Schedule(
    "执行金额不超过1万元的，每件交纳50元",
    10_000,
    ((500_000, "1.5"), (5_000_000, "1"), (10_000_000, "0.5"), (None, "0.1")),
)
PRESERVATION = Schedule(
    "财产数额不超过1000元或者不涉及财产数额的，每件交纳30元",
    1_000,
    ((100_000, "1"), (None, "0.5")),
)


# ---- the public API


def court_fee(
    kind: FeeKind,
    amount_fen: int | None = None,
    *,
    procedure: Procedure = Procedure.ordinary,
    halving: Halving | None = None,
    fixed: FixedFees | None = None,
) -> FeeResult:
    """The fee of one case or application, with its breakdown.

    ``fixed``: the court's choices within the legal ranges (config ``courts[].fixed_fees``);
    None: the lower bound of each range. ``halving``: mediation, withdrawal or counterclaim
    (the simplified procedure halves by itself). Raises ValidationFailed (422) for an amount
    or a halving the kind does not take.
    """
    kind, procedure = FeeKind(kind), Procedure(procedure)  # plain strings are welcome too
    amount = _checked_amount(kind, amount_fen)
    reason = _halving(kind, procedure, None if halving is None else Halving(halving))
    with localcontext(prec=50):
        lines = _lines(kind, amount, fixed or FixedFees())
        total = sum((Decimal(line.part) for line in lines), Decimal(0))
        steps = _steps(kind, total, reason)
    return FeeResult(
        kind=kind,
        amount_fen=amount_fen,
        procedure=procedure,
        lines=lines,
        total=_text(total),
        steps=steps,
        halving=reason,
        fee_fen=steps[-1].fee_fen if steps else round_fen(total),
    )


def refund_all(paid_fen: int) -> int:
    """Case not accepted, or the suit dismissed: the whole acceptance fee paid goes back."""
    return _paid(paid_fen)


def refund_halving(paid_fen: int) -> int:
    """Withdrawal or mediation (Art. 15) after the full fee was paid: the half given back.

    The fee due becomes half the paid fee rounded half up; the rest is refunded, so the refund
    and the fee due always add up to what was paid.
    """
    paid = _paid(paid_fen)
    return paid - round_fen(Decimal(paid) / 2)


def refund_reduced_claim(
    kind: FeeKind,
    old_amount_fen: int,
    new_amount_fen: int,
    *,
    procedure: Procedure = Procedure.ordinary,
    fixed: FixedFees | None = None,
) -> int:
    """A claim reduced before the end of the court investigation (Art. 21): the fee on the old
    amount minus the fee on the new one, each computed (and rounded) as a fee."""
    if new_amount_fen > old_amount_fen:
        raise FeeClaimNotReduced.at(["new_amount_fen"])
    old = court_fee(kind, old_amount_fen, procedure=procedure, fixed=fixed)
    new = court_fee(kind, new_amount_fen, procedure=procedure, fixed=fixed)
    return old.fee_fen - new.fee_fen


_CIVIL_LIKE = frozenset({"civil", "civil_appeal", "third_party_revocation"})
_BY_CASE_KIND = {
    "administrative": FeeKind.administrative,
    "execution": FeeKind.execution,
    "preservation": FeeKind.preservation,
    "execution_preservation": FeeKind.preservation,
    "payment_order": FeeKind.payment_order,
}
_PERSONALITY_CAUSES = ("人格权", "姓名权", "名称权", "肖像权", "名誉权", "荣誉权", "隐私权")
_IP_CAUSES = ("知识产权", "著作权", "商标", "专利")
_ADMINISTRATIVE_SPECIAL_CAUSES = ("商标", "专利", "海事")


def fee_kind_for(case_kind: str, cause: str | None, amount_fen: int | None) -> FeeKind | None:
    """The kind of fee of a case, from its case kind (config case_types keys), cause and amount.

    civil (and civil_appeal, third_party_revocation): a cause with 离婚 (not 离婚后…) -> divorce;
    劳动 -> labor; a personality right (名誉权, 肖像权 …) -> personality_rights; an IP cause
    (著作权, 商标, 专利, 知识产权) without an amount -> ip_no_amount; otherwise property with an
    amount, non_property without. administrative: 商标/专利/海事 in the cause ->
    administrative_special, else administrative. execution, preservation (and
    execution_preservation), payment_order: themselves. Anything else (private prosecution,
    retrial, execution objection …): None, no fee from this schedule.
    """
    text = cause or ""
    has_amount = bool(amount_fen)
    if case_kind == "administrative" and _mentions(text, _ADMINISTRATIVE_SPECIAL_CAUSES):
        return FeeKind.administrative_special
    if case_kind not in _CIVIL_LIKE:
        return _BY_CASE_KIND.get(case_kind)
    if "离婚" in text and "离婚后" not in text:
        return FeeKind.divorce
    if "劳动" in text:
        return FeeKind.labor
    if _mentions(text, _PERSONALITY_CAUSES):
        return FeeKind.personality_rights
    if has_amount:
        return FeeKind.property
    return FeeKind.ip_no_amount if _mentions(text, _IP_CAUSES) else FeeKind.non_property


def round_fen(value: Decimal) -> int:
    """Round half up to the fen."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ---- checks


def _checked_amount(kind: FeeKind, amount_fen: int | None) -> int:
    """The amount as an int (0: none), after the rules of the kind."""
    if amount_fen is not None and (isinstance(amount_fen, bool) or not isinstance(amount_fen, int)):
        raise TypeError("amount_fen must be an int of fen or None")
    amount = amount_fen or 0
    if not 0 <= amount <= MAX_AMOUNT_FEN:
        raise FeeAmountOutOfRange.at(["amount_fen"])
    if kind in AMOUNT_REQUIRED and amount == 0:
        raise FeeAmountRequired.at(["amount_fen"])
    if kind in AMOUNT_REFUSED and amount != 0:
        raise FeeAmountNotAllowed.at(["amount_fen"])
    return amount


def _halving(kind: FeeKind, procedure: Procedure, halving: Halving | None) -> Halving | None:
    if kind in APPLICATIONS and procedure is Procedure.simplified:
        raise FeeProcedureNotAllowed.at(["procedure"])
    if kind in APPLICATIONS and halving is not None:
        raise FeeHalvingNotAllowed.at(["halving"])
    if halving is Halving.simplified and procedure is not Procedure.simplified:
        raise FeeHalvingNotAllowed.at(["halving"], "简易程序减半须以简易程序审理")
    return Halving.simplified if procedure is Procedure.simplified else halving


def _paid(paid_fen: int) -> int:
    if isinstance(paid_fen, bool) or not isinstance(paid_fen, int):
        raise TypeError("paid_fen must be an int of fen")
    if paid_fen < 0:
        raise ValueError("paid_fen cannot be negative")
    return paid_fen


# ---- lines and steps


# kind -> (its schedule, its base fee); a base is fen, or the court's choice in FixedFees
Base = Callable[[FixedFees], int]
_BRACKETED: dict[FeeKind, tuple[Schedule, Base]] = {
    FeeKind.property: (PROPERTY, lambda f: 50 * YUAN),
    FeeKind.payment_order: (PROPERTY, lambda f: 50 * YUAN),
    FeeKind.divorce: (DIVORCE, lambda f: f.divorce_fen),
    FeeKind.personality_rights: (PERSONALITY, lambda f: f.personality_rights_fen),
    FeeKind.execution: (EXECUTION, lambda f: 50 * YUAN),
    FeeKind.preservation: (PRESERVATION, lambda f: 30 * YUAN),
}
# the fee when there is no amount (or the amount does not count): kind -> (label, base)
_FIXED: dict[FeeKind, tuple[str, Base]] = {
    FeeKind.execution: ("没有执行金额的，每件（50元至500元）", lambda f: f.execution_no_amount_fen),
    FeeKind.non_property: ("其他非财产案件每件（50元至100元）", lambda f: f.non_property_fen),
    FeeKind.ip_no_amount: ("没有争议金额的知识产权民事案件每件", lambda f: f.ip_no_amount_fen),
    FeeKind.labor: ("劳动争议案件每件交纳10元", lambda f: LABOR_FEN),
    FeeKind.administrative: ("其他行政案件每件交纳50元", lambda f: ADMINISTRATIVE_FEN),
    FeeKind.administrative_special: (
        "商标、专利、海事行政案件每件交纳100元",
        lambda f: ADMINISTRATIVE_SPECIAL_FEN,
    ),
}


def _lines(kind: FeeKind, amount: int, fixed: FixedFees) -> list[FeeLine]:
    if amount and kind in _BRACKETED:
        schedule, base = _BRACKETED[kind]
        return _brackets(amount, schedule, base(fixed))
    if kind in _FIXED:
        label, base = _FIXED[kind]
    else:
        schedule, base = _BRACKETED[kind]
        label = schedule.base_label
    return [FeeLine(label=label, rate="定额", part=str(base(fixed)))]


def _brackets(amount: int, schedule: Schedule, base_fen: int) -> list[FeeLine]:
    """The one cumulative-bracket computation: the base, then each part of the amount above."""
    lower = schedule.base_up_to * YUAN
    lines = [
        FeeLine(
            label=schedule.base_label, lower_fen=0, upper_fen=lower, rate="定额", part=str(base_fen)
        )
    ]
    for upper_yuan, rate in schedule.rates:
        if amount <= lower:
            break
        upper = None if upper_yuan is None else upper_yuan * YUAN
        part = (min(amount, upper or amount) - lower) * Decimal(rate) / 100
        label = f"超过{_yuan(lower)}" + (f"至{_yuan(upper)}" if upper else "") + "的部分"
        lines.append(
            FeeLine(
                label=label, lower_fen=lower, upper_fen=upper, rate=f"{rate}%", part=_text(part)
            )
        )
        lower = upper or amount
    return lines


def _steps(kind: FeeKind, total: Decimal, halving: Halving | None) -> list[FeeStep]:
    steps: list[FeeStep] = []
    if kind is FeeKind.preservation and total > PRESERVATION_CAP_FEN:
        cap = Decimal(PRESERVATION_CAP_FEN)
        steps.append(_step("申请保全措施交纳的费用最多不超过5000元", "上限", total, cap))
    if kind is FeeKind.payment_order:
        third = total / 3
        steps.append(_step("申请支付令的，比照财产案件受理费标准的1/3交纳", "1/3", total, third))
    if halving is not None:
        full = Decimal(steps[-1].fee_fen if steps else round_fen(total))
        steps.append(_step(HALVING_LABELS[halving], "1/2", full, full / 2))
    return steps


def _step(label: str, rate: str, before: Decimal, after: Decimal) -> FeeStep:
    return FeeStep(
        label=label,
        rate=rate,
        applied_to=_text(before),
        exact=_text(after),
        fee_fen=round_fen(after),
    )


# ---- text


def _text(value: Decimal) -> str:
    """A decimal string of fen without exponent; a third (which never ends) to 1e-6 fen."""
    if value != value.quantize(Decimal("0.000001")):
        value = value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _yuan(fen: int) -> str:
    yuan = fen // YUAN
    return f"{yuan // 10_000}万元" if yuan % 10_000 == 0 else f"{yuan}元"


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)
