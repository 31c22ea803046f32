"""Settings: config.yaml holds every setting with its default; MICROCOURT_* variables override.

Nested settings are reached with ``__``: ``MICROCOURT_MONGODB__URI``. The first admin's
password is the one flat exception the deployment docs name: ``MICROCOURT_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pymongo.write_concern import WriteConcern

from server.platform.court_documents import CourtDocuments

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "config.yaml"
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, part headers and form fields


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it on one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("data")
    debug: bool = False
    behind_proxy: bool = False
    log_file: str = ""
    max_json_body_bytes: int = Field(1_048_576, gt=0)
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0)
    # The HTTP edge (server/platform/edge.py): answered 414, 431, 413 or 503 past these
    max_request_line_bytes: int = Field(8192, ge=256)
    max_header_bytes: int = Field(65536, ge=1024)
    header_timeout_seconds: float = Field(10, gt=0)
    body_timeout_seconds: float = Field(60, gt=0)
    max_connections: int = Field(2000, ge=1)


class WriteConcernSettings(_Section):
    """Every write is acknowledged only once it is durable: by a majority of the replica set
    (``w``) and in its on-disk journal (``j``). The embedded database is started with
    ``--sync-on-commit`` so that its acknowledgement means the same."""

    w: Literal["majority"] | int = Field("majority")
    j: bool = True
    wtimeout_ms: int = Field(10000, ge=0)

    @property
    def concern(self) -> WriteConcern:
        return WriteConcern(w=self.w, j=self.j, wtimeout=self.wtimeout_ms)


class MongoSettings(_Section):
    uri: str = ""
    database: str = Field("microcourt", pattern=r"^[A-Za-z0-9_-]{1,60}$")
    embedded_command: str = "secantusd-py"
    startup_timeout_seconds: float = Field(30.0, gt=0)
    write_concern: WriteConcernSettings = Field(default_factory=WriteConcernSettings)

    @property
    def embedded(self) -> bool:
        return not self.uri


class WeChatSettings(_Section):
    appid: str = Field("wx0000000000000dev", pattern=r"^wx[0-9a-zA-Z]{14,18}$")
    secret: str = ""
    api_base: str = "https://api.weixin.qq.com"
    timeout_seconds: float = Field(5.0, gt=0)

    @property
    def emulated(self) -> bool:
        """No real secret configured: the server starts and uses the emulator."""
        return not self.secret


class WeChatPaySettings(_Section):
    """WeChat Pay API v3, JSAPI for the mini-program. No ``mchid``: the emulator, with
    development keys made once into ``server.data_dir/secrets.json``."""

    mchid: str = Field("", pattern=r"^([0-9]{8,12})?$")
    appid: str = Field("", pattern=r"^(wx[0-9a-zA-Z]{14,18})?$")  # empty: wechat.appid
    api_base: str = Field("https://api.mch.weixin.qq.com", pattern=r"^https?://[^/?#\s]+$")
    merchant_serial_no: str = ""  # the merchant API certificate's serial number
    merchant_private_key: str = ""  # PEM text, or the path of apiclient_key.pem
    apiv3_key: str = ""  # 32 characters
    platform_public_key: str = ""  # WeChat Pay's public key: PEM text, or the path of its file
    platform_public_key_id: str = ""  # PUB_KEY_ID_...
    # platform certificates (GET /v3/certificates), alone or beside the public key (switch-over)
    platform_certificates: bool = False
    notify_base_url: str = Field("", pattern=r"^(https?://[^?#\s]+)?$")
    order_expire_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    timeout_seconds: float = Field(10.0, gt=0)

    @property
    def emulated(self) -> bool:
        """No merchant configured: the server starts the emulator and uses it."""
        return not self.mchid


def _default_sms_templates() -> dict[str, str]:
    return {"workorder_replied": "2100001", "workorder_closed": "2100002"}


class SmsSettings(_Section):
    """Tencent Cloud SMS (SendSms, API 2021-01-11): answers to callers without the
    mini-program (1+N). No secret id: the emulator in miniapp_stubs answers instead."""

    secret_id: str = ""  # MICROCOURT_SMS__SECRET_ID (secret: environment only)
    secret_key: str = ""  # MICROCOURT_SMS__SECRET_KEY
    sdk_app_id: str = Field("1400000000", pattern=r"^\d{10}$")
    sign_name: str = Field("微法院", min_length=2, max_length=12)
    region: str = "ap-guangzhou"
    endpoint: str = Field("sms.tencentcloudapi.com", pattern=r"^[A-Za-z0-9.:-]+$")
    # logical name -> the approved template's id; each takes [order number, link token]
    templates: dict[str, str] = Field(default_factory=_default_sms_templates)
    timeout_seconds: float = Field(10.0, gt=0)

    @property
    def emulated(self) -> bool:
        return not self.secret_id


class ReviewSettings(_Section):
    deadline_sweep_seconds: float = Field(300.0, gt=0)


class WorkOrderSettings(_Section):
    """Messages to the court (联系法官) and the escalation sweep of their work orders."""

    messages_per_minute: int = Field(10, gt=0)  # messages and follow-ups, per user and process
    max_thread: int = Field(100, ge=2, le=1000)  # entries in one thread: message and replies
    sweep_seconds: float = Field(60.0, gt=0)
    sweep_batch: int = Field(200, ge=1, le=5000)
    sweep_lease_seconds: float = Field(60.0, gt=0)


class CaseSettings(_Section):
    """Case lookup limits, court hours for hearings, the hearing-reminder sweep, and the
    making of the acceptance documents."""

    lookups_per_user_per_minute: int = Field(10, gt=0)
    lookups_per_case_per_hour: int = Field(20, gt=0)
    verifications_per_client_per_minute: int = Field(30, gt=0)  # GET /documents/verify
    hearing_day_start: time = time(9, 0)
    hearing_day_end: time = time(17, 30)
    reminder_sweep_seconds: float = Field(300.0, gt=0)
    # the acceptance documents: made in this many worker processes (0: a thread of the
    # server's own), and how often the recovery sweep looks for documents still owed
    render_processes: int = Field(1, ge=0, le=16)
    documents_sweep_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _hours(self) -> CaseSettings:
        if self.hearing_day_start >= self.hearing_day_end:
            raise ValueError("hearing_day_start must come before hearing_day_end")
        return self


class SecuritySettings(_Section):
    token_secret: str = ""
    data_key: str = ""
    hash_key: str = ""
    token_ttl_seconds: int = Field(7 * 24 * 3600, ge=300)
    revocation_poll_seconds: float = Field(15.0, gt=0, le=60)
    user_cache_seconds: float = Field(30.0, ge=0, le=60)
    login_attempts_per_minute: int = Field(20, gt=0)
    # real-name face verification (人脸核身): how long a claim waits for it, and how old a
    # verify_result may be when the page hands it in
    identity_claim_seconds: int = Field(3600, ge=60)
    face_result_max_age_seconds: int = Field(1800, ge=60)


class FileSettings(_Section):
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    uploads_per_minute: int = Field(30, gt=0)


class FixedFees(_Section):
    """Each court's choice inside the ranges of 《诉讼费用交纳办法》 Art. 13, in fen."""

    divorce_fen: int = Field(5_000, ge=5_000, le=30_000)
    personality_rights_fen: int = Field(10_000, ge=10_000, le=50_000)
    non_property_fen: int = Field(5_000, ge=5_000, le=10_000)
    ip_no_amount_fen: int = Field(50_000, ge=50_000, le=100_000)
    execution_no_amount_fen: int = Field(5_000, ge=5_000, le=50_000)


