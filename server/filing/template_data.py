"""The complaint forms themselves, after the Supreme People's Court's element-style model
complaints (民事起诉状示范文本, 要素式). Parties are not elements: the filing records them.

Sections follow the printed form: 诉讼请求, 约定管辖和诉讼保全, 事实与理由. Amounts are fen.
"""

from __future__ import annotations

from typing import Any

from models.templates import Element, ElementType, Template

CLAIMS = "诉讼请求"
VENUE = "约定管辖和诉讼保全"
FACTS = "事实与理由"

T = ElementType


def el(key: str, label: str, type_: ElementType, **extra: Any) -> Element:
    section = extra.pop("section", FACTS)
    return Element(key=key, label=label, type=type_, section=section, **extra)


def claim(key: str, label: str, type_: ElementType = T.amount_fen, **extra: Any) -> Element:
    return el(key, label, type_, section=CLAIMS, **extra)


def _other_claims() -> Element:
    return claim("other_claims", "其他诉讼请求", T.textarea, max_length=500)


def _venue() -> list[Element]:
    return [
        el(
            "dispute_resolution_clause",
            "有无管辖约定或仲裁协议",
            T.choice,
            section=VENUE,
            required=True,
            choices=["无", "有管辖约定", "有仲裁协议"],
            help="约定由仲裁机构仲裁的，人民法院不予受理",
        ),
        el("preservation_applied", "是否已申请诉前保全", T.boolean, section=VENUE),
    ]


def _other_facts() -> Element:
    return el("other_facts", "其他需要说明的情况", T.textarea, max_length=2000)


def _past(key: str, label: str, **extra: Any) -> Element:
    return el(key, label, T.date, not_future=True, **extra)


PRIVATE_LENDING = Template(
    id="private-lending",
    name="民间借贷纠纷起诉状（要素式）",
    cause="民间借贷纠纷",
    case_kind="civil",
    description="自然人、法人和非法人组织之间借款未按约归还，请求归还本金、利息等。",
    elements=[
        claim("principal_owed_fen", "尚欠本金", required=True, min=1),
        claim(
            "interest_owed_fen",
            "尚欠利息",
            help="截至起诉之日；利率不超过合同成立时一年期LPR的四倍",
        ),
        claim("interest_until_paid", "是否主张利息计至实际清偿之日", T.boolean),
        claim("enforcement_costs_fen", "实现债权的费用", help="如律师费、保全保险费"),
        claim("claim_guarantee", "是否主张担保权利", T.boolean),
        _other_claims(),
        *_venue(),
        el(
            "loan_evidence",
            "借款凭证",
            T.choice,
            required=True,
            choices=["借款合同", "借条或欠条", "转账记录、聊天记录等其他凭证"],
        ),
        el("loan_amount_fen", "约定借款金额", T.amount_fen, required=True, min=1),
        _past("loan_date", "借款交付日期", required=True),
        el(
            "delivery_method",
            "借款交付方式",
            T.choice,
            required=True,
            choices=["银行转账", "微信转账", "支付宝转账", "现金", "其他"],
        ),
        el(
            "delivered_amount_fen",
            "实际交付金额",
            T.amount_fen,
            required=True,
            help="预先在本金中扣除利息的，按实际出借金额填写",
        ),
        el("repayment_due_date", "约定还款期限", T.date, help="未约定还款期限的不填"),
        el(
            "interest_rate",
            "约定利率",
            T.text,
            max_length=50,
            help="如：年利率 6%；未约定利息的不填",
        ),
        el("repaid_fen", "已还款金额", T.amount_fen, required=True, help="未还款的填 0"),
        _past("last_repayment_date", "最后一次还款日期"),
        el(
            "guarantee",
            "担保情况",
            T.choice,
            required=True,
            choices=["无担保", "保证", "抵押", "质押", "多种担保方式"],
        ),
        el("guarantee_details", "担保人或担保物", T.text, max_length=200),
        _other_facts(),
    ],
)

SALES_CONTRACT = Template(
    id="sales-contract",
    name="买卖合同纠纷起诉状（要素式）",
    cause="买卖合同纠纷",
    case_kind="civil",
    description="买卖双方因货款支付、标的物交付或质量发生争议，请求付款、交货、赔偿或解除合同。",
    elements=[
        claim("price_owed_fen", "请求支付的货款"),
        claim("overdue_interest_fen", "逾期付款利息或违约金"),
        claim("damages_fen", "损失赔偿"),
        claim("terminate_contract", "是否请求解除合同", T.boolean),
        _other_claims(),
        *_venue(),
        el("plaintiff_role", "原告身份", T.choice, required=True, choices=["出卖人", "买受人"]),
        el(
            "contract_form",
            "合同形式",
            T.choice,
            required=True,
            choices=["书面合同", "订单或送货单", "口头约定", "其他"],
        ),
        _past("contract_date", "合同签订日期", required=True),
        el("subject_matter", "标的物名称、规格和数量", T.textarea, required=True, max_length=500),
        el("total_price_fen", "合同总价款", T.amount_fen, required=True, min=1),
        el(
            "delivery_status",
            "交付情况",
            T.choice,
            required=True,
            choices=["已全部交付", "部分交付", "未交付"],
        ),
        _past("delivery_date", "交付日期"),
        el("payment_due_date", "约定付款期限", T.date),
        el("paid_fen", "已付款金额", T.amount_fen, required=True, help="未付款的填 0"),
        el("quality_objection", "买受人是否提出过质量异议", T.boolean),
        el("breach_clause", "违约责任约定", T.text, max_length=300),
        _other_facts(),
    ],
)

