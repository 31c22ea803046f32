"""The errors of work orders: messages to the court, their handling and rating."""

from __future__ import annotations

from server.platform.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)


class WorkOrderNotFound(NotFound):
    code = "workorder_not_found"
    message = "留言不存在"


class WorkOrderClosed(Conflict):
    code = "workorder_closed"
    message = "该留言已办结"


class ThreadFull(Conflict):
    code = "thread_full"
    message = "留言往来已达上限，请另行留言"


class WorkOrderBusy(Conflict):
    code = "workorder_busy"
    message = "留言正在被处理，请稍后重试"


class WorkOrderNotReplied(Conflict):
    code = "workorder_not_replied"
    message = "请先答复留言再办结"


class WorkOrderNotClosed(Conflict):
    code = "workorder_not_closed"
    message = "留言办结后才能评价"


class AlreadyRated(Conflict):
    code = "already_rated"
    message = "已经评价过了"


class NotAssignee(Forbidden):
    code = "not_assignee"
    message = "只有承办人或督办人员可以办理该留言"


class NotSupervisor(Forbidden):
    code = "not_supervisor"
    message = "只有督办人员可以分派留言"


class ContentTooLong(ValidationFailed):
    code = "content_too_long"
    message = "内容过长"


class ContentFlagged(ValidationFailed):
    code = "content_flagged"
    message = "内容含有违法违规信息，请修改后再发送"


class ContentCheckUnavailable(ServiceUnavailable):
    code = "content_check_unavailable"
    message = "内容安全检查暂不可用，请稍后再试"


class WorkOrderHeld(Conflict):
    code = "workorder_held"
    message = "该留言正在内容审核，请先审核放行"


class WorkOrderNotHeld(Conflict):
    code = "workorder_not_held"
    message = "该留言没有待审核的内容"


class NotServiceDesk(Forbidden):
    code = "not_service_desk"
    message = "仅服务台人员可以为来电、来访、来信人登记工单"


class WorkOrderNotAnswered(Conflict):
    code = "workorder_not_answered"
    message = "答复尚未送达来电人（短信送达或回拨接通后方可办结）"


class NoCallerPhone(Conflict):
    code = "no_caller_phone"
    message = "该工单没有来电人号码，无需回拨"


class LinkNotFound(NotFound):
    code = "workorder_link_not_found"
    message = "链接无效或已失效"
