"""One typed Settings object, read from the environment and a ``.env`` file.

Names are those of ``operations.md``; operators and tests rely on them. Tests build
``Settings(...)`` directly instead of editing ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

# The desk's ticketing system's number in its acknowledgements: "Ticket#1234567",
# "Ticket #1234567", "[#123456]", "Ticket N° 123456". Group 1 is the number.
DEFAULT_DESK_TICKET_PATTERN = (
    r"(?i)(?:\bticket\s*(?:#|n\.?\s*[°º]|nro\.?|n[uú]mero)\s*|\[#)(\d{3,12})"
)


def _env(name: str) -> AliasChoices:
    # validation_alias for the environment, and the field name itself for Settings(...) in code.
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias=_env("TELEGRAM_BASE_URL")
    )
    telegram_base_file_url: str = Field(
        "https://api.telegram.org/file/bot", validation_alias=_env("TELEGRAM_BASE_FILE_URL")
    )
    telegram_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    data_dir: Path = Field(Path("data"), validation_alias=_env("PTEBOT_DATA_DIR"))
    staff_telegram_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), validation_alias=_env("PTEBOT_STAFF_TELEGRAM_IDS")
    )
    staff_chat_id: int | None = Field(None, validation_alias=_env("PTEBOT_STAFF_CHAT_ID"))
    helpdesk_email: str = Field(
        "mesadeayuda@gobiernodigital.gob.pe", validation_alias=_env("PTEBOT_HELPDESK_EMAIL")
    )
    smtp_host: str | None = Field(None, validation_alias=_env("PTEBOT_SMTP_HOST"))
    smtp_port: int = Field(587, validation_alias=_env("PTEBOT_SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=_env("PTEBOT_SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("PTEBOT_SMTP_PASSWORD"))
    smtp_starttls: bool = Field(True, validation_alias=_env("PTEBOT_SMTP_STARTTLS"))
    mail_from: str = Field("asistente-pte@localhost", validation_alias=_env("PTEBOT_MAIL_FROM"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("PTEBOT_HTTP_HOST"))
    http_port: int = Field(8080, validation_alias=_env("PTEBOT_HTTP_PORT"))
    # The edge of `serve` (see bot/channels/edge.py): open connections at most (kept below the open
    # files limit), and unauthenticated (WhatsApp) bodies read at once before 503.
    http_max_connections: int = Field(
        1000, ge=16, validation_alias=_env("PTEBOT_HTTP_MAX_CONNECTIONS")
    )
    http_max_unverified: int = Field(16, ge=1, validation_alias=_env("PTEBOT_HTTP_MAX_UNVERIFIED"))
    public_url: str | None = Field(None, validation_alias=_env("PTEBOT_PUBLIC_URL"))
    whatsapp_token: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_TOKEN"))
    whatsapp_phone_number_id: str | None = Field(
        None, validation_alias=_env("WHATSAPP_PHONE_NUMBER_ID")
    )
    whatsapp_app_secret: SecretStr | None = Field(
        None, validation_alias=_env("WHATSAPP_APP_SECRET")
    )
    whatsapp_verify_token: SecretStr | None = Field(
        None, validation_alias=_env("WHATSAPP_VERIFY_TOKEN")
    )
    whatsapp_graph_url: str = Field(
        "https://graph.facebook.com/v21.0", validation_alias=_env("WHATSAPP_GRAPH_URL")
    )
    # An approved template sent when a notice finds the 24-hour window closed ("" = none:
    # the notice just waits until the officer writes again).
    whatsapp_template_name: str = Field(
        "aviso_tramite", validation_alias=_env("WHATSAPP_TEMPLATE_NAME")
    )
    whatsapp_template_language: str = Field(
        "es", validation_alias=_env("WHATSAPP_TEMPLATE_LANGUAGE")
    )
    staff_whatsapp_ids: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=_env("PTEBOT_STAFF_WHATSAPP_IDS")
    )
    # Display names of staff, "<chat id>=<name>" comma-separated: cards, history and the CSV
    # say who has a ticket and who acted (the chat id when no name is given).
    staff_names: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("PTEBOT_STAFF_NAMES")
    )
    # Inbound mail (IMAP): the mailbox where desk replies, acknowledgements and officers'
    # replies arrive. Off while the host is unset.
    imap_host: str | None = Field(None, validation_alias=_env("PTEBOT_IMAP_HOST"))
    imap_port: int = Field(993, validation_alias=_env("PTEBOT_IMAP_PORT"))
    imap_username: str | None = Field(None, validation_alias=_env("PTEBOT_IMAP_USERNAME"))
    imap_password: SecretStr | None = Field(None, validation_alias=_env("PTEBOT_IMAP_PASSWORD"))
    imap_security: Literal["ssl", "starttls", "none"] = Field(
        "ssl", validation_alias=_env("PTEBOT_IMAP_SECURITY")
    )
    imap_folder: str = Field("INBOX", validation_alias=_env("PTEBOT_IMAP_FOLDER"))
    imap_review_folder: str = Field("Revisar", validation_alias=_env("PTEBOT_IMAP_REVIEW_FOLDER"))
    # Seconds between checks when the server offers no IDLE.
    imap_poll_seconds: float = Field(60.0, gt=0, validation_alias=_env("PTEBOT_IMAP_POLL_SECONDS"))
    # A sender with more mails than this in one hour is held in the review folder.
    imap_sender_limit: int = Field(30, ge=1, validation_alias=_env("PTEBOT_IMAP_SENDER_LIMIT"))
    staff_emails: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=_env("PTEBOT_STAFF_EMAILS")
    )
    desk_ticket_pattern: str = Field(
        DEFAULT_DESK_TICKET_PATTERN, validation_alias=_env("PTEBOT_DESK_TICKET_PATTERN")
    )
    log_level: str = Field("INFO", validation_alias=_env("PTEBOT_LOG_LEVEL"))
    # Telegram's flood limits: messages per second for the whole bot, per minute per group.
    telegram_flood_limit: float = Field(
        30.0, gt=0, validation_alias=_env("PTEBOT_TELEGRAM_FLOOD_LIMIT")
    )
    telegram_group_limit: int = Field(
        20, ge=1, validation_alias=_env("PTEBOT_TELEGRAM_GROUP_LIMIT")
    )

    @field_validator("staff_telegram_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(
                int(part) for part in value.replace(";", ",").split(",") if part.strip()
            )
        return value

    @field_validator("staff_whatsapp_ids", mode="before")
    @classmethod
    def _split_numbers(cls, value: object) -> object:
        # WhatsApp ids are the number's digits: "+51 987 654 321" is "51987654321".
        if isinstance(value, str):
            parts = value.replace(";", ",").split(",")
            return frozenset(
                "".join(ch for ch in part if ch.isdigit()) for part in parts if part.strip()
            )
        return value

    @field_validator("staff_names", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        # "123456789=Ana Torres, 51987654321=Luis Rojas"
        if isinstance(value, str):
            names: dict[str, str] = {}
            for part in value.replace(";", ",").split(","):
                chat, sep, name = part.partition("=")
                if not sep or not chat.strip() or not name.strip():
                    if part.strip():
                        raise ValueError(f"expected <chat id>=<name>, got {part.strip()!r}")
                    continue
                key = chat.strip()
                digits = "".join(ch for ch in key if ch not in "+ -")
                names[digits if digits.isdigit() else key] = " ".join(name.split())
            return names
        return value

    @field_validator("staff_emails", mode="before")
    @classmethod
    def _split_emails(cls, value: object) -> object:
        # "ana@mesa.gob.pe, @gobiernodigital.gob.pe": addresses or whole domains, any case.
        if isinstance(value, str):
            parts = value.replace(";", ",").split(",")
            return frozenset(part.strip().lower() for part in parts if part.strip())
        return value

    @field_validator("desk_ticket_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        if re.compile(value).groups < 1:
            raise ValueError("the pattern needs one group: the number")
        return value

    @model_validator(mode="after")
    def _plain_imap_only_on_loopback(self) -> Settings:
        # A password in clear text is acceptable only to this machine (tests, a local relay).
        if self.imap_host and self.imap_security == "none" and not is_loopback(self.imap_host):
            raise ValueError("PTEBOT_IMAP_SECURITY=none is accepted only for a loopback host")
        return self

    @property
    def database_path(self) -> Path:
        return self.data_dir / "ptebot.sqlite3"

    def require(self, *names: str) -> None:
        """Stop with one line naming the first missing setting (by its variable name)."""
        for name in names:
            field = _FIELD_BY_ENV[name]
            if getattr(self, field) in (None, ""):
                raise ConfigError(f"missing setting {name} (see README, Configure)")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_FIELD_BY_ENV = {
    str(info.validation_alias.choices[0]): field
    for field, info in Settings.model_fields.items()
    if isinstance(info.validation_alias, AliasChoices)
}


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        name = next(
            (env for env, field in _FIELD_BY_ENV.items() if field == where or env == where), where
        )
        raise ConfigError(f"invalid setting {name}: {first['msg']}") from error
