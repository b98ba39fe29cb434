"""Reading inbound mail: quoted history and signatures, commands, automatic mail, settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.mail.parse import desk_number, fold, html_to_text, new_text, parse, parse_command
from bot.settings import DEFAULT_DESK_TICKET_PATTERN, Settings
from tests.bot.imap_harness import mail

GMAIL = """Gracias, ya lo revisamos.

El mié, 2 dic 2026 a las 10:15, Asistente PTE (<asistente@pcm.gob.pe>)
escribió:

> Solicitud de accesos al PTE
> Trámite: PTE-2026-000001
"""

OUTLOOK = """Se atendió la solicitud.

Saludos cordiales,

________________________________
De: Asistente PTE <asistente@pcm.gob.pe>
Enviado: miércoles, 2 de diciembre de 2026 10:15
Para: Mesa de Ayuda <mesadeayuda@gobiernodigital.gob.pe>
Asunto: Solicitud de accesos al PTE [PTE-2026-000001]
"""

OUTLOOK_NO_RULE = """Revisado.

De: Asistente PTE <asistente@pcm.gob.pe>
Fecha: miércoles, 2 de diciembre de 2026, 10:15
Para: mesadeayuda@gobiernodigital.gob.pe
"""

ZIMBRA = """Falta la firma del titular.

----- Mensaje original -----
De: "Asistente PTE" <asistente@pcm.gob.pe>
Para: "Mesa de Ayuda" <mesadeayuda@gobiernodigital.gob.pe>
Enviados: Miércoles, 2 de Diciembre 2026 10:15:00
"""

SIGNED = """Te escribo para confirmar.
--
Ana Torres
Especialista, Mesa de ayuda PTE
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (GMAIL, "Gracias, ya lo revisamos."),
        (OUTLOOK, "Se atendió la solicitud.\n\nSaludos cordiales,"),
        (OUTLOOK_NO_RULE, "Revisado."),
        (ZIMBRA, "Falta la firma del titular."),
        (SIGNED, "Te escribo para confirmar."),
        ("Listo.\n\nEnviado desde mi iPhone", "Listo."),
        ("Hola\n> citado\n> más", "Hola"),
    ],
    ids=["gmail", "outlook", "outlook-no-rule", "zimbra", "signature", "phone", "quoted"],
)
def test_new_text_drops_quoted_history_and_signature(body: str, expected: str) -> None:
    assert new_text(body) == expected


def test_a_sentence_of_the_writer_ending_in_escribio_is_kept() -> None:
    body = "El responsable escribió:\nque ya envió la resolución."
    assert new_text(body) == body


def test_html_only_mail_is_read_as_text_without_the_quote() -> None:
    markup = (
        "<html><head><style>p{}</style></head><body><p>Se observa el <b>PDF</b>.</p>"
        "<blockquote>Solicitud anterior</blockquote></body></html>"
    )
    assert new_text(html_to_text(markup)) == "Se observa el PDF ."


@pytest.mark.parametrize(
    ("first_line", "name", "part", "text"),
    [
        ("#en-atencion", "en-atencion", None, ""),
        ("#En Atención", "en-atencion", None, ""),
        ("#EN_ATENCION lo veo", "en-atencion", None, "lo veo"),
        ("#observado Resolución falta la firma", "observado", "resolucion", "falta la firma"),
        ("#Observado: otro ¿Cuál es el RUC?", "observado", "otro", "¿Cuál es el RUC?"),
        ("#atendido", "atendido", None, ""),
        ("#ATENDIDO Te enviamos los accesos.", "atendido", None, "Te enviamos los accesos."),
        ("#cerrado", "cerrado", None, ""),
        ("#cerrar", "", None, "#cerrar"),
    ],
)
def test_commands_ignore_case_and_accents(
    first_line: str, name: str, part: str | None, text: str
) -> None:
    command = parse_command(first_line)
    assert command is not None
    assert (command.name, command.part, command.text) == (name, part, text)


def test_the_lines_after_a_command_are_its_text() -> None:
    command = parse_command("#observado perfiles\nFalta la sección de Personal.\nGracias")
    assert command is not None
    assert command.text == "Falta la sección de Personal.\nGracias"


@pytest.mark.parametrize("body", ["Hola, #en-atencion", "#123456 es su número", "", "# "])
def test_what_is_not_a_command(body: str) -> None:
    assert parse_command(body) is None


