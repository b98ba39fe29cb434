"""The Formato de Registro de Perfiles as an .xlsx workbook, built with openpyxl.

The help desk's blank form is not public, so the assistant produces its own: one sheet with
the entity, the PTE responsible, the designating resolution and one row per PTE section with
the person in charge of it. A profile change's Formato has a "Cambio" column: each row it
adds says "dar de alta", each row it removes "dar de baja" (see :mod:`bot.domain.registry`).

Every value is written as a text cell with the text number format ("@"): DNIs, RUCs and
phone numbers keep their leading zeros, and a value that starts with "=" stays a literal
string instead of becoming a formula (openpyxl otherwise turns such strings into formulas,
the classic spreadsheet injection). Characters the XLSX format cannot hold (C0 controls) are
dropped. "Generado el" is Lima time (the instant itself is stored in UTC). The output is
deterministic apart from the timestamps openpyxl itself writes (zip
entry times and ``dcterms:modified``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

from bot import dates

# Spanish labels of the form: they are the document's data (the help desk reads Spanish),
# not interface text, so they live here rather than in locales/.
LABELS: Final[dict[str, str]] = {
    "title": "Formato de Registro de Perfiles del Portal de Transparencia Estándar",
    "ticket": "Trámite",
    "generated_at": "Generado el",
    "entity_block": "Datos de la entidad",
    "entity_name": "Entidad",
    "ruc": "RUC",
    "justice": "Sistema de justicia (Ley 30934)",
    "justice_yes": "Sí",
    "justice_no": "No: «Información focalizada» no aplica",
    "responsible_block": "Responsable del Portal de Transparencia Estándar",
    "resolution_block": "Resolución de designación",
    "resolution_number": "Número",
    "resolution_date": "Fecha",
    "resolution_authority": "Emitida por",
    "profiles_block": "Perfiles por sección",
    "section": "Sección",
    "nombres": "Nombres",
    "apellidos": "Apellidos",
    "dni": "DNI",
    "cargo": "Cargo",
    "email": "Correo institucional",
    "phone": "Celular",
    "change": "Cambio",
    "change_alta": "dar de alta",
    "change_baja": "dar de baja",
}
_PERSON_COLUMNS: Final = ("nombres", "apellidos", "dni", "cargo", "email", "phone")
SHEET_TITLE: Final = "Formato"
FILENAME_PREFIX: Final = "Formato_Perfiles"

_TEXT_FORMAT: Final = "@"
_DATE_FORMAT: Final = "%d/%m/%Y"
_MIN_WIDTH: Final = 10
_MAX_WIDTH: Final = 60
# XML 1.0 forbids these; openpyxl raises IllegalCharacterError on them.
_ILLEGAL_XML_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FILENAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9-]")


@cache
def _styles() -> dict[str, Any]:
    """openpyxl is imported when a workbook is built, not at start-up (0.3 s, issue 18)."""
    from openpyxl.styles import Alignment, Font, PatternFill

    return {
        "bold": Font(bold=True),
        "title": Font(bold=True, size=14),
        "header": PatternFill("solid", fgColor="DDEBF7"),
        "wrap": Alignment(wrap_text=True, vertical="top"),
    }


@dataclass(frozen=True, slots=True)
class Person:
    nombres: str
    apellidos: str
    dni: str
    cargo: str
    email: str
    phone: str


@dataclass(frozen=True, slots=True)
class ProfileRow:
    section_code: str
    section_name: str
    person: Person
    change: str = ""  # a profile change's mark: "alta", "baja", or "" for a row kept


@dataclass(frozen=True, slots=True)
class FormatoData:
    ticket_number: str | None
    entity_name: str
    ruc: str
    responsible: Person
    resolution_number: str
    resolution_date: date
    resolution_authority: str
    profiles: list[ProfileRow]
    generated_at: datetime
    # Whether the entity said it belongs to the justice system; None: never asked (requests
    # sent before the question), and the row is left out.
    justice_system: bool | None = None


def formato_filename(ticket_number: str | None, ruc: str) -> str:
    """``"Formato_Perfiles_PTE-2026-000123.xlsx"``; the RUC when there is no ticket yet."""
    key = _FILENAME_UNSAFE.sub("", ticket_number or "") or _FILENAME_UNSAFE.sub("", ruc)
    return f"{FILENAME_PREFIX}_{key}.xlsx" if key else f"{FILENAME_PREFIX}.xlsx"


def build_formato(data: FormatoData) -> bytes:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.title = SHEET_TITLE
    workbook.properties.creator = "Asistente PTE"
    workbook.properties.title = LABELS["title"]
    workbook.properties.created = _utc_naive(data.generated_at)

    writer = _SheetWriter(sheet)
    writer.row([LABELS["title"]], font=_styles()["title"], measure=False)
    meta = [LABELS["generated_at"], dates.date_time(data.generated_at)]  # Lima time
    if data.ticket_number:
        meta += [LABELS["ticket"], data.ticket_number]
    writer.row(meta, bold_labels=True)
    writer.skip()

    writer.row([LABELS["entity_block"]], font=_styles()["bold"], measure=False)
    writer.row([LABELS["entity_name"], data.entity_name], bold_labels=True)
    writer.row([LABELS["ruc"], data.ruc], bold_labels=True)
    if data.justice_system is not None:
        answer = LABELS["justice_yes" if data.justice_system else "justice_no"]
        writer.row([LABELS["justice"], answer], bold_labels=True)
    writer.skip()

    writer.row([LABELS["responsible_block"]], font=_styles()["bold"], measure=False)
    writer.header(["", *(LABELS[c] for c in _PERSON_COLUMNS)])
    writer.row(["", *_person_cells(data.responsible)])
    writer.skip()

    writer.row([LABELS["resolution_block"]], font=_styles()["bold"], measure=False)
    writer.row([LABELS["resolution_number"], data.resolution_number], bold_labels=True)
    writer.row(
        [LABELS["resolution_date"], data.resolution_date.strftime(_DATE_FORMAT)], bold_labels=True
    )
    writer.row([LABELS["resolution_authority"], data.resolution_authority], bold_labels=True)
    writer.skip()

    writer.row([LABELS["profiles_block"]], font=_styles()["bold"], measure=False)
    # A profile change's Formato says what happens to each row: nobody is removed silently.
    marked = any(profile.change for profile in data.profiles)
    columns = [LABELS["section"], *(LABELS[c] for c in _PERSON_COLUMNS)]
    header_row = writer.header([*columns, LABELS["change"]] if marked else columns)
    for profile in data.profiles:
        cells = [profile.section_name, *_person_cells(profile.person)]
        if marked:
            cells.append(LABELS[f"change_{profile.change}"] if profile.change else "")
        writer.row(cells, wrap=True)

    # Frozen below the table's header: scrolling a long list keeps the column names.
    sheet.freeze_panes = f"A{header_row + 1}"
    for column, width in writer.widths().items():
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{header_row}:{header_row}"

    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _person_cells(person: Person) -> list[str]:
    return [person.nombres, person.apellidos, person.dni, person.cargo, person.email, person.phone]


def _utc_naive(moment: datetime) -> datetime:
    """openpyxl's document properties take naive UTC datetimes."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class _SheetWriter:
    """Writes rows top-down as text cells and remembers the widest value of each column.

    Titles are not measured: they may overflow into the empty cells beside them.
    """

    def __init__(self, sheet: Worksheet) -> None:
        self._sheet = sheet
        self._row = 1
        self._widths: dict[int, int] = {}

    def row(
        self,
        values: list[str],
        *,
        font: Font | None = None,
        bold_labels: bool = False,
        wrap: bool = False,
        measure: bool = True,
    ) -> int:
        for column, value in enumerate(values, start=1):
            cell = self._sheet.cell(row=self._row, column=column)
            cell.value = _ILLEGAL_XML_CHARS.sub("", value)
            cell.data_type = "s"  # never a formula, even if the value starts with "="
            cell.number_format = _TEXT_FORMAT
            if font is not None:
                cell.font = font
            elif bold_labels and column % 2 == 1:
                cell.font = _styles()["bold"]
            if wrap:
                cell.alignment = _styles()["wrap"]
            if measure:
                self._widths[column] = max(self._widths.get(column, 0), len(cell.value))
        self._row += 1
        return self._row - 1

    def header(self, values: list[str]) -> int:
        row = self.row(values, font=_styles()["bold"])
        for column, value in enumerate(values, start=1):
            if value:
                self._sheet.cell(row=row, column=column).fill = _styles()["header"]
        return row

    def skip(self) -> None:
        self._row += 1

    def widths(self) -> dict[int, float]:
        return {
            column: float(min(max(width + 2, _MIN_WIDTH), _MAX_WIDTH))
            for column, width in sorted(self._widths.items())
        }