class WorkOrderDeadlines(_Section):
    """A court's work orders (联系法官): their deadlines in working time, and who answers a
    message on a case (the case's judge, or its clerk; the other one when that one is not
    named yet, the service desk when neither is)."""

    assign_working_hours: float = Field(1, gt=0, le=80)
    first_reply_working_days: int = Field(1, gt=0, le=30)
    close_working_days: int = Field(5, gt=0, le=60)
    route_to: Literal["judge", "clerk"] = "judge"


class Deadlines(_Section):
    review_days: dict[str, int] = Field(
        default_factory=lambda: {
            "civil": 7,
            "administrative": 7,
            "private_prosecution": 15,
            "execution_objection": 15,
            "third_party_revocation": 30,
        }
    )
    default_review_days: int = Field(7, gt=0, le=60)
    fee_due_days: int = Field(7, gt=0, le=30)
    workorder: WorkOrderDeadlines = Field(default_factory=WorkOrderDeadlines)

    @field_validator("review_days")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for kind, days in value.items():
            if days <= 0 or days > 60:
                raise ValueError(f"review_days.{kind} must be between 1 and 60")
        return value


class CalendarOverrides(_Section):
    """Dates (YYYY-MM-DD) that override China's holiday schedule for one court."""

    extra_holidays: list[str] = Field(default_factory=list)
    extra_workdays: list[str] = Field(default_factory=list)

    @field_validator("extra_holidays", "extra_workdays")
    @classmethod
    def _iso_dates(cls, value: list[str]) -> list[str]:
        for item in value:
            # fromisoformat alone would also take 20260101 and 2026-W01-1.
            ok = re.fullmatch(r"\d{4}-\d{2}-\d{2}", item) is not None
            try:
                date.fromisoformat(item)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{item!r} is not a date in the form YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarOverrides:
        both = sorted(set(self.extra_holidays) & set(self.extra_workdays))
        if both:
            raise ValueError(f"{', '.join(both)} listed both as holiday and as workday")
        return self