def test_fold() -> None:
    assert fold("#Observado RESOLUCIÓN") == "#observado resolucion"


@pytest.mark.parametrize(
    ("subject", "text", "found"),
    [
        ("[#123456] Recibido", "", "123456"),
        ("Recibido", "Se creó el Ticket#1234567 para su pedido", "1234567"),
        ("Ticket N° 445566 registrado", "", "445566"),
        ("Re: Solicitud [PTE-2026-000001]", "Gracias", None),
    ],
)
def test_the_default_desk_pattern(subject: str, text: str, found: str | None) -> None:
    assert desk_number(re.compile(DEFAULT_DESK_TICKET_PATTERN), subject, text) == found


@pytest.mark.parametrize(
    ("headers", "sender", "kind"),
    [
        ({"Auto-Submitted": "auto-replied"}, "ana@mesa.gob.pe", "auto_reply"),
        ({"Auto-Submitted": "no"}, "ana@mesa.gob.pe", None),
        ({"X-Autoreply": "yes"}, "ana@mesa.gob.pe", "auto_reply"),
        ({"Precedence": "bulk"}, "ana@mesa.gob.pe", "auto_reply"),
        ({"X-Auto-Response-Suppress": "All"}, "ana@mesa.gob.pe", "auto_reply"),
        ({}, "MAILER-DAEMON@pcm.gob.pe", "bounce"),
        ({"X-Failed-Recipients": "x@y.pe"}, "postmaestro@pcm.gob.pe", "bounce"),
        ({}, "ana@mesa.gob.pe", None),
    ],
)
def test_automatic_mail_is_recognised(
    headers: dict[str, str], sender: str, kind: str | None
) -> None:
    assert parse(mail(sender, "Asunto", "Texto", headers=headers)).automatic == kind


def test_parse_reads_threading_tag_and_attachments() -> None:
    raw = mail(
        "Ana <ANA@Mesa.gob.pe>",
        "RE: Consulta PTE – Municipalidad [pte-2026-000042]",
        "Texto",
        cc="responsable@munisjl.gob.pe",
        in_reply_to="<abc@pcm.gob.pe>",
        attachments=[("a.pdf", b"%PDF-1.4", "application/pdf")],
    )
    parsed = parse(raw)
    assert parsed.sender == "ana@mesa.gob.pe"
    assert parsed.ticket_tag == "PTE-2026-000042"
    assert parsed.in_reply_to == ("<abc@pcm.gob.pe>",)
    assert "responsable@munisjl.gob.pe" in parsed.recipients
    assert [f.filename for f in parsed.files] == ["a.pdf"]


def test_plain_imap_is_refused_for_a_remote_host(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="loopback"):
        Settings(  # type: ignore[call-arg]
            data_dir=tmp_path, imap_host="mail.pcm.gob.pe", imap_security="none", _env_file=None
        )
    local = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path, imap_host="127.0.0.1", imap_security="none", _env_file=None
    )
    assert local.imap_port == 993


def test_staff_emails_are_addresses_or_domains(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path, staff_emails="Ana@Mesa.gob.pe; @soporte.gob.pe,", _env_file=None
    )
    assert settings.staff_emails == frozenset({"ana@mesa.gob.pe", "@soporte.gob.pe"})


def test_a_desk_pattern_without_a_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="one group"):
        Settings(  # type: ignore[call-arg]
            data_dir=tmp_path, desk_ticket_pattern=r"Ticket#\d+", _env_file=None
        )


@pytest.mark.parametrize(
    ("results", "forged"),
    [
        (None, False),
        ("mx.pcm.gob.pe; spf=pass dkim=pass dmarc=pass", False),
        ("mx.pcm.gob.pe; dmarc=fail (p=none) header.from=mesa.gob.pe", True),
        ("mx.pcm.gob.pe; spf=fail smtp.mailfrom=mesa.gob.pe; dkim=none", True),
        ("mx.pcm.gob.pe; spf=fail smtp.mailfrom=mesa.gob.pe; dkim=pass", False),
    ],
)
def test_a_sender_the_server_could_not_authenticate(results: str | None, forged: bool) -> None:
    headers = {"Authentication-Results": results} if results else {}
    assert (
        parse(mail("ana@mesa.gob.pe", "Asunto", "Texto", headers=headers)).unauthenticated
        is forged
    )
