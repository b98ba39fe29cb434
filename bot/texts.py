"""Every word the user reads: Jinja2 templates loaded from ``locales/es/*.toml``.

Each TOML file holds tables of templates (``[consent] notice = "..."`` is the key
``consent.notice``); ``datos.toml`` holds data instead (PTE sections, typed words, the
notice version). Templates are written in Telegram's HTML subset and rendered with
autoescape, so a user-provided value such as ``Pérez <Ruiz> & Cía`` shows literally.
Channels without HTML get :func:`to_plain`.

Words that depend on data are data too: ``{{ n | cuenta("día hábil", "días hábiles") }}``
picks the form by Babel's Spanish plural rules ("1 día hábil", "0 días hábiles");
``{{ type | tipo }}`` names a kind of ticket ("consulta") and
``{{ type | concuerda("lo", "la") }}`` agrees with its gender (``datos.toml``, ``[tipos]``).
What a channel can do (delete a message, share a number, edit a card, answer a message) is
the template variable ``canal`` (see :class:`Capabilities`), never the channel's name.
"""

from __future__ import annotations

import html
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel import Locale

from bot import dates, short_forms

if TYPE_CHECKING:
    import jinja2

DATA_FILE = "datos.toml"
SHORT_SUFFIX = "_corto"  # "btn.ticket_corto": the short form of the label "btn.ticket"
_TAG = re.compile(r"<[^>]+>")
_LOCALE = Locale.parse("es_PE")


@dataclass(frozen=True)
class Capabilities:
    """What a channel can do that its texts must say right; templates read it as ``canal``
    (``canal.borra``, ``canal.comparte_numero``, ``canal.edita``, ``canal.cita``,
    ``canal.plataforma``)."""

    deletes_messages: bool = False  # takes back a message the person sent (a password)
    shares_contact: bool = False  # offers a "share my number" button
    edits_messages: bool = False  # a card's buttons change that card in place
    quotes: bool = False  # the person can answer one particular message (a swipe reply)
    # Whose servers carry the messages, for the privacy notice ("" for none but ours).
    carrier: str = ""

    def as_data(self) -> dict[str, bool | str]:
        return {
            "borra": self.deletes_messages,
            "comparte_numero": self.shares_contact,
            "edita": self.edits_messages,
            "cita": self.quotes,
            "plataforma": self.carrier,
        }


# A channel nothing is known of: the texts promise nothing it might not do.
NO_CAPABILITIES = Capabilities()


def plural_form(count: int | float) -> str:
    """Babel's (CLDR) plural category of ``count`` in Spanish: "one", "many" or "other"."""
    return str(_LOCALE.plural_form(abs(count)))


def plural(count: int | float, singular: str, plural_: str) -> str:
    """The word that goes with ``count``: ``plural(1, "día", "días")`` → "día"."""
    return singular if plural_form(count) == "one" else plural_


def locale_dir(language: str = "es") -> Path:
    return Path(str(resources.files("locales").joinpath(language)))


@dataclass(frozen=True)
class Section:
    code: str
    name: str
    note: str = ""
    short: str = ""  # for narrow buttons (the label's short form), when the name is long
    justice_only: bool = False  # only entities of the justice system (Ley 30934)


def _flatten(prefix: str, table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping):
            yield from _flatten(key, value)
        elif isinstance(value, str):
            yield key, value
        else:
            raise ValueError(f"template {key} is not text")


def _as_date(value: date | datetime | str) -> date | datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return value


def _long_date(value: date | datetime | str) -> str:
    moment = _as_date(value)
    return dates.long_date(moment.date() if isinstance(moment, datetime) else moment)


def _short_date(value: date | datetime | str) -> str:
    moment = _as_date(value)
    return dates.short_date(moment.date() if isinstance(moment, datetime) else moment)


def _date_time(value: datetime | str) -> str:
    return dates.date_time(value)


def state_code(text: str) -> str:
    """A ticket state's code from its code or its name: "En atención" → "en_atencion" (a
    name typed in the shell)."""
    plain = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in plain if not unicodedata.combining(c)).replace(" ", "_")