DIVORCE = Template(
    id="divorce",
    name="离婚纠纷起诉状（要素式）",
    cause="离婚纠纷",
    case_kind="civil",
    description="请求解除婚姻关系，并一并处理子女抚养、夫妻共同财产分割和债务承担。",
    elements=[
        claim("dissolve_marriage", "请求判决离婚", T.boolean, required=True),
        claim(
            "custody_request",
            "子女抚养请求",
            T.textarea,
            max_length=500,
            help="如：婚生子某某由原告直接抚养",
        ),
        claim("child_support_monthly_fen", "请求对方每月支付抚养费"),
        claim("property_division_request", "财产分割请求", T.textarea, max_length=1000),
        claim("debt_request", "债务承担请求", T.textarea, max_length=500),
        claim("compensation_fen", "离婚损害赔偿或家务补偿"),
        _other_claims(),
        _past("marriage_registration_date", "结婚登记日期", required=True),
        el("marriage_registration_office", "结婚登记机关", T.text, required=True, max_length=100),
        el(
            "marriage_history",
            "婚史",
            T.choice,
            required=True,
            choices=["双方均为初婚", "原告再婚", "被告再婚", "双方均为再婚"],
        ),
        el("children_count", "婚生子女人数", T.integer, required=True, min=0, max=20),
        el("children_details", "子女姓名、出生日期及现随谁生活", T.textarea, max_length=500),
        _past("separation_date", "分居开始日期", help="未分居的不填"),
        el(
            "previous_divorce_suit",
            "是否曾起诉离婚",
            T.boolean,
            required=True,
            help="判决不准离婚后，没有新情况、新理由，原告六个月内不得再次起诉",
        ),
        _past("previous_judgment_date", "前次判决不准离婚的日期"),
        el(
            "joint_property",
            "夫妻共同财产",
            T.textarea,
            max_length=2000,
            help="房产、车辆、存款、股权等，写明现由谁控制",
        ),
        el("joint_debts", "夫妻共同债务", T.textarea, max_length=1000),
        el(
            "breakdown_facts",
            "夫妻感情确已破裂的事实和理由",
            T.textarea,
            required=True,
            max_length=2000,
        ),
        _other_facts(),
    ],
)

LABOR_DISPUTE = Template(
    id="labor-dispute",
    name="劳动争议起诉状（要素式）",
    cause="劳动争议",
    case_kind="civil",
    description="不服劳动人事争议仲裁委员会的裁决或不予受理决定，就工资、经济补偿、赔偿金等起诉。"
    "劳动争议须先经仲裁。",
    elements=[
        claim("unpaid_wages_fen", "拖欠的劳动报酬"),
        claim("overtime_pay_fen", "加班费"),
        claim("double_wage_fen", "未订立书面劳动合同的二倍工资差额"),
        claim("severance_fen", "解除劳动合同经济补偿"),
        claim("unlawful_termination_fen", "违法解除劳动合同赔偿金"),
        claim("social_insurance_request", "社会保险相关请求", T.text, max_length=300),
        _other_claims(),
        el("plaintiff_role", "原告身份", T.choice, required=True, choices=["劳动者", "用人单位"]),
        _past("hire_date", "入职日期", required=True),
        el("position", "工作岗位", T.text, required=True, max_length=50),
        el(
            "monthly_wage_fen",
            "月工资（应发）",
            T.amount_fen,
            required=True,
            min=1,
            help="劳动关系解除前十二个月的平均工资",
        ),
        el(
            "contract_status",
            "劳动合同签订情况",
            T.choice,
            required=True,
            choices=["已签订书面劳动合同", "未签订书面劳动合同", "劳动合同到期后未续签"],
        ),
        el("social_insurance_paid", "用人单位是否缴纳社会保险", T.boolean),
        _past("leave_date", "离职日期", help="仍在职的不填"),
        el(
            "separation_reason",
            "劳动关系解除或终止的原因",
            T.choice,
            choices=[
                "用人单位解除",
                "劳动者辞职",
                "协商一致解除",
                "劳动合同期满终止",
                "仍在职",
                "其他",
            ],
        ),
        el(
            "arbitration_commission",
            "仲裁委员会名称",
            T.text,
            required=True,
            max_length=100,
            help="劳动争议须先经劳动人事争议仲裁委员会仲裁",
        ),
        el(
            "arbitration_case_no",
            "仲裁案号",
            T.text,
            required=True,
            max_length=60,
            help="仲裁裁决书或不予受理通知书上的案号，如：京朝劳人仲字〔2026〕第1234号",
        ),
        el(
            "arbitration_outcome",
            "仲裁结果",
            T.choice,
            required=True,
            choices=["已作出裁决", "不予受理", "逾期未作出裁决"],
        ),
        _past(
            "arbitration_served_date",
            "收到仲裁裁决书（或通知书）的日期",
            required=True,
            help="不服仲裁裁决的，应自收到裁决书之日起十五日内起诉",
        ),
        _other_facts(),
    ],
)

