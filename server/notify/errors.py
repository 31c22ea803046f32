"""The errors of notifications: the inbox, subscriptions and the live feed."""

from __future__ import annotations

from server.platform.errors import BadRequest, NotFound, ValidationFailed


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    message = "通知不存在"


class UnknownTemplate(ValidationFailed):
    code = "unknown_template"
    message = "订阅消息模板无效"


class WebsocketRequired(BadRequest):
    code = "websocket_required"
    message = "请使用 WebSocket 连接"