def to_plain(text: str) -> str:
    """Telegram HTML → plain text: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


class Texts:
    """The locale's templates, compiled once; renders to Telegram HTML or plain text."""

    def __init__(self, directory: Path | None = None, *, helpdesk: str = "") -> None:
        directory = directory or locale_dir()
        sources: dict[str, str] = {}
        for path in sorted(directory.glob("*.toml")):
            if path.name == DATA_FILE:
                continue
            with path.open("rb") as handle:
                for key, source in _flatten("", tomllib.load(handle)):
                    if key in sources:
                        raise ValueError(f"template {key} defined twice")
                    sources[key] = source
        with (directory / DATA_FILE).open("rb") as handle:
            self.data: dict[str, Any] = tomllib.load(handle)
        self.sources = sources
        kinds: dict[str, dict[str, str]] = dict(self.data.get("tipos", {}))
        short = self.data.get("formas_cortas", {})
        particles = list(short.get("particulas", []))
        leads = dict(short.get("entidades", {}))
        self._filters: dict[str, Callable[..., Any]] = dict(
            fecha_larga=_long_date,
            fecha=_short_date,
            fecha_hora=_date_time,
            plural=plural,
            cuenta=lambda n, one, other: f"{n} {plural(n, one, other)}",
            tipo=lambda kind: kinds.get(str(kind), kinds["tramite"])["nombre"],
            # A ticket's state as people read it: template ``estado.state_<code>``.
            estado=lambda state: self.label("estado.state_" + str(state), {}),
            concuerda=lambda kind, masculine, feminine: (
                feminine if kinds.get(str(kind), kinds["tramite"])["genero"] == "f" else masculine
            ),
            nombre_corto=lambda nombres, apellidos, limit=20: short_forms.person(
                str(nombres), str(apellidos), particles, limit
            ),
            entidad_corta=lambda name, limit=24: short_forms.entity(str(name), leads, limit),
        )
        notice = self.data["aviso"]
        self._globals: dict[str, Any] = dict(
            helpdesk=helpdesk,
            responsable=notice["responsable"],
            conservacion=notice["conservacion"],
            responsable_corto=notice["responsable_corto"],
            conservacion_corta=notice["conservacion_corta"],
            domicilio=notice["domicilio"],
            banco=notice["banco"],
            autoridad=notice["autoridad"],
            borradores=self.data["borradores"],
            # What a person reads for each channel ("WhatsApp", not "whatsapp").
            canales=self.data.get("canales", {}),
            canal=NO_CAPABILITIES.as_data(),
            comandos=self.data["comandos"],
            secciones_cortas={
                row["name"]: row["short"] for row in self.data["secciones"] if row.get("short")
            },
        )
        self._compiled: dict[str, jinja2.Template] = {}
        self._labels: dict[tuple[str, str], str] = {}

    @cached_property
    def env(self) -> jinja2.Environment:
        """The Jinja2 environment, built when a first text is rendered: Jinja2 is imported
        then, not at start-up (issue 18). Templates are compiled one by one on first use."""
        import jinja2

        class Environment(jinja2.Environment):
            def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
                # A plain dict, not Jinja's ChainMap over the environment's globals: every
                # render copies a template's globals, and reading them through the ChainMap
                # was two thirds of rendering "Paso 2 de 7" (30 us; now 5). The globals are
                # all set before the first template is compiled and never change after.
                return {**self.globals, **(d or {})}

        env = Environment(
            loader=jinja2.DictLoader(self.sources),
            undefined=jinja2.StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.filters.update(self._filters)
        env.globals.update(self._globals)
        return env

    # ------------------------------------------------------------------ data
    @property
    def notice_version(self) -> str:
        return str(self.data["aviso"]["version"])

    @property
    def sections(self) -> list[Section]:
        return [Section(**row) for row in self.data["secciones"]]

    @property
    def command_words(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.data["palabras"]["comandos"].items()}

    @property
    def flow_phrases(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.data["palabras"]["flujos"].items()}

    @property
    def faq(self) -> dict[str, dict[str, Any]]:
        """Common questions: phrases that ask them and, optionally, the flow that helps."""
        return dict(self.data.get("faq", {}))

    def synonyms(self, key: str) -> list[str]:
        """Other ways people type a button's label (``datos.toml``, ``[sinonimos]``)."""
        return list(self.data.get("sinonimos", {}).get(key, []))

    @property
    def command_descriptions(self) -> dict[str, str]:
        return dict(self.data["comandos"])

    # ------------------------------------------------------------- rendering
    def template(self, key: str) -> jinja2.Template:
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self.env.get_template(key)
        return found

    def render(self, key: str, data: Mapping[str, Any]) -> str:
        """Telegram HTML, user values escaped."""
        return self.template(key).render(data).strip()

    def plain(self, key: str, data: Mapping[str, Any]) -> str:
        return to_plain(self.render(key, data))

    def short(self, key: str, data: Mapping[str, Any]) -> str | None:
        """The label's short form (template ``<key>_corto``), for channels whose buttons are
        narrow (WhatsApp: 20 characters, 24 in a list); None when the label has none."""
        short_key = key + SHORT_SUFFIX
        if short_key not in self.sources:
            return None
        return self.label(short_key, data)

    def label(self, key: str, data: Mapping[str, Any]) -> str:
        """A button label as plain text (cached when it takes no data)."""
        if data:
            return self.plain(key, data)
        cached = self._labels.get((key, ""))
        if cached is None:
            cached = self._labels[(key, "")] = self.plain(key, {})
        return cached