DISABILITY_GRADES = [f"{n}级" for n in "一二三四五六七八九十"]

TRAFFIC_ACCIDENT = Template(
    id="traffic-accident",
    name="机动车交通事故责任纠纷起诉状（要素式）",
    cause="机动车交通事故责任纠纷",
    case_kind="civil",
    description="机动车交通事故造成人身伤亡或财产损失，请求侵权人及保险公司赔偿。",
    elements=[
        claim("total_claim_fen", "诉请赔偿总额", required=True, min=1),
        claim("medical_fen", "医疗费"),
        claim("lost_income_fen", "误工费"),
        claim("nursing_fen", "护理费"),
        claim("transport_fen", "交通费"),
        claim("hospital_meal_fen", "住院伙食补助费"),
        claim("disability_compensation_fen", "残疾赔偿金"),
        claim("mental_damages_fen", "精神损害抚慰金"),
        claim("property_loss_fen", "车辆维修费等财产损失"),
        _other_claims(),
        _past("accident_date", "事故发生日期", required=True),
        el("accident_place", "事故发生地点", T.text, required=True, max_length=200),
        el("vehicle_plates", "涉事车辆号牌", T.text, max_length=100),
        el(
            "liability_finding",
            "交警部门事故责任认定",
            T.choice,
            required=True,
            choices=[
                "被告全部责任",
                "被告主要责任",
                "同等责任",
                "被告次要责任",
                "原告全部责任",
                "未认定",
            ],
        ),
        el("liability_document_no", "事故认定书编号", T.text, max_length=60),
        el("compulsory_insurer", "交强险承保公司", T.text, max_length=100),
        el("commercial_insurer", "商业三者险承保公司及保险金额", T.text, max_length=200),
        el("injuries", "伤情及治疗经过", T.textarea, max_length=2000),
        el("hospital_days", "住院天数", T.integer, min=0, max=3650),
        el(
            "disability_grade",
            "伤残等级",
            T.choice,
            choices=DISABILITY_GRADES,
            help="经鉴定构成伤残的填写；未构成的不填",
        ),
        el("compensation_received_fen", "已获赔偿或垫付金额", T.amount_fen),
        _other_facts(),
    ],
)

PROPERTY_SERVICE = Template(
    id="property-service",
    name="物业服务合同纠纷起诉状（要素式）",
    cause="物业服务合同纠纷",
    case_kind="civil",
    description="物业服务企业与业主之间因物业费、服务质量等发生争议，请求支付物业费或履行服务义务。",
    elements=[
        claim("fees_owed_fen", "欠缴物业费", required=True),
        claim("late_fee_fen", "违约金"),
        _other_claims(),
        *_venue(),
        el("plaintiff_role", "原告身份", T.choice, required=True, choices=["物业服务企业", "业主"]),
        el("property_address", "房屋坐落", T.text, required=True, max_length=200),
        el(
            "floor_area",
            "建筑面积（平方米）",
            T.text,
            required=True,
            max_length=20,
            help="如：89.50",
        ),
        el(
            "contract_kind",
            "物业服务合同类型",
            T.choice,
            required=True,
            choices=["前期物业服务合同", "业主大会选聘后订立的物业服务合同", "其他"],
        ),
        _past("service_start_date", "物业服务开始日期", required=True),
        el(
            "fee_standard",
            "收费标准",
            T.text,
            required=True,
            max_length=100,
            help="如：每月每平方米 2.50 元",
        ),
        _past("arrears_from", "欠费起始日期", required=True),
        _past("arrears_to", "欠费截止日期", required=True),
        el("payment_demanded", "是否已书面催缴", T.boolean, required=True),
        el("service_objections", "业主对服务质量的异议", T.textarea, max_length=1000),
        _other_facts(),
    ],
)

TEMPLATES: tuple[Template, ...] = (
    PRIVATE_LENDING,
    SALES_CONTRACT,
    DIVORCE,
    LABOR_DISPUTE,
    TRAFFIC_ACCIDENT,
    PROPERTY_SERVICE,
)
