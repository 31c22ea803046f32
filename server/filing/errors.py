"""The errors of filing: drafts, submission, withdrawal, review and document templates."""

from __future__ import annotations

from server.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed


class FilingNotFound(NotFound):
    code = "filing_not_found"
    message = "立案申请不存在"


class UnknownCaseKind(ValidationFailed):
    code = "unknown_case_kind"
    message = "案件类型有误"


class InvalidFiling(ValidationFailed):
    code = "invalid_filing"
    message = "立案申请内容有误"


class FilingIncomplete(ValidationFailed):
    code = "filing_incomplete"
    message = "立案材料不完整"


class LawyerNotVerified(Forbidden):
    code = "lawyer_not_verified"
    message = "只有已认证的律师可以代理立案"


class FilingNotEditable(Conflict):
    code = "filing_not_editable"
    message = "立案申请已提交，不能修改"


class FilingChanged(Conflict):
    code = "filing_changed"
    message = "立案申请已被修改，请刷新后重试"


class FilingNotWithdrawable(Conflict):
    code = "filing_not_withdrawable"
    message = "立案申请已审查完毕，不能撤回"


class FilingNotPending(Conflict):
    code = "filing_not_pending"
    message = "该立案申请不在待审查状态"


class CorrectionAlreadyRequested(Conflict):
    code = "correction_already_requested"
    message = "补正通知只能发送一次，请一次列明全部事项"


class TemplateNotFound(NotFound):
    code = "template_not_found"
    message = "文书模板不存在"
