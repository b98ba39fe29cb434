"""Input taken the way people type it, and refusals that say what to send (issue 17)."""

from __future__ import annotations

import pytest

from tests.driver import Driver, MemoryMailer, button_keys
from tests.walks import to_step


@pytest.mark.parametrize(
    "typed", ["5/10/26", "05-10-2026", "5 de octubre de 2026", "5 oct 2026", "5 Oct. 2026"]
)
async def test_a_resolution_date_typed_as_people_write_it(
    user: Driver, mailer: MemoryMailer, typed: str
) -> None:
    await to_step(user, mailer, "res_fecha")
    replies = await user.send(typed)
    assert replies[-1].key == "solicitud.res_autoridad"
    await user.tap("btn.authority_alcalde")
    await user.upload(b"")  # refused, but the date stays: shown back as dd/mm/aaaa
    await user.send("/atras")
    question = (await user.send("/atras"))[-1].plain
    assert "Ahora: 05/10/2026" in question


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("5/10", "Falta el año. Escribe la fecha completa, por ejemplo 15/03/2026."),
        ("31/02/2026", "Esa fecha no existe"),
        ("5 de octubrx de 2026", "Escríbela como 15/03/2026 o «15 de marzo de 2026»"),
        ("5/12/26", "Esa fecha aún no llega"),
    ],
)
async def test_an_ambiguous_or_impossible_date_is_refused_with_an_example(
    user: Driver, mailer: MemoryMailer, typed: str, said: str
) -> None:
    await to_step(user, mailer, "res_fecha")
    error, question = await user.send(typed)
    assert said in error.plain
    assert "15/03/2026" in error.plain
    assert question.key == "solicitud.res_fecha"


@pytest.mark.parametrize("typed", ["Alcalde", "alcaldesa", "ALCALDE(SA)", "Alcalde (sa)"])
async def test_the_authority_typed_with_or_without_accents_case_or_sa(
    user: Driver, mailer: MemoryMailer, typed: str
) -> None:
    await to_step(user, mailer, "res_autoridad")
    replies = await user.send(typed)
    assert replies[-1].key == "solicitud.res_pdf"


@pytest.mark.parametrize("typed", ["Rectora", "ministra", "gobernadora regional"])
async def test_other_authorities_typed_in_either_gender(
    user: Driver, mailer: MemoryMailer, typed: str
) -> None:
    await to_step(user, mailer, "res_autoridad")
    replies = await user.send(typed)
    assert replies[-1].key == "solicitud.res_pdf"


async def test_names_with_digits_are_refused_saying_what_to_send(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "nombres")
    error, question = await user.send("Ana123")
    assert error.key == "errors.name_digits"
    assert question.key == "solicitud.nombres"
    replies = await user.send("Ana María")
    assert replies[-1].key == "solicitud.apellidos"


@pytest.mark.parametrize("typed", ["Muni", "MDSJL", "Muni SJL"])
async def test_an_entity_needs_its_full_name(
    user: Driver, mailer: MemoryMailer, typed: str
) -> None:
    await to_step(user, mailer, "entidad")
    error, _question = await user.send(typed)
    assert error.key == "errors.entity_one_word"
    replies = await user.send("MDSJL Municipalidad Distrital de San Juan de Lurigancho")
    assert replies[-1].key == "solicitud.nombres"


def photo(color: str, size: tuple[int, int] = (60, 80)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


async def test_a_paper_resolution_sent_as_photos_becomes_a_pdf(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "res_pdf")
    assert user.screen.last.key == "solicitud.res_pdf"
    first = await user.upload(photo("white"), name=None, mime="image/jpeg", photo=True)
    assert first[-1].key == "solicitud.foto_recibida"
    assert first[-1].data["count"] == 1
    await user.upload(photo("gray"), name=None, mime="image/jpeg", photo=True)
    shown = (await user.tap("btn.photos_done"))[-1]
    assert shown.key == "solicitud.fotos_pdf"
    assert shown.data["pages"] == 2
    assert shown.document is not None  # the first page, to check it reads well
    assert shown.document["filename"] == "pagina_1.jpg"
    assert button_keys(shown) == ["btn.photos_use", "btn.photos_again"]
    replies = await user.tap("btn.photos_use")
    assert replies[-1].key == "perfiles.justicia"  # on to the profiles
    await user.tap("btn.no")
    await user.tap("btn.me")
    summary = user.screen.last.plain
    assert "(PDF de 2 páginas)" in summary
    await user.tap("btn.confirm_send")
    sent = mailer.sent[-1]
    pdfs = [p for p in sent.iter_attachments() if p.get_content_type() == "application/pdf"]
    import io

    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(pdfs[0].get_content())).pages) == 2


async def test_photos_can_be_sent_again(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "res_pdf")
    await user.upload(photo("white"), name=None, mime="image/jpeg", photo=True)
    await user.tap("btn.photos_done")
    replies = await user.tap("btn.photos_again")
    assert replies[-1].key == "solicitud.res_pdf"
    await user.upload(photo("white", (80, 60)), name=None, mime="image/jpeg", photo=True)
    shown = (await user.tap("btn.photos_done"))[-1]
    assert shown.key == "solicitud.fotos_pdf"
    assert shown.data["pages"] == 1
