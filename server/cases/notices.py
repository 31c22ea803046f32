"""The documents the court generates, each a pure function of its inputs to PDF bytes.

At acceptance: 受理通知书 (the case number and the query code), 缴费通知书 (the fee, bracket by
bracket), 诉讼权利义务告知书 and 举证通知书 (the time for evidence); on scheduling a hearing:
a 传票 to each party. No database I/O here: the callers read what is needed and pass it in,
so the documents may be made inside or before the transaction that serves them. Wording
comes from server/cases/wording.py and the court's config.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from models.cases import CaseDoc, HearingDoc
from models.fee_notices import FeeNoticeDoc, ReliefGrant
from server.cases.pdf import Letter, Table, render
from server.cases.service import PROCEDURE_NAMES
from server.cases.wording import INDENT, wording_for
from server.platform.clock import SHANGHAI, local_day
from server.platform.config import CourtSettings

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud without doubt
CODE_LENGTH = 16


def verification_code(keyed_digest: str) -> str:
    """A document's 验证码 from a keyed hash (hex) of its identity: 16 characters, 80 bits."""
    value = int(hashlib.sha256(bytes.fromhex(keyed_digest)).hexdigest(), 16)
    chars = []
    for _ in range(CODE_LENGTH):
        value, digit = divmod(value, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[digit])
    return "".join(chars)


def normal_code(text: str) -> str:
    """What a person typed, as the code is stored (no spaces or dashes, upper case)."""
    return "".join(c for c in text.upper() if c.isalnum())


def yuan(fen: int) -> str:
    """Fen as people read money: 1234567 -> 12,345.67."""
    return f"{fen // 100:,}.{fen % 100:02d}"


def _names(case: CaseDoc, group: str) -> str:
    return "、".join(p.name for p in getattr(case, group)) or "—"


def _common(case: CaseDoc, court: CourtSettings) -> dict[str, str]:
    docs = court.documents
    return {
        "plaintiffs": _names(case, "plaintiffs"),
        "defendants": _names(case, "defendants"),
        "cause": case.cause or "",
        "court": court.name,
        "case_no": case.case_no,
        "accepted_on": local_day(case.accepted_at),
        "procedure": PROCEDURE_NAMES[case.procedure],
        "phone": docs.phone,
        "contact": docs.contact,
        "address": docs.address or court.region or court.name,
    }


def _letter(
    court: CourtSettings,
    kind: str,
    case_no: str,
    fields: dict[str, str],
    code: str,
    issued: dt.datetime,
    blocks: dict[str, list[str | Table]] | None = None,
) -> bytes:
    words = wording_for(court, kind)
    body: list[str | Table] = []
    for para in words.paragraphs:
        name = para[1:-1] if para.startswith("{") and para.endswith("}") else None
        if blocks and name in blocks:
            body.extend(blocks[name])
        else:
            body.append(para.format_map(fields))
    docs = court.documents
    footer = [
        f"{court.name}　地址：{docs.address or court.region}",
        f"联系人：{docs.contact}　电话：{docs.phone}",
    ]
    return render(
        Letter(
            court=court.name,
            title=words.title.format_map(fields),
            case_no=case_no,
            body=tuple(body),
            signed_on=local_day(issued),
            verify_code=code,
            stamp=issued,
            footer=tuple(footer),
            seal=docs.seal_image,
        )
    )


def acceptance_notice(case: CaseDoc, court: CourtSettings, query_code: str, code: str) -> bytes:
    fields = {**_common(case, court), "query_code": query_code}
    return _letter(court, "acceptance_notice", case.case_no, fields, code, case.accepted_at)


def fee_notice(case: CaseDoc, court: CourtSettings, notice: FeeNoticeDoc, code: str) -> bytes:
    fields = {
        **_common(case, court),
        "fee": yuan(notice.full_fee_fen),
        "amount": yuan(notice.amount_fen),
        "due_on": local_day(notice.due_at),
        "payment": court.documents.payment,
    }
    blocks: dict[str, list[str | Table]] = {
        "breakdown": [fee_table(notice)],
        "relief": list(_relief(notice, court)),
    }
    return _letter(court, "fee_notice", case.case_no, fields, code, notice.issued_at, blocks)


def _fen(exact: Any) -> int:
    return int(Decimal(str(exact)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fee_table(notice: FeeNoticeDoc) -> Table:
    """Each bracket (or fixed fee) with its rate and amount, each step (a halving, a third, the
    cap) with its result, and the total."""
    rows: list[tuple[str, ...]] = []
    for line in notice.breakdown:
        extra = line.model_extra or {}
        if "fee_fen" in extra:  # a step applied to the total
            rows.append((line.label, str(extra.get("rate", "")), yuan(int(extra["fee_fen"]))))
        else:
            rate = str(extra.get("rate", ""))
            rows.append((line.label, rate, yuan(_fen(extra.get("part", 0)))))
    rows.append(("合计", "", yuan(notice.full_fee_fen)))
    return Table(
        header=("计费项目", "费率", "金额（元）"),
        rows=tuple(rows),
        widths=(0.58, 0.14, 0.28),
        total=True,
    )


def _relief(notice: FeeNoticeDoc, court: CourtSettings) -> list[str]:
    grant = notice.relief.grant if notice.relief else None
    due, amount = local_day(notice.due_at), yuan(notice.amount_fen)
    if grant == ReliefGrant.waive:
        return [INDENT + "你（单位）申请司法救助，经审查，准予免交案件受理费，无需缴纳。"]
    owed = INDENT + f"请于{due}前交纳{amount}元。交纳方式：{court.documents.payment}。"
    warning = INDENT + "逾期不交纳又未提出司法救助申请的，本案按撤诉处理。"
    decided = {
        ReliefGrant.reduce: f"准予减交，减交后应交{amount}元。",
        ReliefGrant.defer: f"准予缓交至{due}。",
        ReliefGrant.deny: "不符合条件，不予准许。",
    }
    if grant in decided:
        head = INDENT + "你（单位）申请司法救助，经审查，" + decided[grant]
        return [head, owed, warning]
    return [owed, warning]


def rights_notice(case: CaseDoc, court: CourtSettings, code: str) -> bytes:
    fields = _common(case, court)
    return _letter(court, "rights_notice", case.case_no, fields, code, case.accepted_at)


def evidence_notice(
    case: CaseDoc, court: CourtSettings, days: int, due_at: dt.datetime, code: str
) -> bytes:
    """``due_at``: the end of the time for evidence, computed on the court's calendar."""
    fields = {**_common(case, court), "evidence_days": str(days), "due_on": local_day(due_at)}
    return _letter(court, "evidence_notice", case.case_no, fields, code, case.accepted_at)


def summons(
    case: CaseDoc, court: CourtSettings, hearing: HearingDoc, party: str, role: str, code: str
) -> bytes:
    """传票 to one party: when and where, online or not, what to bring."""
    online = "在线参加，通过“移动微法院”小程序进入在线庭审" if hearing.online else "到庭参加"
    fields = {
        **_common(case, court),
        "party": party,
        "role": role,
        "kind": hearing.kind.value,
        "starts_at": hearing.starts_at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M"),
        "room": f"本院{hearing.room}",
        "online": online,
        "bring": "、".join(court.documents.hearing_bring),
    }
    return _letter(court, "summons", case.case_no, fields, code, hearing.updated_at)
