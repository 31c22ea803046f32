"""Court fees (诉讼费用): the kinds of fee, the estimate's query and the computed fee.

The arithmetic is server/fee_schedule.py; these are its inputs and its result.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from models.common import MAX_AMOUNT_FEN, InputModel, OutputModel, Procedure


class FeeKind(StrEnum):
    """The rows of 《诉讼费用交纳办法》 Art. 13 (acceptance fees) and Art. 14 (applications)."""

    property = "property"  # 财产案件
    divorce = "divorce"  # 离婚案件
    personality_rights = "personality_rights"  # 侵害人格权案件
    non_property = "non_property"  # 其他非财产案件
    ip_no_amount = "ip_no_amount"  # 知识产权民事案件，没有争议金额
    labor = "labor"  # 劳动争议案件
    administrative = "administrative"  # 其他行政案件
    administrative_special = "administrative_special"  # 商标、专利、海事行政案件
    execution = "execution"  # 申请执行
    preservation = "preservation"  # 申请保全措施
    payment_order = "payment_order"  # 申请支付令


class Halving(StrEnum):
    """Why a case acceptance fee is halved."""

    simplified = "simplified"  # Art. 16: tried under the simplified procedure
    mediation = "mediation"  # Art. 15: closed by mediation
    withdrawal = "withdrawal"  # Art. 15: the claimant withdrew
    counterclaim = "counterclaim"  # Art. 18: a counterclaim tried together with the claim


def _whole_number(value: Any) -> Any:
    # Query strings: digits only (pydantic alone would take "1.0", "1_000" and "+5").
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,30}", value):
        raise ValueError("must be a whole number of fen, digits only")
    return value


AmountFen = Annotated[int, Field(ge=0, le=MAX_AMOUNT_FEN), BeforeValidator(_whole_number)]


class FeeEstimateQuery(InputModel):
    kind: FeeKind
    amount_fen: AmountFen | None = Field(
        None,
        description="amount in dispute (or property, damages, execution, preservation) in fen",
    )
    procedure: Procedure = Procedure.ordinary
    court_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9-]{2,40}$",
        description="the court whose fixed-fee choices apply; without it, the legal minimum",
    )


class FeeLine(OutputModel):
    """One part of the fee: a fixed fee, or a bracket of the amount at its rate."""

    label: str = Field(examples=["超过1万元至10万元的部分"])
    lower_fen: int | None = Field(None, description="the bracket's range; none for a fixed fee")
    upper_fen: int | None = Field(None, description="none: no upper bound (or a fixed fee)")
    rate: str = Field(examples=["2.5%", "定额"])
    part: str = Field(description="this line's exact amount in fen (a decimal string)")


class FeeStep(OutputModel):
    """What is done to the total after the lines: the preservation cap, a third, a halving."""

    label: str = Field(examples=["适用简易程序审理的案件，减半交纳"])
    rate: str = Field(examples=["1/2", "1/3", "上限"])
    applied_to: str = Field(description="the amount in fen the step was applied to")
    exact: str = Field(description="its exact result in fen (a decimal string)")
    fee_fen: int = Field(description="the result rounded half up to the fen")


class FeeResult(OutputModel):
    kind: FeeKind
    amount_fen: int | None
    procedure: Procedure
    lines: list[FeeLine]
    total: str = Field(description="the exact sum of the lines, in fen")
    steps: list[FeeStep]
    halving: Halving | None = Field(description="why the fee was halved; none: not halved")
    fee_fen: int = Field(description="the fee to pay, in fen")
