"""The default wording of the documents the court generates; a court words its own in config
(``courts[].documents.wording.<kind>``: a title and paragraphs with ``{name}`` placeholders,
checked at start-up against DOCUMENT_FIELDS in server/platform/court_documents.py).

A paragraph that is exactly ``{breakdown}`` (the fee's table) or ``{relief}`` (the decision on
fee relief and what is to be paid) is a block the code fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.platform.config import CourtSettings


@dataclass(frozen=True)
class Wording:
    title: str
    paragraphs: tuple[str, ...]


INDENT = "\u3000\u3000"  # two ideographic spaces: the first-line indent of Chinese prose

DEFAULTS: dict[str, Wording] = {
    "acceptance_notice": Wording(
        "受理案件通知书",
        (
            "{plaintiffs}：",
            INDENT + "你（单位）诉{defendants}{cause}一案，本院经审查，符合法定受理条件，"
            "于{accepted_on}立案受理，案号为{case_no}，适用{procedure}审理。",
            INDENT + "案件查询码：{query_code}。凭案号和查询码，可在“移动微法院”小程序查询"
            "案件进展；请妥善保管，不要告知他人。",
            INDENT + "请按照缴费通知书的要求预交案件受理费，并按时参加诉讼活动。",
            INDENT + "本案联系人：{contact}；联系电话：{phone}；地址：{address}。",
        ),
    ),
    "fee_notice": Wording(
        "预交诉讼费用通知书",
        (
            "{plaintiffs}：",
            INDENT + "你（单位）诉{defendants}{cause}一案，本院已于{accepted_on}立案受理，"
            "案号为{case_no}。依照《诉讼费用交纳办法》，本案应交案件受理费{fee}元，"
            "计算如下：",
            "{breakdown}",
            "{relief}",
            INDENT + "交纳诉讼费用确有困难的，可以依照《诉讼费用交纳办法》第四十四条至第五十一条"
            "的规定，向本院申请司法救助，缓交、减交或者免交诉讼费用。",
            INDENT + "如有疑问，请致电{phone}。",
        ),
    ),
    "rights_notice": Wording(
        "诉讼权利义务告知书",
        (
            "本案各方当事人：",
            INDENT + "本院已受理{case_no}案件。依照《中华人民共和国民事诉讼法》的规定，"
            "现将当事人在诉讼中的权利和义务告知如下：",
            INDENT + "一、当事人有权委托代理人，提出回避申请，收集、提供证据，进行辩论，"
            "请求调解，提起上诉，申请执行。",
            INDENT + "二、当事人可以查阅本案有关材料，并可以复制本案有关材料和法律文书。",
            INDENT + "三、双方当事人可以自行和解；原告可以放弃或者变更诉讼请求，"
            "被告可以承认或者反驳诉讼请求，有权提起反诉。",
            INDENT + "四、当事人必须依法行使诉讼权利，遵守诉讼秩序，如实陈述案件事实，"
            "履行发生法律效力的判决书、裁定书和调解书。",
            INDENT + "五、当事人应当按时到庭参加诉讼；原告经传票传唤，无正当理由拒不到庭的，"
            "可以按撤诉处理；被告经传票传唤，无正当理由拒不到庭的，可以缺席判决。",
            INDENT + "六、当事人的送达地址或联系方式变更的，应当及时告知本院。",
            INDENT + "联系人：{contact}；联系电话：{phone}。",
        ),
    ),
    "evidence_notice": Wording(
        "举证通知书",
        (
            "本案各方当事人：",
            INDENT + "本院受理的{case_no}{plaintiffs}诉{defendants}{cause}一案，依照"
            "《中华人民共和国民事诉讼法》和《最高人民法院关于民事诉讼证据的若干规定》，"
            "现将举证事项通知如下：",
            INDENT + "一、当事人对自己提出的诉讼请求所依据的事实或者反驳对方诉讼请求所依据的事实，"
            "应当提供证据加以证明。没有证据或者证据不足以证明的，由负有举证责任的一方承担"
            "不利后果。",
            INDENT + "二、本案举证期限为{evidence_days}日，自收到本通知书的次日起计算，"
            "至{due_on}届满。",
            INDENT + "三、当事人逾期提供证据的，应当说明理由；拒不说明理由或者理由不成立的，"
            "本院可以不予采纳该证据，或者采纳该证据但予以训诫、罚款。",
            INDENT + "四、申请证人出庭作证、申请鉴定、申请调查收集证据，应当在举证期限届满前提出。",
            INDENT + "五、提交证据应当附证据清单，写明证据名称、来源和证明对象，并按对方当事人人数"
            "提交副本。",
            INDENT + "联系人：{contact}；联系电话：{phone}。",
        ),
    ),
    "summons": Wording(
        "传票",
        (
            "被传唤人：{party}（{role}）",
            "案由：{cause}",
            "传唤事由：{kind}",
            "应到时间：{starts_at}",
            "应到处所：{room}（{online}）",
            "应携带：{bring}",
            "注意事项：",
            INDENT + "一、被传唤人应准时到达应到处所；在线参加的，请提前十五分钟通过"
            "“移动微法院”小程序进入在线庭审。",
            INDENT + "二、原告经传票传唤，无正当理由拒不到庭的，可以按撤诉处理；被告经传票传唤，"
            "无正当理由拒不到庭的，可以缺席判决。",
            INDENT + "三、如有疑问，请联系{contact}，电话：{phone}；本院地址：{address}。",
        ),
    ),
}


def wording_for(court: CourtSettings, kind: str) -> Wording:
    """The court's own wording where it has one, the default for the rest."""
    default = DEFAULTS[kind]
    own = court.documents.wording.get(kind)
    if own is None:
        return default
    return Wording(
        own.title or default.title,
        tuple(own.paragraphs) if own.paragraphs else default.paragraphs,
    )
