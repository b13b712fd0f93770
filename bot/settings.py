"""Typed settings read from the environment (and an optional ``.env`` file)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_COMMUNITY_FILE = Path(__file__).parent / "demo" / "community.yaml"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/bot.db"
SUPPORTED_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
# BotFather tokens look like "123456789:AAE...". We only check the shape: the server decides
# whether a token is valid, but a pasted URL or a stray quote should fail before start-up.
_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,200}$")
# Telegram's secret_token: 1-256 characters, only A-Z, a-z, 0-9, _ and -.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class SettingsError(Exception):
    """A setting is wrong; the message names it and is fit to print as one line."""


class Settings(BaseSettings):
    """Everything the process reads from its environment. Names are part of the interface."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    TELEGRAM_API_BASE_URL: str | None = None
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    COMMUNITY_CONFIG: Path = DEMO_COMMUNITY_FILE
    WEB_HOST: str = "127.0.0.1"
    WEB_PORT: int = Field(default=8080, ge=0, le=65535)
    LOG_LEVEL: str = "INFO"
    # "text" (one readable line) or "json" (one object per line, for a log collector).
    LOG_FORMAT: str = "text"
    # Mark the web admin's cookies Secure (only sent over HTTPS). Set it when a reverse proxy
    # terminates TLS in front of the bot; requests that arrive over HTTPS get it anyway.
    WEB_SECURE_COOKIES: bool = False
    # Telegram's sending limits (a test server or a benchmark may change them).
    SEND_GROUP_PER_MINUTE: int = Field(default=20, ge=1, le=100_000)
    SEND_CHAT_PER_SECOND: int = Field(default=1, ge=1, le=100_000)
    SEND_GLOBAL_PER_SECOND: int = Field(default=30, ge=1, le=1_000_000)
    # Webhook mode: Telegram posts updates to this public URL (a reverse proxy forwards its
    # path to WEB_HOST:WEB_PORT); unset, the bot polls. The secret comes back in a header on
    # every post, and a post without it is refused.
    WEBHOOK_URL: str | None = None
    WEBHOOK_SECRET: SecretStr | None = None

    @field_validator("TELEGRAM_BOT_TOKEN", mode="before")
    @classmethod
    def _check_token(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not _TOKEN_RE.match(value.strip()):
            raise ValueError("malformed bot token: expected the form '123456789:AbC-dEf_...'")
        return value.strip()

    @field_validator("TELEGRAM_API_BASE_URL", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value.strip()):
            raise ValueError("expected an http(s) URL such as http://127.0.0.1:8081/bot")
        return value.strip()

    @field_validator("WEBHOOK_URL", mode="before")
    @classmethod
    def _check_webhook_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise ValueError("expected an http(s) URL such as https://bot.example.org/telegram")
        return value.strip()

    @field_validator("WEBHOOK_SECRET", mode="before")
    @classmethod
    def _check_webhook_secret(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not _SECRET_RE.match(value.strip()):
            raise ValueError("expected 1-256 characters, only A-Z, a-z, 0-9, _ and -")
        return value.strip()

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.WEBHOOK_URL and self.WEBHOOK_SECRET is None:
            raise ValueError(
                "WEBHOOK_SECRET: required when WEBHOOK_URL is set "
                "(1-256 characters, only A-Z, a-z, 0-9, _ and -)"
            )
        return self

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_db_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_DB_SCHEMES:
            raise ValueError(
                f"unknown database scheme {scheme or value!r}; "
                f"use one of {', '.join(s + '://' for s in SUPPORTED_DB_SCHEMES)}"
            )
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("LOG_FORMAT")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value.lower() not in {"text", "json"}:
            raise ValueError("expected text or json")
        return value.lower()

    @property
    def webhook_path(self) -> str | None:
        """The path the webhook is served at (that of ``WEBHOOK_URL``), or None to poll."""
        if not self.WEBHOOK_URL:
            return None
        return "/" + self.WEBHOOK_URL.split("://", 1)[1].partition("/")[2]

    @property
    def sandbox(self) -> bool:
        """True when no token is set: the bot talks to the local sandbox server."""
        return self.TELEGRAM_BOT_TOKEN is None


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line that names the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not name:  # a check across settings names the one to fix first: "NAME: why"
            name, _, message = message.partition(": ")
        raise SettingsError(f"setting {name}: {message}") from None
