"""Parties of filings and cases: validation, encryption of ID numbers, masking."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from models.filings import PartyDoc, PartyIn, PartyOut, PartyType
from server.identity.creditcode import credit_code_problem, normalize_credit_code
from server.identity.idnumber import id_number_problem, mask_id_number, normalize_id_number
from server.platform.crypto import FieldCipher

ROLE_NAMES = {"plaintiffs": "原告", "defendants": "被告", "third_parties": "第三人"}

Problem = dict[str, Any]


def problem(loc: list[str | int], msg: str) -> Problem:
    return {"loc": loc, "msg": msg}


def _label(group: str, index: int) -> str:
    return f"{ROLE_NAMES[group]}{index + 1}"


def party_doc(
    group: str,
    index: int,
    data: PartyIn,
    kept: dict[str, PartyDoc],
    cipher: FieldCipher,
    today: dt.date,
    problems: list[Problem],
) -> PartyDoc:
    """Turn one party of a request into its stored form, adding any problem to ``problems``.

    A party that names the ``party_id`` of a stored one and leaves ``id_number`` out keeps the
    stored (encrypted) number: clients only ever see it masked.
    """
    loc: list[str | int] = [group, index]
    label = _label(group, index)
    previous = kept.get(data.party_id or "")
    doc = PartyDoc(
        party_id=previous.party_id if previous else secrets.token_hex(6),
        type=data.type,
        name=data.name,
        phone=data.phone,
        address=data.address,
        legal_representative=data.legal_representative,
    )
    if data.type == PartyType.person:
        if data.credit_code:
            problems.append(problem([*loc, "credit_code"], f"{label}：自然人不填统一社会信用代码"))
        _set_id_number(doc, data, previous, cipher, today, problems, loc, label)
    else:
        if data.id_number:
            problems.append(problem([*loc, "id_number"], f"{label}：单位不填身份证号"))
        if data.credit_code:
            code = normalize_credit_code(data.credit_code)
            why = credit_code_problem(code)
            if why:
                problems.append(problem([*loc, "credit_code"], f"{label}：{why}"))
            doc.credit_code = code
    return doc


def _set_id_number(
    doc: PartyDoc,
    data: PartyIn,
    previous: PartyDoc | None,
    cipher: FieldCipher,
    today: dt.date,
    problems: list[Problem],
    loc: list[str | int],
    label: str,
) -> None:
    if data.id_number is None:
        if previous and previous.type == PartyType.person:
            doc.id_cipher, doc.id_hash = previous.id_cipher, previous.id_hash
            doc.id_masked = previous.id_masked
        return
    number = normalize_id_number(data.id_number)
    why = id_number_problem(number, today)
    if why:
        problems.append(problem([*loc, "id_number"], f"{label}：{why}"))
        return
    doc.id_cipher = cipher.encrypt(number, b"id_number")
    doc.id_hash = cipher.keyed_hash(number)
    doc.id_masked = mask_id_number(number)


def completeness(group: str, parties: list[PartyDoc]) -> list[Problem]:
    """What a party still lacks before the filing can be submitted."""
    found: list[Problem] = []
    for i, p in enumerate(parties):
        loc: list[str | int] = [group, i]
        label = _label(group, i)
        if p.type == PartyType.organization and not p.credit_code:
            found.append(problem([*loc, "credit_code"], f"{label}：请填写统一社会信用代码"))
        if p.type == PartyType.person and group == "plaintiffs" and not p.id_hash:
            found.append(problem([*loc, "id_number"], f"{label}：请填写身份证号"))
        if group == "plaintiffs" and not p.phone:
            found.append(problem([*loc, "phone"], f"{label}：请填写联系电话"))
        if not p.address:
            found.append(problem([*loc, "address"], f"{label}：请填写送达地址"))
    return found


def party_out(p: PartyDoc, full: bool = True) -> PartyOut:
    """A party as shown: ID number masked; contact details only when ``full``."""
    return PartyOut(
        party_id=p.party_id,
        type=p.type,
        name=p.name,
        id_number_masked=p.id_masked,
        credit_code=p.credit_code,
        phone=p.phone if full else None,
        address=p.address if full else None,
        legal_representative=p.legal_representative,
    )
