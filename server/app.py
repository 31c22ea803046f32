"""The application factory: ``make_app(settings, db)``, used by ``serve`` and by the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from tornado import web

from handlers import admin, apidocs, auth, courts, me, system
from handlers import cases as cases_handlers
from handlers import colleagues as colleagues_handlers
from handlers import console as console_handlers
from handlers import documents as documents_handlers
from handlers import fees as fees_handlers
from handlers import files as files_handlers
from handlers import filings as filings_handlers
from handlers import messages as messages_handlers
from handlers import notifications as notifications_handlers
from handlers import payments as payments_handlers
from handlers import review as review_handlers
from handlers import sms as sms_handlers
from handlers import templates as templates_handlers
from handlers import workorders as workorders_handlers
from handlers.base import API404
from server.cases.admin import CaseAdminService
from server.cases.hearings import HearingService
from server.cases.service import CaseService
from server.cases.service_of_documents import DocumentService
from server.cases.views import CaseViews
from server.fees.notices import FeeNoticeService
from server.fees.payments import PaymentService
from server.fees.reconcile import Reconciler
from server.fees.refunds import RefundService
from server.files.service import FileService
from server.filing.acceptance_documents import AcceptanceDocuments
from server.filing.filings import FilingService
from server.filing.review import ReviewService
from server.identity.auth import AuthService
from server.identity.face import WeChatFaceVerifier
from server.identity.realname import RealNameService
from server.identity.users import UserService
from server.notify.feed import FeedHub
from server.notify.inbox import NotificationService
from server.notify.outbox import OutboxWorker
from server.notify.sms import SmsAdapter, SmsService
from server.platform.calendar import Calendars
from server.platform.clock import Clock, SystemClock
from server.platform.config import Settings
from server.platform.crypto import FieldCipher, Keys, Passwords, TokenSigner, resolve_keys
from server.platform.db import Database
from server.platform.idempotency import IdempotencyStore
from server.platform.observe import log_request
from server.platform.openapi import build_openapi
from server.wechat.miniprogram import WeChatAdapter
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import resolve_pay_credentials
from server.workorders.admin import WorkOrderAdmin
from server.workorders.desk import DeskService
from server.workorders.hold import ContentHold
from server.workorders.messages import MessageService
from server.workorders.service import WorkOrderService
from server.workorders.stats import WorkOrderStats
from server.workorders.sweep import EscalationSweep

HANDLER_MODULES = (
    system,
    auth,
    me,
    admin,
    courts,
    files_handlers,
    templates_handlers,
    notifications_handlers,
    filings_handlers,
    review_handlers,
    cases_handlers,
    documents_handlers,
    fees_handlers,
    payments_handlers,
    messages_handlers,
    workorders_handlers,
    colleagues_handlers,  # the staff of my court, for the console's pickers
    console_handlers,  # the staff console's page and assets (/console/)
    apidocs,  # the API reference for people (/api/docs)
    sms_handlers,  # 1+N: Tencent Cloud SMS's delivery receipts
)


@dataclass
class Services:
    """Everything a handler may call; built once per application."""

    settings: Settings
    db: Database
    clock: Clock
    wechat: WeChatAdapter
    wechatpay: WeChatPayAdapter  # WeChat Pay v3 (JSAPI): orders, refunds, callbacks, bills
    users: UserService
    auth: AuthService
    files: FileService
    notifications: NotificationService
    outbox: OutboxWorker
    feed: FeedHub
    idempotency: IdempotencyStore
    calendars: Calendars
    cases: CaseService
    filings: FilingService
    review: ReviewService
    acceptance_documents: AcceptanceDocuments  # made and served after the acceptance
    case_views: CaseViews  # reading cases, lookup by number and query code
    case_admin: CaseAdminService  # assignment and milestones
    hearings: HearingService
    service: DocumentService  # electronic service (电子送达)
    fees: FeeNoticeService  # fee notices (缴费通知书)
    payments: PaymentService  # paying them through WeChat Pay
    refunds: RefundService
    reconciler: Reconciler  # 对账: WeChat Pay's bill against our records
    workorders: WorkOrderService  # messages to the court (联系法官) and their work orders
    messages: MessageService
    workorder_admin: WorkOrderAdmin
    workorder_sweep: EscalationSweep
    workorder_stats: WorkOrderStats
    realname: RealNameService  # real-name claims confirmed by WeChat's face verification
    workorder_hold: ContentHold  # content held for a supervisor's review
    sms: SmsService  # 1+N: SMS to callers (Tencent Cloud SMS), through the outbox
    workorder_desk: DeskService  # 1+N: the service desk's orders, call-backs, SMS links


class _Base(NamedTuple):
    """What every capability is built from."""

    settings: Settings
    db: Database
    clock: Clock
    cipher: FieldCipher
    calendars: Calendars


class _Identity(NamedTuple):
    users: UserService
    auth: AuthService
    idempotency: IdempotencyStore


class _Notify(NamedTuple):
    files: FileService
    notifications: NotificationService
    outbox: OutboxWorker
    feed: FeedHub
    sms: SmsService  # 1+N: SMS to callers, through the outbox


class _Court(NamedTuple):
    """Filing, cases and their fee notices: one web of services that call each other."""

    cases: CaseService
    fees: FeeNoticeService
    filings: FilingService
    review: ReviewService
    acceptance_documents: AcceptanceDocuments
    case_views: CaseViews
    case_admin: CaseAdminService
    hearings: HearingService
    service: DocumentService


class _Money(NamedTuple):
    payments: PaymentService
    refunds: RefundService
    reconciler: Reconciler


class _WorkOrders(NamedTuple):
    workorders: WorkOrderService
    messages: MessageService
    workorder_admin: WorkOrderAdmin
    workorder_sweep: EscalationSweep
    workorder_stats: WorkOrderStats
    workorder_desk: DeskService


def build_services(
    settings: Settings,
    db: Database,
    *,
    clock: Clock | None = None,
    wechat: WeChatAdapter | None = None,
    wechatpay: WeChatPayAdapter | None = None,
    keys: Keys | None = None,
    sms: SmsAdapter | None = None,
) -> Services:
    """Every service, each built once, in the order they depend on one another."""
    clock = clock or SystemClock()
    keys = keys or resolve_keys(settings)
    wechat = wechat or _wechat_adapter(settings)
    wechatpay = wechatpay or WeChatPayAdapter.from_settings(
        settings, resolve_pay_credentials(settings)[0], clock
    )
    cipher = FieldCipher(keys.data_key, keys.hash_key)
    base = _Base(settings, db, clock, cipher, Calendars(settings))
    # Unpacked, not read by attribute: names such as ``files`` and ``cases`` are also the
    # stores' collection handles, which tests/platform/test_ownership.py keeps in their stores.
    identity = _identity(base, keys, wechat)
    users, auth, _ = identity
    notify = _notify(base, users, auth, wechat, sms or SmsAdapter.from_settings(settings.sms))
    files, notifications, *_ = notify
    court = _court(base, users, files, notifications)
    cases, fees, *_ = court
    money = _money(base, wechatpay, users, cases, fees, notifications)
    workorders = _workorders(base, wechat, users, files, notifications, court, notify.sms)
    realname = _realname(base, users, notifications, wechat, court.cases)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        calendars=base.calendars,
        wechat=wechat,
        wechatpay=wechatpay,
        **identity._asdict(),
        **notify._asdict(),
        **court._asdict(),
        **money._asdict(),
        **workorders._asdict(),
        realname=realname,
        workorder_hold=ContentHold(workorders.workorders),
    )


def _realname(
    base: _Base,
    users: UserService,
    notifications: NotificationService,
    wechat: WeChatAdapter,
    cases: CaseService,
) -> RealNameService:
    max_age = dt.timedelta(seconds=base.settings.security.face_result_max_age_seconds)
    verifier = WeChatFaceVerifier(wechat, max_age)
    return RealNameService(base.db, users, verifier, notifications, wechat, cases.move_links)


def _wechat_adapter(settings: Settings) -> WeChatAdapter:
    return WeChatAdapter(
        settings.wechat.appid,
        settings.wechat.secret or "emulator-secret",
        settings.wechat.api_base,
        settings.wechat.timeout_seconds,
    )


def _identity(base: _Base, keys: Keys, wechat: WeChatAdapter) -> _Identity:
    settings, db, clock = base.settings, base.db, base.clock
    passwords = Passwords()
    users = UserService(db, settings, base.cipher, passwords, clock)
    auth = AuthService(
        db, settings, users, TokenSigner(keys.token_secret), passwords, wechat, clock
    )
    return _Identity(users, auth, IdempotencyStore(db, clock))


def _notify(
    base: _Base, users: UserService, auth: AuthService, wechat: WeChatAdapter, sms: SmsAdapter
) -> _Notify:
    settings, db, clock = base.settings, base.db, base.clock
    files = FileService(db, settings, users, clock)
    outbox = OutboxWorker(db, settings.notifications, wechat, clock)
    notifications = NotificationService(db, settings, clock, on_enqueued=outbox.wake)
    feed = FeedHub(db, settings.notifications, auth.authenticate)
    outbox.sms = SmsService(db, settings.sms, sms, clock, on_enqueued=outbox.wake)
    return _Notify(files, notifications, outbox, feed, outbox.sms)


def _court(
    base: _Base, users: UserService, files: FileService, notifications: NotificationService
) -> _Court:
    settings, db, clock, cipher, calendars = base
    cases = CaseService(db, users, cipher, clock)
    filings = FilingService(db, settings, cipher, clock, users, files, calendars, notifications)
    service = DocumentService(db, clock, users, cases, files, notifications, settings)
    fees = FeeNoticeService(db, settings, clock, calendars, cases, notifications)
    documents = AcceptanceDocuments(db, settings, clock, calendars, users, cases, service, fees)
    review = ReviewService(
        db, settings, clock, users, filings, cases, calendars, files, notifications, fees, documents
    )
    case_views = CaseViews(db, settings, cases, users, calendars, service, fees, files, filings)
    case_admin = CaseAdminService(db, clock, cases, case_views, users, notifications)
    hearings = HearingService(db, settings, clock, calendars, case_admin, service)
    return _Court(
        cases, fees, filings, review, documents, case_views, case_admin, hearings, service
    )


def _money(
    base: _Base,
    wechatpay: WeChatPayAdapter,
    users: UserService,
    cases: CaseService,
    fees: FeeNoticeService,
    notifications: NotificationService,
) -> _Money:
    settings, db, clock = base.settings, base.db, base.clock
    payments = PaymentService(db, settings, clock, wechatpay, users, cases, fees, notifications)
    refunds = RefundService(db, settings, clock, wechatpay, users, cases, payments, notifications)
    return _Money(payments, refunds, Reconciler(wechatpay, payments, refunds))


def _workorders(
    base: _Base,
    wechat: WeChatAdapter,
    users: UserService,
    files: FileService,
    notifications: NotificationService,
    court: _Court,
    sms: SmsService,
) -> _WorkOrders:
    settings, db, clock, calendars = base.settings, base.db, base.clock, base.calendars
    cases = court.cases
    workorders = WorkOrderService(db, settings, clock, users, files, notifications)
    messages = MessageService(settings, workorders, cases, users, files, calendars, wechat)
    admin = WorkOrderAdmin(workorders, users, files, settings.workorders.max_thread)
    admin.desk = DeskService(workorders, messages, cases, court.case_views, sms)
    sms.on_result = admin.desk.sms_outcome
    return _WorkOrders(
        workorders=workorders,
        messages=messages,
        workorder_admin=admin,
        workorder_sweep=EscalationSweep(db, settings.workorders, clock, workorders),
        workorder_stats=WorkOrderStats(settings, clock, calendars, workorders),
        workorder_desk=admin.desk,
    )


def routes() -> list[tuple[str, type[web.RequestHandler]]]:
    table: list[tuple[str, type[web.RequestHandler]]] = []
    for module in HANDLER_MODULES:
        table.extend(module.default_handlers)
    return table


def make_app(settings: Settings, db: Database, **overrides: Any) -> web.Application:
    """The Tornado application; ``overrides`` (clock, wechat, wechatpay, keys) are for tests
    and serve."""
    services = build_services(settings, db, **overrides)
    table = routes()
    return web.Application(
        [*table, (r"/api/.*", API404)],
        services=services,
        openapi=build_openapi(table),
        default_handler_class=API404,
        log_function=log_request,
        debug=settings.server.debug,
        xsrf_cookies=False,
    )
