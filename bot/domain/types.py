"""Types the domain, the desk and the application share, kept apart so none imports another
for them (and nothing below the application imports :mod:`bot.app`).

* :class:`Services` — the fixed part of what flows may ask (notice version, sections...).
* :class:`Who` — who acts in a turn (person, identity, chat); built by the application.
* :class:`Submitted` — what opening a ticket gives back to the flow.
* :class:`Context` — what the desk, the mail desk and the jobs read of the application: the
  application object satisfies it structurally, a test may pass anything that has these
  attributes. Domain functions that need one thing (a calendar) take that thing instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.delivery.mail_outbox import MailOutbox
    from bot.domain.calendar import BusinessCalendar
    from bot.domain.file_store import FileStore
    from bot.settings import Settings
    from bot.store.database import Store
    from bot.texts import Section, Texts
    from conversations.events import Document


@dataclass
class Services:
    """What flows may use besides their own state (narrow, read-mostly)."""

    notice_version: str
    sections: list[Section]
    helpdesk_email: str
    local_outbox: str | None  # where mail is written when no SMTP server is configured


@dataclass(frozen=True)
class Submitted:
    number: str
    due: date
    business_days: int
    formato: Document | None


@dataclass(frozen=True)
class Who:
    person_id: int
    identity_id: int
    channel: str
    chat_id: str
    is_staff: bool = False
    local: bool = False  # writing at the machine the assistant runs on (the terminal chat)


class Context(Protocol):
    """The application's parts a desk action, a mail or a job may use."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> Store: ...
    @property
    def texts(self) -> Texts: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def files(self) -> FileStore: ...
    @property
    def calendar(self) -> BusinessCalendar: ...
    @property
    def mail(self) -> MailOutbox: ...
    @property
    def staff(self) -> dict[str, frozenset[str]]: ...
    @property
    def services(self) -> Services: ...
