"""The texts of the notices the court generates on acceptance, rendered to PDF.

受理通知书 tells the plaintiffs the case number and the query code (查询码) they look the case
up with; 缴费通知书 the acceptance fee, how it was computed, and the last day to pay.
"""

from __future__ import annotations

from models.cases import CaseDoc
from models.fee_notices import FeeNoticeDoc, ReliefGrant
from server.cases.pdf import render
from server.cases.service import PROCEDURE_NAMES
from server.platform.clock import local_day
from server.platform.config import CourtSettings


def yuan(fen: int) -> str:
    """Fen as people read money: 1234567 -> 12,345.67."""
    return f"{fen // 100:,}.{fen % 100:02d}"


def _names(case: CaseDoc, group: str) -> str:
    return "、".join(p.name for p in getattr(case, group)) or "—"


def _about(case: CaseDoc) -> str:
    against = f"诉{_names(case, 'defendants')}" if case.defendants else ""
    return f"你（单位）{against}{case.cause or ''}一案，"


def acceptance_notice(case: CaseDoc, court: CourtSettings, query_code: str) -> bytes:
    day = local_day(case.accepted_at)
    paragraphs = [
        f"{_names(case, 'plaintiffs')}：",
        _about(case) + f"本院经审查，符合法定受理条件，于{day}立案受理，案号为{case.case_no}，"
        f"适用{PROCEDURE_NAMES[case.procedure]}审理。",
        f"案件查询码：{query_code}。凭案号和查询码，可在“移动微法院”小程序查询案件进展；"
        "请妥善保管，不要告知他人。",
        "请按照缴费通知书的要求预交案件受理费，并按时参加诉讼活动。",
        "",
        court.name,
        day,
    ]
    return render("受理案件通知书", paragraphs)


def fee_notice(case: CaseDoc, court: CourtSettings, notice: FeeNoticeDoc) -> bytes:
    day = local_day(notice.issued_at)
    lines = [f"  {line.label}" for line in notice.breakdown]
    paragraphs = [
        f"{_names(case, 'plaintiffs')}：",
        _about(case) + f"本院已于{local_day(case.accepted_at)}立案受理，案号为{case.case_no}。"
        f"依照《诉讼费用交纳办法》，本案应交案件受理费{yuan(notice.full_fee_fen)}元，计算如下：",
        *lines,
        *_relief(notice),
        "",
        court.name,
        day,
    ]
    return render("预交诉讼费用通知书", paragraphs)


def _relief(notice: FeeNoticeDoc) -> list[str]:
    grant = notice.relief.grant if notice.relief else None
    due = local_day(notice.due_at)
    if grant == ReliefGrant.waive:
        return ["你（单位）申请司法救助，经审查，准予免交案件受理费，无需缴纳。"]
    owed = (
        f"请于{due}前通过“移动微法院”小程序在线缴纳{yuan(notice.amount_fen)}元，"
        "或到本院诉讼服务中心缴纳。"
    )
    warning = "逾期不交纳又未提出司法救助申请的，本案按撤诉处理。"
    if grant == ReliefGrant.reduce:
        reduced = (
            f"你（单位）申请司法救助，经审查，准予减交，减交后应交{yuan(notice.amount_fen)}元。"
        )
        return [reduced, owed, warning]
    if grant == ReliefGrant.defer:
        return [f"你（单位）申请司法救助，经审查，准予缓交至{due}。", owed, warning]
    if grant == ReliefGrant.deny:
        return ["你（单位）申请司法救助，经审查，不符合条件，不予准许。", owed, warning]
    return [owed, warning]
