"""Element-style complaint forms: the public list and detail, and the element validator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from miniapp_stubs.client import ApiSession
from models.templates import ElementType, Template
from server.filing.template_data import TEMPLATES
from server.filing.templates import get_template, validate_elements
from server.platform.errors import NotFound

TODAY = dt.date(2026, 11, 23)
CAUSES = {
    "private-lending": "民间借贷纠纷",
    "sales-contract": "买卖合同纠纷",
    "divorce": "离婚纠纷",
    "labor-dispute": "劳动争议",
    "traffic-accident": "机动车交通事故责任纠纷",
    "property-service": "物业服务合同纠纷",
}


def lending_ok() -> dict[str, Any]:
    return {
        "principal_owed_fen": 5_000_000,
        "interest_owed_fen": 120_000,
        "interest_until_paid": True,
        "dispute_resolution_clause": "无",
        "loan_evidence": "借条或欠条",
        "loan_amount_fen": 5_000_000,
        "loan_date": "2025-03-01",
        "delivery_method": "银行转账",
        "delivered_amount_fen": 5_000_000,
        "repayment_due_date": "2026-03-01",
        "interest_rate": "年利率 6%",
        "repaid_fen": 0,
        "guarantee": "无担保",
    }


def problems_by_key(problems: list[dict[str, Any]]) -> dict[str, str]:
    for p in problems:
        assert set(p) == {"loc", "msg"} and p["loc"][0] == "elements"
    return {p["loc"][1]: p["msg"] for p in problems}


@pytest.mark.gen_test
async def test_list_is_public_and_names_the_six_causes(api_url: str) -> None:
    res = await ApiSession(api_url).get("/api/v1/templates")
    assert res.status == 200
    items = {t["id"]: t for t in res.body["items"]}
    assert {i: t["cause"] for i, t in items.items() if i in CAUSES} == CAUSES
    for item in items.values():
        assert set(item) == {"id", "name", "cause", "case_kind", "description"}
        assert item["case_kind"] == "civil" and "起诉状" in item["name"]


@pytest.mark.gen_test
async def test_detail_has_elements_and_unknown_is_404(api_url: str) -> None:
    s = ApiSession(api_url)
    res = await s.get("/api/v1/templates/labor-dispute")
    assert res.status == 200
    assert res.body["name"] == "劳动争议起诉状（要素式）"
    elements = {e["key"]: e for e in res.body["elements"]}
    arbitration = elements["arbitration_case_no"]
    assert arbitration["required"] is True and arbitration["label"] == "仲裁案号"
    assert elements["monthly_wage_fen"]["type"] == "amount_fen"
    assert elements["contract_status"]["choices"]
    assert {e["section"] for e in res.body["elements"]} >= {"诉讼请求", "事实与理由"}
    missing = await s.get("/api/v1/templates/no-such-form")
    assert (missing.status, missing.error_code) == (404, "template_not_found")
    assert missing.body["error"]["message"] == "文书模板不存在"


def test_every_template_is_well_formed() -> None:
    assert {t.id for t in TEMPLATES} >= set(CAUSES)
    for t in TEMPLATES:
        Template.model_validate(t.model_dump())  # the data passes its own model
        assert any(e.required for e in t.elements), t.id
        for e in t.elements:
            assert e.label and not e.label.isascii(), (t.id, e.key)
            assert (e.type == ElementType.choice) == bool(e.choices)
    with pytest.raises(NotFound):
        get_template("nope")


def test_valid_elements_pass() -> None:
    assert validate_elements(get_template("private-lending"), lending_ok(), TODAY) == []
    optional_blank = {**lending_ok(), "interest_rate": "", "last_repayment_date": None}
    assert validate_elements(get_template("private-lending"), optional_blank, TODAY) == []


def test_every_kind_of_problem_is_reported_at_once() -> None:
    given = {
        **lending_ok(),
        "principal_owed_fen": None,  # required, null
        "delivered_amount_fen": 12.5,  # not an integer of fen
        "repaid_fen": -1,  # negative
        "interest_owed_fen": "100",  # a string
        "interest_until_paid": "yes",  # not a boolean
        "loan_date": "2026-12-01",  # in the future
        "repayment_due_date": "2026/03/01",  # not ISO
        "delivery_method": "比特币",  # not a choice
        "interest_rate": "年" * 51,  # too long
        "surprise": 1,  # unknown
    }
    del given["guarantee"]  # required, absent
    found = problems_by_key(validate_elements(get_template("private-lending"), given, TODAY))
    assert found == {
        "principal_owed_fen": "请填写尚欠本金",
        "interest_owed_fen": "尚欠利息应为以分为单位的非负整数金额",
        "interest_until_paid": "是否主张利息计至实际清偿之日应为“是”或“否”",
        "delivery_method": "借款交付方式只能选择：银行转账、微信转账、支付宝转账、现金、其他",
        "loan_date": "借款交付日期不能晚于今天",
        "delivered_amount_fen": "实际交付金额应为以分为单位的非负整数金额",
        "repayment_due_date": "约定还款期限应为有效日期，格式为 YYYY-MM-DD",
        "interest_rate": "约定利率不能超过50个字",
        "repaid_fen": "已还款金额应为以分为单位的非负整数金额",
        "guarantee": "请选择担保情况",
        "surprise": "未知的要素：surprise",
    }


def test_ranges_booleans_and_dates() -> None:
    divorce = get_template("divorce")
    base = {
        "dissolve_marriage": True,
        "marriage_registration_date": "2015-05-20",
        "marriage_registration_office": "北京市朝阳区民政局",
        "marriage_history": "双方均为初婚",
        "children_count": 1,
        "previous_divorce_suit": False,
        "breakdown_facts": "双方自2024年起分居，感情确已破裂。",
    }
    assert validate_elements(divorce, base, TODAY) == []
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"children_count": 21}, "children_count", "婚生子女人数不能大于20"),
        ({"children_count": -1}, "children_count", "婚生子女人数不能小于0"),
        ({"children_count": True}, "children_count", "婚生子女人数应为整数"),
        ({"dissolve_marriage": 1}, "dissolve_marriage", "请求判决离婚应为“是”或“否”"),
        ({"marriage_registration_date": "2023-02-30"}, "marriage_registration_date", "有效日期"),
        ({"marriage_registration_date": "20150520"}, "marriage_registration_date", "有效日期"),
        ({"marriage_registration_date": "1800-01-01"}, "marriage_registration_date", "不合理"),
        ({"breakdown_facts": "   "}, "breakdown_facts", "请填写夫妻感情确已破裂的事实和理由"),
        ({"marriage_registration_office": 5}, "marriage_registration_office", "应为文字"),
    ]
    for change, key, words in cases:
        found = problems_by_key(validate_elements(divorce, {**base, **change}, TODAY))
        assert list(found) == [key] and words in found[key], change
    today_is_fine = {**base, "marriage_registration_date": TODAY.isoformat()}
    assert validate_elements(divorce, today_is_fine, TODAY) == []


def test_labour_disputes_need_the_arbitration() -> None:
    labour = get_template("labor-dispute")
    given = {
        "plaintiff_role": "劳动者",
        "hire_date": "2022-07-01",
        "position": "仓库管理员",
        "monthly_wage_fen": 800_000,
        "contract_status": "未签订书面劳动合同",
    }
    found = problems_by_key(validate_elements(labour, given, TODAY))
    assert set(found) == {
        "arbitration_commission",
        "arbitration_case_no",
        "arbitration_outcome",
        "arbitration_served_date",
    }
    assert found["arbitration_case_no"] == "请填写仲裁案号"
    done = {
        **given,
        "arbitration_commission": "北京市朝阳区劳动人事争议仲裁委员会",
        "arbitration_case_no": "京朝劳人仲字〔2026〕第1234号",
        "arbitration_outcome": "已作出裁决",
        "arbitration_served_date": "2026-11-16",
        "monthly_wage_fen": 0,
    }
    found = problems_by_key(validate_elements(labour, done, TODAY))
    assert found == {"monthly_wage_fen": "月工资（应发）不能少于0.01元"}


def test_amount_ceiling() -> None:
    lending = get_template("private-lending")
    found = problems_by_key(
        validate_elements(lending, {**lending_ok(), "loan_amount_fen": 10**16}, TODAY)
    )
    assert found == {"loan_amount_fen": "约定借款金额应为以分为单位的非负整数金额"}
