"""The errors of cases: lookup, administration, hearings and electronic service."""

from __future__ import annotations

from server.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed


class CaseNotFound(NotFound):
    code = "case_not_found"
    message = "案件不存在"


class CaseLookupFailed(NotFound):
    code = "case_lookup_failed"
    message = "案号或查询码有误"


class CaseStatusConflict(Conflict):
    code = "case_status_conflict"
    message = "案件当前状态不允许该操作"


class CaseChanged(Conflict):
    code = "case_changed"
    message = "案件信息已变更，请刷新后重试"


class AssigneesRequired(ValidationFailed):
    code = "assignees_required"
    message = "分案须指定承办法官和书记员"


class AssigneesNotAllowed(ValidationFailed):
    code = "assignees_not_allowed"
    message = "只有分案可以指定承办人员"


class HearingNotFound(NotFound):
    code = "hearing_not_found"
    message = "排期不存在"


class HearingNotScheduled(Conflict):
    code = "hearing_not_scheduled"
    message = "该排期已取消或已开庭"


class HearingInPast(ValidationFailed):
    code = "hearing_in_past"
    message = "开庭时间不能早于当前时间"


class HearingTooFar(ValidationFailed):
    code = "hearing_too_far"
    message = "开庭时间不能晚于两年之后"


class NotAWorkingDay(ValidationFailed):
    code = "not_a_working_day"
    message = "该日不是法院工作日"


class OutsideCourtHours(ValidationFailed):
    code = "outside_court_hours"
    message = "开庭时间不在法院工作时间内"


class HearingRoomTaken(Conflict):
    code = "hearing_room_taken"
    message = "该法庭在该时段已有排期"


class DocumentNotFound(NotFound):
    code = "document_not_found"
    message = "文书不存在"


class DocumentNotPdf(ValidationFailed):
    code = "document_not_pdf"
    message = "送达的文书应为 PDF 文件"


class UnknownParty(ValidationFailed):
    code = "unknown_party"
    message = "受送达人不是本案当事人"


class BadDeliveryTime(ValidationFailed):
    code = "bad_delivery_time"
    message = "送达时间应在文书发出之后、当前时间之前"


class NotAParty(Forbidden):
    code = "not_a_party"
    message = "只有当事人本人可以确认电子送达"


class AlreadyServed(Conflict):
    code = "already_served"
    message = "该当事人已完成送达"
