"""Court fees: the schedule of 《诉讼费用交纳办法》 computed by hand, the refunds, the mapping of a
case to its kind of fee, the fixed-fee settings, and the public estimate endpoint.

Every expected fee below is worked out by hand from the law in the comment beside it, in fen
(1 yuan = 100 fen); "->" is the rounding half up to the fen.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from miniapp_stubs.client import ApiSession
from models.fees import FeeKind, Halving
from models.filings import MAX_AMOUNT_FEN, Procedure
from server.fees.schedule import (
    court_fee,
    fee_kind_for,
    refund_all,
    refund_halving,
    refund_reduced_claim,
)
from server.filing.template_data import TEMPLATES
from server.platform.config import ConfigError, FixedFees, load_settings
from server.platform.errors import ValidationFailed

Y = 100  # fen per yuan
K = FeeKind
SIMPLE = Procedure.simplified
# bj-chaoyang's choices in config.yaml: divorce 200, personality 300, non-property 80, IP 800,
# execution without an amount 100 yuan. None: the lower bound of each legal range.
CHAOYANG = FixedFees(
    divorce_fen=20_000,
    personality_rights_fen=30_000,
    non_property_fen=8_000,
    ip_no_amount_fen=80_000,
    execution_no_amount_fen=10_000,
)
LOW = None

# (kind, amount in fen, procedure, court's fixed fees, fee in fen)
CASES: list[Any] = [
    # ---- property (Art. 13(1)): 50 yuan up to 10,000, then the part in each bracket
    pytest.param(K.property, 1 * Y, None, LOW, 5_000, id="property-1-yuan"),  # 50 flat
    pytest.param(K.property, 10_000 * Y, None, LOW, 5_000, id="property-10k"),  # 50 flat
    # 5000 + 1 fen x 2.5% = 5000.025 -> 5000
    pytest.param(K.property, 1_000_001, None, LOW, 5_000, id="property-10k+1fen"),
    # 5000 + 19 x 2.5% = 5000.475 -> 5000
    pytest.param(K.property, 1_000_019, None, LOW, 5_000, id="property-half-up-below"),
    # 5000 + 20 x 2.5% = 5000.5 -> 5001
    pytest.param(K.property, 1_000_020, None, LOW, 5_001, id="property-half-up-at-.5"),
    # 5000 + 9,000,000 x 2.5% = 5000 + 225,000 = 230,000 (2,300 yuan)
    pytest.param(K.property, 100_000 * Y, None, LOW, 230_000, id="property-100k"),
    # 230,000 + 1 x 2% = 230,000.02 -> 230,000
    pytest.param(K.property, 10_000_001, None, LOW, 230_000, id="property-100k+1fen"),
    # 230,000 + 100 x 2% = 230,002
    pytest.param(K.property, 100_001 * Y, None, LOW, 230_002, id="property-100001"),
    # 230,000 + 10,000,000 x 2% = 430,000
    pytest.param(K.property, 200_000 * Y, None, LOW, 430_000, id="property-200k"),
    # 430,000 + 1 x 1.5% = 430,000.015 -> 430,000
    pytest.param(K.property, 20_000_001, None, LOW, 430_000, id="property-200k+1fen"),
    # 430,000 + 30,000,000 x 1.5% = 430,000 + 450,000 = 880,000
    pytest.param(K.property, 500_000 * Y, None, LOW, 880_000, id="property-500k"),
    # 880,000 + 50 x 1% = 880,000.5 -> 880,001
    pytest.param(K.property, 50_000_050, None, LOW, 880_001, id="property-500k+50fen"),
    # 880,000 + 50,000,000 x 1% = 1,380,000
    pytest.param(K.property, 1_000_000 * Y, None, LOW, 1_380_000, id="property-1m"),
    # 1,380,000 + 55 x 0.9% = 1,380,000.495 -> 1,380,000
    pytest.param(K.property, 100_000_055, None, LOW, 1_380_000, id="property-1m+55fen"),
    # 1,380,000 + 56 x 0.9% = 1,380,000.504 -> 1,380,001
    pytest.param(K.property, 100_000_056, None, LOW, 1_380_001, id="property-1m+56fen"),
    # 1,380,000 + 100,000,000 x 0.9% = 1,380,000 + 900,000 = 2,280,000
    pytest.param(K.property, 2_000_000 * Y, None, LOW, 2_280_000, id="property-2m"),
    # 2,280,000 + 300,000,000 x 0.8% = 2,280,000 + 2,400,000 = 4,680,000
    pytest.param(K.property, 5_000_000 * Y, None, LOW, 4_680_000, id="property-5m"),
    # 4,680,000 + 500,000,000 x 0.7% = 4,680,000 + 3,500,000 = 8,180,000
    pytest.param(K.property, 10_000_000 * Y, None, LOW, 8_180_000, id="property-10m"),
    # 8,180,000 + 1,000,000,000 x 0.6% = 8,180,000 + 6,000,000 = 14,180,000 (141,800 yuan)
    pytest.param(K.property, 20_000_000 * Y, None, LOW, 14_180_000, id="property-20m"),
    # 14,180,000 + 1 x 0.5% = 14,180,000.005 -> 14,180,000
    pytest.param(K.property, 2_000_000_001, None, LOW, 14_180_000, id="property-20m+1fen"),
    # 14,180,000 + 100 x 0.5% = 14,180,000.5 -> 14,180,001
    pytest.param(K.property, 20_000_001 * Y, None, LOW, 14_180_001, id="property-20000001"),
    # 14,180,000 + 1,000,000,000 x 0.5% = 19,180,000
    pytest.param(K.property, 30_000_000 * Y, None, LOW, 19_180_000, id="property-30m"),
    # 14,180,000 + (10^14 - 2 x 10^9) x 0.5% = 14,180,000 + 499,990,000,000
    pytest.param(K.property, MAX_AMOUNT_FEN, None, LOW, 500_004_180_000, id="property-max"),
    # ---- halving (Art. 16 simplified): round the full fee, then halve and round half up
    pytest.param(K.property, 100_000 * Y, SIMPLE, LOW, 115_000, id="simplified-100k"),  # /2
    # full 5000.5 -> 5001; 5001 / 2 = 2500.5 -> 2501 (halving the exact 5000.5 would give 2500)
    pytest.param(K.property, 1_000_020, SIMPLE, LOW, 2_501, id="simplified-rounds-twice"),
    # full 5000.475 -> 5000; / 2 = 2500
    pytest.param(K.property, 1_000_019, SIMPLE, LOW, 2_500, id="simplified-even"),
    # ---- divorce (Art. 13(2)(1)): the court's 50-300, plus 0.5% of property above 200,000
    pytest.param(K.divorce, None, None, LOW, 5_000, id="divorce-lower-bound"),
    pytest.param(K.divorce, None, None, CHAOYANG, 20_000, id="divorce-court-choice"),
    pytest.param(K.divorce, 0, None, CHAOYANG, 20_000, id="divorce-amount-0"),
    pytest.param(K.divorce, 200_000 * Y, None, CHAOYANG, 20_000, id="divorce-200k"),
    # 20,000 + 99 x 0.5% = 20,000.495 -> 20,000
    pytest.param(K.divorce, 20_000_099, None, CHAOYANG, 20_000, id="divorce-200k+99fen"),
    # 20,000 + 100 x 0.5% = 20,000.5 -> 20,001
    pytest.param(K.divorce, 200_001 * Y, None, CHAOYANG, 20_001, id="divorce-200001"),
    # 20,000 + 10,000,000 x 0.5% = 20,000 + 50,000 = 70,000; lower bound 5,000 + 50,000
    pytest.param(K.divorce, 300_000 * Y, None, CHAOYANG, 70_000, id="divorce-300k-court"),
    pytest.param(K.divorce, 300_000 * Y, None, LOW, 55_000, id="divorce-300k-lower"),
    pytest.param(K.divorce, 300_000 * Y, SIMPLE, CHAOYANG, 35_000, id="divorce-simplified"),
    # 5,000.5 -> 5,001; / 2 = 2,500.5 -> 2,501
    pytest.param(K.divorce, 200_001 * Y, SIMPLE, LOW, 2_501, id="divorce-simplified-half-up"),
    # ---- personality rights (Art. 13(2)(2)): 100-500, damages 50k-100k 1%, above 100k 0.5%
    pytest.param(K.personality_rights, None, None, LOW, 10_000, id="personality-lower"),
    pytest.param(K.personality_rights, None, None, CHAOYANG, 30_000, id="personality-court"),
    pytest.param(K.personality_rights, 50_000 * Y, None, CHAOYANG, 30_000, id="personality-50k"),
    # 30,000 + 50 x 1% = 30,000.5 -> 30,001
    pytest.param(K.personality_rights, 5_000_050, None, CHAOYANG, 30_001, id="personality-50k+"),
    # 30,000 + 3,000,000 x 1% = 60,000
    pytest.param(K.personality_rights, 80_000 * Y, None, CHAOYANG, 60_000, id="personality-80k"),
    # 30,000 + 5,000,000 x 1% = 80,000
    pytest.param(K.personality_rights, 100_000 * Y, None, CHAOYANG, 80_000, id="personality-100k"),
    # 30,000 + 50,000 + 10,000,000 x 0.5% = 130,000; lower bound 10,000 + 50,000 + 50,000
    pytest.param(K.personality_rights, 200_000 * Y, None, CHAOYANG, 130_000, id="personality-200k"),
    pytest.param(K.personality_rights, 200_000 * Y, None, LOW, 110_000, id="personality-200k-low"),
    # ---- other fixed fees (Art. 13(2)(3), (3), (4), (5))
    pytest.param(K.non_property, None, None, LOW, 5_000, id="non-property-lower"),
    pytest.param(K.non_property, None, None, CHAOYANG, 8_000, id="non-property-court"),
    pytest.param(K.non_property, 0, SIMPLE, CHAOYANG, 4_000, id="non-property-simplified"),
    pytest.param(K.ip_no_amount, None, None, LOW, 50_000, id="ip-lower"),
    pytest.param(K.ip_no_amount, None, None, CHAOYANG, 80_000, id="ip-court"),
    pytest.param(K.labor, None, None, CHAOYANG, 1_000, id="labor"),  # 10 yuan
    pytest.param(K.labor, 50_000 * Y, None, LOW, 1_000, id="labor-amount-ignored"),
    pytest.param(K.labor, None, SIMPLE, LOW, 500, id="labor-simplified"),
    pytest.param(K.administrative, None, None, CHAOYANG, 5_000, id="administrative"),
    pytest.param(K.administrative, 10 * Y, None, LOW, 5_000, id="administrative-amount-ignored"),
    pytest.param(K.administrative, None, SIMPLE, LOW, 2_500, id="administrative-simplified"),
    pytest.param(K.administrative_special, None, None, LOW, 10_000, id="administrative-special"),
    # ---- execution (Art. 14(1)): 50 up to 10,000; 1.5%, 1%, 0.5%, 0.1% above
    pytest.param(K.execution, None, None, LOW, 5_000, id="execution-no-amount-lower"),
    pytest.param(K.execution, None, None, CHAOYANG, 10_000, id="execution-no-amount-court"),
    pytest.param(K.execution, 0, None, CHAOYANG, 10_000, id="execution-amount-0"),
    pytest.param(K.execution, 10_000 * Y, None, CHAOYANG, 5_000, id="execution-10k"),
    # 5,000 + 33 x 1.5% = 5,000.495 -> 5,000; + 34 x 1.5% = 5,000.51 -> 5,001
    pytest.param(K.execution, 1_000_033, None, LOW, 5_000, id="execution-10k+33fen"),
    pytest.param(K.execution, 1_000_034, None, LOW, 5_001, id="execution-10k+34fen"),
    # 5,000 + 49,000,000 x 1.5% = 5,000 + 735,000 = 740,000
    pytest.param(K.execution, 500_000 * Y, None, LOW, 740_000, id="execution-500k"),
    # 740,000 + 450,000,000 x 1% = 5,240,000
    pytest.param(K.execution, 5_000_000 * Y, None, LOW, 5_240_000, id="execution-5m"),
    # 5,240,000 + 500,000,000 x 0.5% = 7,740,000
    pytest.param(K.execution, 10_000_000 * Y, None, LOW, 7_740_000, id="execution-10m"),
    # 7,740,000 + 500 x 0.1% = 7,740,000.5 -> 7,740,001
    pytest.param(K.execution, 10_000_005 * Y, None, LOW, 7_740_001, id="execution-10m+5"),
    # 7,740,000 + 1,000,000,000 x 0.1% = 8,740,000
    pytest.param(K.execution, 20_000_000 * Y, None, LOW, 8_740_000, id="execution-20m"),
    # ---- preservation (Art. 14(2)): 30 up to 1,000 or none; 1%, 0.5% above; at most 5,000
    pytest.param(K.preservation, None, None, LOW, 3_000, id="preservation-no-amount"),
    pytest.param(K.preservation, 1_000 * Y, None, LOW, 3_000, id="preservation-1000"),
    # 3,000 + 49 x 1% = 3,000.49 -> 3,000; + 50 x 1% = 3,000.5 -> 3,001
    pytest.param(K.preservation, 100_049, None, LOW, 3_000, id="preservation-1000+49fen"),
    pytest.param(K.preservation, 100_050, None, LOW, 3_001, id="preservation-1000+50fen"),
    # 3,000 + 9,900,000 x 1% = 102,000
    pytest.param(K.preservation, 100_000 * Y, None, LOW, 102_000, id="preservation-100k"),
    # 102,000 + 40,000,000 x 0.5% = 302,000
    pytest.param(K.preservation, 500_000 * Y, None, LOW, 302_000, id="preservation-500k"),
    # 102,000 + 79,600,000 x 0.5% = 500,000: exactly the cap
    pytest.param(K.preservation, 896_000 * Y, None, LOW, 500_000, id="preservation-at-cap"),
    # 500,000.005, capped at 500,000
    pytest.param(K.preservation, 89_600_001, None, LOW, 500_000, id="preservation-cap+1fen"),
    # 102,000 + 90,000,000 x 0.5% = 552,000, capped at 500,000
    pytest.param(K.preservation, 1_000_000 * Y, None, LOW, 500_000, id="preservation-1m-capped"),
    pytest.param(K.preservation, MAX_AMOUNT_FEN, None, LOW, 500_000, id="preservation-max"),
    # ---- payment order (Art. 14(3)): a third of the exact property fee, rounded once
    pytest.param(K.payment_order, 1 * Y, None, LOW, 1_667, id="payment-order-1"),  # 5000/3
    # 5,000 / 3 = 1,666.67 -> 1,667
    pytest.param(K.payment_order, 10_000 * Y, None, LOW, 1_667, id="payment-order-10k"),
    # exact property fee 5,000 + 40 x 2.5% = 5,001; / 3 = 1,667
    pytest.param(K.payment_order, 1_000_040, None, LOW, 1_667, id="payment-order-exact-third"),
    # exact property fee 5,000 + 100 x 2.5% = 5,002.5; / 3 = 1,667.5 -> 1,668
    pytest.param(K.payment_order, 10_001 * Y, None, LOW, 1_668, id="payment-order-half-up"),
    # 230,000 / 3 = 76,666.67 -> 76,667
    pytest.param(K.payment_order, 100_000 * Y, None, LOW, 76_667, id="payment-order-100k"),
    # 1,380,000 / 3 = 460,000
    pytest.param(K.payment_order, 1_000_000 * Y, None, LOW, 460_000, id="payment-order-1m"),
]


@pytest.mark.parametrize(("kind", "amount", "procedure", "fixed", "fee"), CASES)
def test_fee_by_hand(
    kind: FeeKind, amount: int | None, procedure: Procedure | None, fixed: Any, fee: int
) -> None:
    result = court_fee(kind, amount, procedure=procedure or Procedure.ordinary, fixed=fixed)
    assert result.fee_fen == fee
    assert sum(Decimal(line.part) for line in result.lines) == Decimal(result.total)
    assert (result.halving is Halving.simplified) == (procedure is SIMPLE)


def test_every_kind_is_covered_by_the_table() -> None:
    assert {p.values[0] for p in CASES} == set(FeeKind)


def test_breakdown_lists_each_bracket_with_its_range_rate_and_exact_part() -> None:
    r = court_fee(K.property, 30_000_000 * Y + 1)
    got = [(line.label, line.lower_fen, line.upper_fen, line.rate, line.part) for line in r.lines]
    assert got == [
        ("不超过1万元的，每件交纳50元", 0, 1_000_000, "定额", "5000"),
        ("超过1万元至10万元的部分", 1_000_000, 10_000_000, "2.5%", "225000"),
        ("超过10万元至20万元的部分", 10_000_000, 20_000_000, "2%", "200000"),
        ("超过20万元至50万元的部分", 20_000_000, 50_000_000, "1.5%", "450000"),
        ("超过50万元至100万元的部分", 50_000_000, 100_000_000, "1%", "500000"),
        ("超过100万元至200万元的部分", 100_000_000, 200_000_000, "0.9%", "900000"),
        ("超过200万元至500万元的部分", 200_000_000, 500_000_000, "0.8%", "2400000"),
        ("超过500万元至1000万元的部分", 500_000_000, 1_000_000_000, "0.7%", "3500000"),
        ("超过1000万元至2000万元的部分", 1_000_000_000, 2_000_000_000, "0.6%", "6000000"),
        ("超过2000万元的部分", 2_000_000_000, None, "0.5%", "5000000.005"),
    ]
    assert (r.total, r.steps, r.halving, r.fee_fen) == ("19180000.005", [], None, 19_180_000)


def test_breakdown_stops_at_the_bracket_the_amount_reaches() -> None:
    r = court_fee(K.property, 10_000 * Y)
    assert [line.part for line in r.lines] == ["5000"]
    r = court_fee(K.preservation, 1_000 * Y + 50)
    assert [(line.rate, line.part) for line in r.lines] == [("定额", "3000"), ("1%", "0.5")]
    assert r.lines[1].label == "超过1000元至10万元的部分"


def test_fixed_fee_is_one_line_without_a_range() -> None:
    r = court_fee(K.divorce, None, fixed=CHAOYANG)
    assert len(r.lines) == 1 and r.lines[0].lower_fen is None and r.lines[0].upper_fen is None
    assert (r.lines[0].rate, r.lines[0].part, r.total) == ("定额", "20000", "20000")
    assert "离婚" in r.lines[0].label


def test_halving_step_shows_the_rounded_full_fee_and_its_exact_half() -> None:
    r = court_fee(K.property, 1_000_020, procedure=SIMPLE)
    assert r.total == "5000.5"
    [step] = r.steps
    assert (step.rate, step.applied_to, step.exact, step.fee_fen) == ("1/2", "5001", "2500.5", 2501)
    assert "简易程序" in step.label and r.halving is Halving.simplified


@pytest.mark.parametrize(
    ("halving", "word"),
    [
        (Halving.mediation, "调解"),
        (Halving.withdrawal, "撤诉"),
        (Halving.counterclaim, "反诉"),
    ],
)
def test_mediation_withdrawal_counterclaim_halve(halving: Halving, word: str) -> None:
    # 10,001 yuan: exact 5,000 + 100 x 2.5% = 5,002.5 -> 5,003; / 2 = 2,501.5 -> 2,502
    r = court_fee(K.property, 10_001 * Y, halving=halving)
    assert (r.fee_fen, r.halving) == (2_502, halving)
    assert word in r.steps[-1].label and r.steps[-1].applied_to == "5003"


def test_plain_strings_work_as_the_enums() -> None:
    plain: Any = {"procedure": "simplified", "halving": "mediation"}
    r = court_fee(FeeKind("property"), 1_000_020, **plain)
    assert (r.procedure, r.halving, r.fee_fen) == (SIMPLE, Halving.simplified, 2_501)
    with pytest.raises(ValueError):
        court_fee(plain["halving"], 100)  # not a kind of fee


def test_a_fee_is_halved_once_even_for_two_reasons() -> None:
    r = court_fee(K.property, 100_000 * Y, procedure=SIMPLE, halving=Halving.mediation)
    assert (r.fee_fen, r.halving, len(r.steps)) == (115_000, Halving.simplified, 1)


def test_cap_and_third_are_steps() -> None:
    r = court_fee(K.preservation, 1_000_000 * Y)
    assert [(s.rate, s.applied_to, s.exact, s.fee_fen) for s in r.steps] == [
        ("上限", "552000", "500000", 500_000)
    ]
    r = court_fee(K.payment_order, 10_000 * Y)
    assert [(s.rate, s.applied_to, s.exact, s.fee_fen) for s in r.steps] == [
        ("1/3", "5000", "1666.666667", 1_667)  # a third never ends: shown to 1e-6 fen
    ]


@pytest.mark.parametrize(
    ("kind", "amount", "kwargs", "code"),
    [
        (K.property, None, {}, "fee_amount_required"),
        (K.property, 0, {}, "fee_amount_required"),
        (K.payment_order, None, {}, "fee_amount_required"),
        (K.non_property, 1, {}, "fee_amount_not_allowed"),
        (K.ip_no_amount, 100 * Y, {}, "fee_amount_not_allowed"),
        (K.property, -1, {}, "fee_amount_out_of_range"),
        (K.divorce, -1, {}, "fee_amount_out_of_range"),
        (K.property, MAX_AMOUNT_FEN + 1, {}, "fee_amount_out_of_range"),
        (K.execution, None, {"procedure": SIMPLE}, "fee_procedure_not_allowed"),
        (K.preservation, 100, {"procedure": SIMPLE}, "fee_procedure_not_allowed"),
        (K.payment_order, 100, {"procedure": SIMPLE}, "fee_procedure_not_allowed"),
        (K.execution, 100, {"halving": Halving.withdrawal}, "fee_halving_not_allowed"),
        (K.property, 100, {"halving": Halving.simplified}, "fee_halving_not_allowed"),
    ],
)
def test_refused_inputs(
    kind: FeeKind, amount: int | None, kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        court_fee(kind, amount, **kwargs)
    assert info.value.code == code and info.value.status == 422
    assert info.value.details[0]["loc"] in (["amount_fen"], ["procedure"], ["halving"])


@pytest.mark.parametrize("amount", [True, 1.5, "100", Decimal(100)])
def test_amount_must_be_an_int(amount: Any) -> None:
    with pytest.raises(TypeError):
        court_fee(K.property, amount)


# ---- refunds


def test_refund_when_not_accepted_or_dismissed_is_everything_paid() -> None:
    assert refund_all(230_000) == 230_000 and refund_all(0) == 0
    with pytest.raises(ValueError):
        refund_all(-1)
    with pytest.raises(TypeError):
        refund_all(True)


@pytest.mark.parametrize(
    ("paid", "refund"),
    [
        (230_000, 115_000),  # fee due 115,000
        (5_001, 2_500),  # fee due 2,500.5 -> 2,501; refund the rest
        (1, 0),  # fee due 0.5 -> 1
        (0, 0),
    ],
)
def test_refund_of_halving_leaves_the_half_rounded_up(paid: int, refund: int) -> None:
    assert refund_halving(paid) == refund


def test_refund_of_a_reduced_claim_is_the_difference_of_the_two_fees() -> None:
    # 100,000 yuan: 230,000; 50,000 yuan: 5,000 + 4,000,000 x 2.5% = 105,000
    assert refund_reduced_claim(K.property, 100_000 * Y, 50_000 * Y) == 125_000
    # simplified: 115,000 - 52,500
    assert refund_reduced_claim(K.property, 100_000 * Y, 50_000 * Y, procedure=SIMPLE) == 62_500
    # divorce at bj-chaoyang, property 300,000 -> 200,000: 70,000 - 20,000
    assert refund_reduced_claim(K.divorce, 300_000 * Y, 200_000 * Y, fixed=CHAOYANG) == 50_000
    assert refund_reduced_claim(K.property, 100 * Y, 100 * Y) == 0
    with pytest.raises(ValidationFailed) as info:
        refund_reduced_claim(K.property, 100 * Y, 101 * Y)
    assert info.value.code == "fee_claim_not_reduced"


# ---- a case's kind of fee


@pytest.mark.parametrize(
    ("case_kind", "cause", "amount", "kind"),
    [
        ("civil", "离婚纠纷", None, K.divorce),
        ("civil", "离婚纠纷", 300_000 * Y, K.divorce),
        ("civil", "离婚后财产纠纷", 300_000 * Y, K.property),
        ("civil", "劳动争议", 50_000 * Y, K.labor),
        ("civil", "追索劳动报酬纠纷", None, K.labor),
        ("civil", "名誉权纠纷", None, K.personality_rights),
        ("civil", "肖像权纠纷", 80_000 * Y, K.personality_rights),
        ("civil", "著作权权属纠纷", None, K.ip_no_amount),
        ("civil", "侵害商标权纠纷", 10_000 * Y, K.property),
        ("civil", "民间借贷纠纷", 50_000 * Y, K.property),
        ("civil", "民间借贷纠纷", 0, K.non_property),
        ("civil", None, None, K.non_property),
        ("civil_appeal", "买卖合同纠纷", 100 * Y, K.property),
        ("third_party_revocation", "第三人撤销之诉", None, K.non_property),
        ("administrative", "行政处罚", None, K.administrative),
        ("administrative", "专利行政纠纷", None, K.administrative_special),
        ("administrative", "海事行政案件", 100 * Y, K.administrative_special),
        ("execution", "申请执行", 100 * Y, K.execution),
        ("execution", None, None, K.execution),
        ("preservation", "诉前财产保全", 100 * Y, K.preservation),
        ("execution_preservation", None, 100 * Y, K.preservation),
        ("payment_order", "申请支付令", 100 * Y, K.payment_order),
        ("private_prosecution", "侮辱罪", None, None),
        ("civil_retrial", "民间借贷纠纷", 100 * Y, None),
        ("execution_objection", None, None, None),
        ("no-such-kind", None, None, None),
    ],
)
def test_fee_kind_for(
    case_kind: str, cause: str | None, amount: int | None, kind: FeeKind | None
) -> None:
    assert fee_kind_for(case_kind, cause, amount) is kind


def test_the_six_templates_map_to_their_kind() -> None:
    got = {t.id: fee_kind_for(t.case_kind, t.cause, 10_000 * Y) for t in TEMPLATES}
    assert got == {
        "private-lending": K.property,
        "sales-contract": K.property,
        "divorce": K.divorce,
        "labor-dispute": K.labor,
        "traffic-accident": K.property,
        "property-service": K.property,
    }


# ---- each court's fixed fees: inside the legal ranges, checked at start-up

LEGAL_RANGES = {  # field: (lowest, highest) in fen, Art. 13 and 14
    "divorce_fen": (5_000, 30_000),
    "personality_rights_fen": (10_000, 50_000),
    "non_property_fen": (5_000, 10_000),
    "ip_no_amount_fen": (50_000, 100_000),
    "execution_no_amount_fen": (5_000, 50_000),
}


def test_default_fixed_fees_are_the_lower_bounds() -> None:
    assert FixedFees().model_dump() == {k: low for k, (low, _) in LEGAL_RANGES.items()}


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, low - 1) for f, (low, _) in LEGAL_RANGES.items()]
    + [(f, high + 1) for f, (_, high) in LEGAL_RANGES.items()]
    + [("divorce_fen", 12_000.5), ("divorce_fen", "lots")],
)
def test_fixed_fee_outside_its_range_stops_start_up(field: str, value: Any) -> None:
    court = {"id": "a1", "name": "某法院", "code": "京01", "case_types": {"civil": "民初"}}
    with pytest.raises(ConfigError) as info:
        load_settings(courts=[{**court, "fixed_fees": {field: value}}])
    assert f"courts.0.fixed_fees.{field}" in str(info.value)


@pytest.mark.parametrize("field", list(LEGAL_RANGES))
def test_fixed_fee_bounds_themselves_are_allowed(field: str) -> None:
    court = {"id": "a1", "name": "某法院", "code": "京01", "case_types": {"civil": "民初"}}
    for value in LEGAL_RANGES[field]:
        s = load_settings(courts=[{**court, "fixed_fees": {field: value}}])
        assert getattr(s.courts[0].fixed_fees, field) == value


def test_configured_courts_choices_are_used() -> None:
    chaoyang = load_settings().court("bj-chaoyang")
    assert chaoyang is not None and chaoyang.fixed_fees == CHAOYANG


# ---- GET /api/v1/fees/estimate


@pytest.mark.gen_test
async def test_estimate_needs_no_sign_in_and_gives_the_breakdown(api_url: str) -> None:
    res = await ApiSession(api_url).get("/api/v1/fees/estimate?kind=property&amount_fen=10000000")
    assert res.status == 200, res.body
    assert res.body == court_fee(K.property, 100_000 * Y).model_dump(mode="json")
    assert res.body["fee_fen"] == 230_000 and res.body["procedure"] == "ordinary"
    assert [line["rate"] for line in res.body["lines"]] == ["定额", "2.5%"]
    assert res.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("query", "fee"),
    [
        ("kind=divorce", 5_000),  # no court: the lower bound
        ("kind=divorce&court_id=bj-chaoyang", 20_000),
        ("kind=divorce&court_id=sh-pudong", 10_000),
        ("kind=divorce&court_id=bj-chaoyang&amount_fen=30000000", 70_000),
        ("kind=personality_rights&court_id=bj-chaoyang&amount_fen=0", 30_000),
        ("kind=execution&court_id=bj-chaoyang", 10_000),
        ("kind=property&amount_fen=1000020&procedure=simplified", 2_501),
        ("kind=labor&amount_fen=5000000&procedure=simplified", 500),
        ("kind=preservation&amount_fen=100000000", 500_000),
        ("kind=payment_order&amount_fen=1000000", 1_667),
        ("kind=administrative_special", 10_000),
        (f"kind=property&amount_fen={MAX_AMOUNT_FEN}", 500_004_180_000),
    ],
)
async def test_estimate_by_court_and_procedure(api_url: str, query: str, fee: int) -> None:
    res = await ApiSession(api_url).get(f"/api/v1/fees/estimate?{query}")
    assert res.status == 200, res.body
    assert res.body["fee_fen"] == fee


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("", "validation_failed", "kind"),
        ("kind=bogus&amount_fen=100", "validation_failed", "kind"),
        ("kind=property&amount_fen=-1", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=1.5", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=1.0", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=1e3", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=1_000", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=%2B100", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=abc", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=", "validation_failed", "amount_fen"),
        (f"kind=property&amount_fen={MAX_AMOUNT_FEN + 1}", "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=" + "9" * 40, "validation_failed", "amount_fen"),
        ("kind=property&amount_fen=" + "9" * 5000, "validation_failed", "amount_fen"),
        ("kind=property", "fee_amount_required", "amount_fen"),
        ("kind=property&amount_fen=0", "fee_amount_required", "amount_fen"),
        ("kind=payment_order", "fee_amount_required", "amount_fen"),
        ("kind=non_property&amount_fen=100", "fee_amount_not_allowed", "amount_fen"),
        ("kind=ip_no_amount&amount_fen=1", "fee_amount_not_allowed", "amount_fen"),
        ("kind=property&amount_fen=100&procedure=fast", "validation_failed", "procedure"),
        ("kind=execution&procedure=simplified", "fee_procedure_not_allowed", "procedure"),
        ("kind=divorce&court_id=nowhere", "unknown_court", "court_id"),
        ("kind=divorce&court_id=BJ%20CHAOYANG", "validation_failed", "court_id"),
        ("kind=divorce&halving=mediation", "validation_failed", "halving"),
    ],
)
async def test_estimate_bad_input_is_422_in_the_error_shape(
    api_url: str, query: str, code: str, field: str
) -> None:
    res = await ApiSession(api_url).get(f"/api/v1/fees/estimate?{query}")
    assert res.status == 422, res.body
    error = res.body["error"]
    assert error["code"] == code and error["message"] and error["request_id"]
    assert field in [d["loc"][-1] for d in error["details"]]