class CourtSettings(_Section):
    id: str = Field(pattern=r"^[a-z0-9-]{2,40}$")
    name: str = Field(min_length=2, max_length=60)
    code: str = Field(min_length=2, max_length=12)
    region: str = ""
    timezone: str = "Asia/Shanghai"
    case_types: dict[str, str]
    fixed_fees: FixedFees = Field(default_factory=FixedFees)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    calendar: CalendarOverrides = Field(default_factory=CalendarOverrides)
    # 1+N: judge's username -> the team's number (N号码), unless the admin set one
    team_numbers: dict[str, str] = Field(default_factory=dict)
    documents: CourtDocuments = Field(default_factory=CourtDocuments)

    @field_validator("code")
    @classmethod
    def _court_code(cls, value: str) -> str:
        # 案号 court codes are a province abbreviation plus digits, e.g. 京0105.
        if not re.fullmatch(r"[\u4e00-\u9fff][0-9]{0,6}", value):
            raise ValueError("court code must be a province character followed by digits")
        return value


# WeChat subscribe-message keyword types we can fill (the keyword is its type plus a number).
_FREE_KINDS = frozenset({"thing", "time", "date", "phrase", "name", "car_number"})
_STRICT_KINDS = frozenset({"character_string", "number", "amount", "phone_number", "letter"})
TEMPLATE_KEYWORD_KINDS = _FREE_KINDS | _STRICT_KINDS | {"symbol"}


class PushTemplate(_Section):
    """One subscribe-message template: its WeChat id, default page and keyword sources.

    ``fields`` maps each WeChat keyword (``thing1``, ``time2`` …) to where its value comes
    from: ``title``, ``body``, ``created_at`` or ``data.<key>`` of the notice.
    """

    template_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    page: str = Field("", max_length=256)
    fields: dict[str, str] = Field(min_length=1, max_length=10)
    # 长期订阅: open to government and public-service (政务民生) mini-programs; one acceptance
    # lets every later message through, so a send takes no one-time quota
    long_term: bool = False

    @field_validator("fields")
    @classmethod
    def _sources(cls, value: dict[str, str]) -> dict[str, str]:
        for keyword, source in value.items():
            kind = keyword.rstrip("0123456789")
            if kind == keyword or kind not in TEMPLATE_KEYWORD_KINDS:
                raise ValueError(f"{keyword!r} is not a WeChat keyword such as thing1 or time2")
            if not re.fullmatch(r"title|body|created_at|data\.[A-Za-z0-9_]{1,40}", source):
                raise ValueError(f"{keyword}: source must be title, body, created_at or data.<key>")
        return value


