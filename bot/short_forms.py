"""Short forms of names, for labels that must fit a narrow button (WhatsApp: 20 characters on
a reply button, 24 on a list row). They keep what tells one name from another: a person's
first given name and first surname, an entity's own name after its usual lead words.

The words come from the locale's data file (``datos.toml``: ``[formas_cortas]``), and the
filters are registered in :class:`bot.texts.Texts` as ``nombre_corto`` and
``entidad_corta``. A form still too long is cut by the channel at a word's end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def first_name(words: str, particles: Iterable[str]) -> str:
    """ "María del Carmen" → "María"; "de la Cruz Pérez" → "de la Cruz" (a surname's
    particles go with the word they introduce)."""
    lowered = {p.casefold() for p in particles}
    taken: list[str] = []
    for word in words.split():
        taken.append(word)
        if word.casefold() not in lowered:
            break
    return " ".join(taken)


def person(nombres: str, apellidos: str, particles: Iterable[str], limit: int) -> str:
    """ "María del Carmen", "Fernández Quispe" → "María Fernández"; an initial when even
    that is longer than ``limit`` ("M. Fernández-Castañeda")."""
    particles = list(particles)
    given, surname = first_name(nombres, particles), first_name(apellidos, particles)
    short = f"{given} {surname}".strip()
    if len(short) > limit and given and surname:
        short = f"{given[0]}. {surname}"
    return short


def entity(name: str, leads: Mapping[str, str], limit: int) -> str:
    """ "Municipalidad Distrital de San Juan de Lurigancho" → "San Juan de Lurigancho", or
    with the lead abbreviated ("MD Ate") when that fits ``limit``."""
    text = " ".join(name.split())
    for lead, abbreviation in sorted(leads.items(), key=lambda item: -len(item[0])):
        if text.casefold().startswith(lead.casefold() + " "):
            rest = text[len(lead) + 1 :]
            abbreviated = f"{abbreviation} {rest}"
            return abbreviated if len(abbreviated) <= limit else rest
    return text
