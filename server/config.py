"""Settings: config.yaml holds every setting with its default; MICROCOURT_* variables override.

Nested settings are reached with ``__``: ``MICROCOURT_MONGODB__URI``. The first admin's
password is the one flat exception the deployment docs name: ``MICROCOURT_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yaml"


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


class MongoSettings(_Section):
    uri: str = ""
    database: str = Field("microcourt", pattern=r"^[A-Za-z0-9_-]{1,60}$")
    embedded_command: str = "secantusd-py"
    startup_timeout_seconds: float = Field(30.0, gt=0)

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


class SecuritySettings(_Section):
    token_secret: str = ""
    data_key: str = ""
    hash_key: str = ""
    token_ttl_seconds: int = Field(7 * 24 * 3600, ge=300)
    revocation_poll_seconds: float = Field(15.0, gt=0, le=60)
    user_cache_seconds: float = Field(30.0, ge=0, le=60)
    login_attempts_per_minute: int = Field(20, gt=0)


class FixedFees(_Section):
    """Each court's choice inside the ranges of 《诉讼费用交纳办法》 Art. 13, in fen."""

    divorce_fen: int = Field(5_000, ge=5_000, le=30_000)
    personality_rights_fen: int = Field(10_000, ge=10_000, le=50_000)
    non_property_fen: int = Field(5_000, ge=5_000, le=10_000)
    ip_no_amount_fen: int = Field(50_000, ge=50_000, le=100_000)
    execution_no_amount_fen: int = Field(5_000, ge=5_000, le=50_000)


class WorkOrderDeadlines(_Section):
    assign_working_hours: float = Field(1, gt=0)
    first_reply_working_days: int = Field(1, gt=0)
    close_working_days: int = Field(5, gt=0)


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
    extra_holidays: list[str] = Field(default_factory=list)
    extra_workdays: list[str] = Field(default_factory=list)


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

    @field_validator("code")
    @classmethod
    def _court_code(cls, value: str) -> str:
        # 案号 court codes are a province abbreviation plus digits, e.g. 京0105.
        if not re.fullmatch(r"[\u4e00-\u9fff][0-9]{0,6}", value):
            raise ValueError("court code must be a province character followed by digits")
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
    security: SecuritySettings = Field(default_factory=SecuritySettings)
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