def _default_templates() -> dict[str, PushTemplate]:
    return {}


class NotificationSettings(_Section):
    templates: dict[str, PushTemplate] = Field(default_factory=_default_templates)
    outbox_batch: int = Field(200, ge=1, le=1000)
    outbox_lease_seconds: float = Field(30.0, gt=0)
    claim_seconds: float = Field(60.0, gt=0)
    max_attempts: int = Field(6, ge=1, le=50)
    backoff_base_seconds: float = Field(30.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    outbox_idle_seconds: float = Field(2.0, gt=0)
    # subscribeMessage.send's documented limit is a daily count, not a rate: 30 million
    # calls a day for a mini-program with WeChat Pay, 10 million without ("接口限制 / 次数
    # 限制: 开通支付能力的是3kw/日，没开通的是1kw/日", developers.weixin.qq.com, miniprogram
    # dev api-backend open-api subscribe-message subscribeMessage.send); over it WeChat answers
    # 45009, per-minute overuse 45011, both retried with backoff. 300/s stays under the
    # paid daily count spread evenly (~347/s); the concurrency bounds what one process holds
    # open (WeChatAdapter gives the sends threads of their own).
    outbox_concurrency: int = Field(16, ge=1, le=64)
    outbox_max_per_second: float = Field(300.0, gt=0)
    feed_poll_seconds: float = Field(1.0, gt=0)
    heartbeat_seconds: float = Field(25.0, gt=0)

    @field_validator("templates")
    @classmethod
    def _ids_unique(cls, value: dict[str, PushTemplate]) -> dict[str, PushTemplate]:
        ids = [t.template_id for t in value.values()]
        if len(ids) != len(set(ids)):
            raise ValueError("template ids must be unique")
        return value


def _default_courts() -> list[CourtSettings]:
    return []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MICROCOURT_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    mongodb: MongoSettings = Field(default_factory=MongoSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    wechatpay: WeChatPaySettings = Field(default_factory=WeChatPaySettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    workorders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    admin_password: str = ""
    courts: list[CourtSettings] = Field(default_factory=_default_courts)

    @model_validator(mode="after")
    def _courts_unique(self) -> Settings:
        if not self.courts:
            raise ValueError("at least one court must be configured")
        for attr in ("id", "code"):
            values = [getattr(c, attr) for c in self.courts]
            if len(values) != len(set(values)):
                raise ValueError(f"court {attr}s must be unique")
        return self

    @model_validator(mode="after")
    def _uploads_fit(self) -> Settings:
        # The multipart envelope adds a little to the file itself; Tornado caps the whole body.
        if self.files.max_bytes + UPLOAD_OVERHEAD_BYTES > self.server.max_body_bytes:
            raise ValueError("files.max_bytes must leave 64 KiB under server.max_body_bytes")
        return self

    @model_validator(mode="after")
    def _pay_appid(self) -> Settings:
        # The mini-program pays with the appid it signs in with, unless told otherwise.
        if not self.wechatpay.appid:
            self.wechatpay.appid = self.wechat.appid
        return self

    def court(self, court_id: str) -> CourtSettings | None:
        return next((c for c in self.courts if c.id == court_id), None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file named by MICROCOURT_CONFIG (default: the repository's config.yaml)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("MICROCOURT_CONFIG") or DEFAULT_CONFIG)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" (line {where.line + 1})" if where else ""
            raise ConfigError(f"config file {path} is not valid YAML{line}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        return data


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "config"
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        parts.append(f"{loc}: {item['msg']}{shown}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read config.yaml and the environment; raise ConfigError naming the bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigError(f"invalid setting: {_describe(e)}") from None
