"""Rendering for WhatsApp: Telegram HTML to WhatsApp markup, and every message within limits."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp_render import (
    BODY_LIMIT,
    SHARE_PHONE,
    TEXT_LIMIT,
    pages_of,
    plan,
    shorten,
    split_text,
    to_whatsapp,
)
from bot.delivery.payload import Button, Rendered
from bot.texts import Texts

TEXTS = Texts(helpdesk="mesadeayuda@gobiernodigital.gob.pe")


def rendered(
    html: str,
    labels: list[str] | None = None,
    *,
    document: dict[str, str] | None = None,
    request_contact: bool = False,
) -> Rendered:
    buttons = [[Button(label, f"7:c{i}")] for i, label in enumerate(labels or [])]
    return Rendered(html, buttons, None, document, request_contact)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>Paso</b> uno", "*Paso* uno"),
        ("<b>Entidad: </b>Pérez &lt;Ruiz&gt; &amp; Cía", "*Entidad:* Pérez <Ruiz> & Cía"),
        ("<i>Paso 3 de 15</i>", "_Paso 3 de 15_"),
        ("<s>no</s> <u>sí</u> <code>PTE-2026-000001</code>", "~no~ sí PTE-2026-000001"),
        (
            '<a href="https://www.gob.pe/x?a=1&amp;b=2">gob.pe</a>',
            "gob.pe (https://www.gob.pe/x?a=1&b=2)",
        ),
        ('<a href="https://gob.pe">https://gob.pe</a>', "https://gob.pe"),
        ("<blockquote>dijo\nesto</blockquote>", "> dijo\n> esto"),
    ],
)
def test_telegram_html_becomes_whatsapp_markup(html: str, text: str) -> None:
    assert to_whatsapp(html) == text


def test_long_text_is_split_at_paragraphs_within_the_limit() -> None:
    paragraph = "palabra " * 100
    text = "\n\n".join([paragraph.strip()] * 12)
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(len(p) <= TEXT_LIMIT for p in pieces)
    assert "\n\n".join(pieces) == text


def test_three_short_choices_are_buttons_more_are_a_list() -> None:
    [buttons] = plan(TEXTS, rendered("¿Aceptas?", ["Acepto", "No acepto"]), 1)
    assert buttons["interactive"]["type"] == "button"
    [listed] = plan(TEXTS, rendered("¿Cuál?", ["a", "b", "c", "d"]), 1)
    assert listed["interactive"]["type"] == "list"
    # a title over 20 characters does not fit a button: a list instead
    [long] = plan(TEXTS, rendered("¿Cuál?", ["Una opción de veintiuno"]), 1)
    assert long["interactive"]["type"] == "list"


def test_a_long_body_with_choices_goes_first_as_text() -> None:
    messages = plan(TEXTS, rendered("x" * (BODY_LIMIT + 1), ["Sí", "No"]), 1)
    assert [m["type"] for m in messages] == ["text", "interactive"]
    assert messages[1]["interactive"]["body"]["text"] == "Elige una opción:"


def test_pages_hold_at_most_ten_rows_and_reach_every_choice() -> None:
    labels = [f"Opción número {i:02d} con un nombre largo" for i in range(25)]
    pages = pages_of([object()] * 25)  # type: ignore[list-item]
    assert [len(p) for p in pages] == [9, 9, 7]
    seen: list[str] = []
    for page in range(3):
        [message] = plan(TEXTS, rendered("¿Cuál?", labels), 42, page)
        rows = message["interactive"]["action"]["sections"][0]["rows"]
        assert len(rows) <= 10
        assert all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)
        more = [r for r in rows if r["id"].startswith("wa:more:")]
        assert [r["id"] for r in more] == ([f"wa:more:42:{page + 1}"] if page < 2 else [])
        seen += [r["description"] for r in rows if not r["id"].startswith("wa:")]
    assert seen == labels
    assert plan(TEXTS, rendered("¿Cuál?", labels), 42, 3) == []


def test_the_share_number_question_offers_whatsapps_own_button() -> None:
    question = rendered("¿Cuál es tu <b>celular</b>?", [], request_contact=True)
    [message] = plan(TEXTS, question, 1)
    [button] = message["interactive"]["action"]["buttons"]
    assert button["reply"] == {"id": SHARE_PHONE, "title": "Compartir mi número"}


def test_a_document_goes_with_its_caption() -> None:
    doc = {"sha256": "ab" * 32, "filename": "Formato.xlsx", "mime": "application/x"}
    [message] = plan(TEXTS, rendered("Tu <b>Formato</b>", document=doc), 1)
    assert message["document"]["caption"] == "Tu *Formato*"
    assert message["document"]["filename"] == "Formato.xlsx"


def test_a_short_form_makes_a_button_and_a_list_row_keeps_the_whole_label() -> None:
    long = "María del Carmen Fernández Quispe"
    choices = [Button("Yo", "7:me"), Button(long, "7:p0", "María Fernández")]
    [buttons] = plan(TEXTS, Rendered("¿Quién?", [choices], None, None, False), 1)
    titles = [b["reply"]["title"] for b in buttons["interactive"]["action"]["buttons"]]
    assert titles == ["Yo", "María Fernández"]

    more = [*choices, Button("Otra persona", "7:o"), Button("No aplica", "7:n")]
    [listed] = plan(TEXTS, Rendered("¿Quién?", [more], None, None, False), 1)
    rows = listed["interactive"]["action"]["sections"][0]["rows"]
    assert rows[1] == {"id": "7:p0", "title": "María Fernández", "description": long}
    assert "description" not in rows[0]


def test_two_choices_that_would_read_the_same_are_a_list() -> None:
    same = [Button("Luis Quispe Mamani Torres", "7:p0", "Luis Quispe")]
    same.append(Button("Luis Quispe Rojas Torres", "7:p1", "Luis Quispe"))
    [message] = plan(TEXTS, Rendered("¿Quién?", [same], None, None, False), 1)
    assert message["interactive"]["type"] == "list"


def test_a_label_is_cut_at_a_words_end() -> None:
    assert shorten("Municipalidad Distrital de San Juan de Lurigancho", 24) == (
        "Municipalidad Distrital…"
    )
    assert shorten("Supercalifragilisticoespialidoso", 10) == "Supercali…"


@pytest.mark.parametrize(
    ("nombres", "apellidos", "short"),
    [
        ("María del Carmen", "Fernández Quispe", "María Fernández"),
        ("Luis", "de la Cruz Pérez", "Luis de la Cruz"),
        ("Maximiliano José", "Fernández-Castañeda Ruiz", "M. Fernández-Castañeda"),
    ],
)
def test_a_person_is_named_by_a_first_name_and_surname(
    nombres: str, apellidos: str, short: str
) -> None:
    assert TEXTS.short(
        "btn.person", {"name": "x", "nombres": nombres, "apellidos": apellidos}
    ) == (short)


def test_an_entity_keeps_its_own_name() -> None:
    name = "Municipalidad Distrital de San Juan de Lurigancho"
    assert TEXTS.short("btn.entity_same", {"name": name}) == "San Juan de Lurigancho"
    assert TEXTS.short("btn.entity_same", {"name": "Municipalidad Distrital de Ate"}) == "MD Ate"
    assert TEXTS.short("btn.entity_same", {"name": "Poder Judicial"}) == "Poder Judicial"
