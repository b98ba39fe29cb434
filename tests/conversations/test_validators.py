from __future__ import annotations

from datetime import date

import pytest
from stdnum.pe import ruc as stdnum_ruc

from conversations import validators
from conversations.validators import EmailCheck, Invalid, Valid

TODAY = date(2026, 12, 2)


def _fullwidth(digits: str) -> str:
    """Full-width digits, as some phone keyboards type them: only ASCII digits are accepted."""
    return "".join(chr(0xFF10 + int(c)) for c in digits)


# --- RUC ------------------------------------------------------------------------------------


def test_sample_rucs_are_valid_for_stdnum() -> None:
    # 20131312955 is SUNAT's RUC; the others were built with stdnum's check digit.
    for number in ("20131312955", "20131370084", "20503724406", "10101174102"):
        assert stdnum_ruc.is_valid(number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20131312955", Valid("20131312955")),
        (" 20131312955 ", Valid("20131312955")),
        ("20.131.312.955", Valid("20131312955")),
        ("20-13131295-5", Valid("20131312955")),
        ("2013 1312 955", Valid("20131312955")),
        ("20131370084", Valid("20131370084")),
        ("20503724406", Valid("20503724406")),
        ("20131312956", Invalid("ruc_check_digit")),
        ("20131312950", Invalid("ruc_check_digit")),
        ("10101174102", Invalid("ruc_not_entity")),  # natural person, valid check digit
        ("10101174103", Invalid("ruc_check_digit")),  # natural person with a typo
        ("15123456782", Invalid("ruc_not_entity")),
        ("30123456781", Invalid("ruc_not_entity")),  # no RUC kind starts with 30
        ("2013131295", Invalid("ruc_length")),
        ("201313129551", Invalid("ruc_length")),
        ("", Invalid("ruc_length")),
        ("2013131295A", Invalid("ruc_not_digits")),
        ("RUC 20131312955", Invalid("ruc_not_digits")),
        (_fullwidth("20131312955"), Invalid("ruc_not_digits")),
        ("20131312955/", Invalid("ruc_not_digits")),
    ],
)
def test_ruc(text: str, expected: validators.Result[str]) -> None:
    assert validators.ruc(text) == expected


# --- DNI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10117410", Valid("10117410")),
        (" 10 117 410 ", Valid("10117410")),
        ("10.117.410", Valid("10117410")),
        ("01234567", Valid("01234567")),
        ("10117410-2", Valid("10117410")),  # check digit
        ("101174102", Valid("10117410")),
        ("10117410-G", Valid("10117410")),  # check letter
        ("10117410g", Valid("10117410")),
        ("10117410-3", Invalid("dni_format")),
        ("10117410-A", Invalid("dni_format")),
        ("1011741", Invalid("dni_format")),
        ("1011741023", Invalid("dni_format")),
        ("10117-410", Invalid("dni_format")),
        ("1011741O", Invalid("dni_format")),
        ("", Invalid("dni_format")),
        ("DNI 10117410", Invalid("dni_format")),
    ],
)
def test_dni(text: str, expected: validators.Result[str]) -> None:
    assert validators.dni(text) == expected


# --- Mobile ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("987654321", Valid("+51987654321")),
        ("+51 987 654 321", Valid("+51987654321")),
        ("51987654321", Valid("+51987654321")),
        ("987-654-321", Valid("+51987654321")),
        ("987 654 321", Valid("+51987654321")),
        ("0051987654321", Valid("+51987654321")),
        ("+51 (987) 654-321", Valid("+51987654321")),
        ("(01) 426-1234", Invalid("phone_not_mobile")),
        ("014261234", Invalid("phone_not_mobile")),
        ("01 426 1234 anexo 123", Invalid("phone_not_mobile")),
        ("+51 1 4261234", Invalid("phone_not_mobile")),
        ("+1 650 253 0000", Invalid("phone_not_peru")),
        ("+34 612 345 678", Invalid("phone_not_peru")),
        ("98765432", Invalid("phone_format")),
        ("9876543210", Invalid("phone_format")),
        ("12345", Invalid("phone_format")),
        ("abc", Invalid("phone_format")),
        ("", Invalid("phone_format")),
        ("987654321 ext 5", Invalid("phone_format")),
    ],
)
def test_mobile(text: str, expected: validators.Result[str]) -> None:
    assert validators.mobile(text) == expected


# --- Email ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("juan.perez@munisjl.gob.pe", Valid(EmailCheck("juan.perez@munisjl.gob.pe", False))),
        ("Juan.Perez@MuniSJL.GOB.PE", Valid(EmailCheck("Juan.Perez@munisjl.gob.pe", False))),
        ("  juan.perez@munisjl.gob.pe ", Valid(EmailCheck("juan.perez@munisjl.gob.pe", False))),
        ("ana@unmsm.edu.pe", Valid(EmailCheck("ana@unmsm.edu.pe", False))),
        ("ana@fap.mil.pe", Valid(EmailCheck("ana@fap.mil.pe", False))),
        ("ana@minsa.sld.pe", Valid(EmailCheck("ana@minsa.sld.pe", False))),
        ("user@gob.pe", Valid(EmailCheck("user@gob.pe", False))),
        ("user@a.b.gob.pe", Valid(EmailCheck("user@a.b.gob.pe", False))),
        ("y@empresa.com.pe", Valid(EmailCheck("y@empresa.com.pe", True))),
        ("y@gobierno.pe", Valid(EmailCheck("y@gobierno.pe", True))),
        ("y@notgob.pe", Valid(EmailCheck("y@notgob.pe", True))),
        ("y@gob.pe.example.com", Valid(EmailCheck("y@gob.pe.example.com", True))),
        ("y@mygmail.com", Valid(EmailCheck("y@mygmail.com", True))),
        ("x@gmail.com", Invalid("email_webmail")),
        ("x@GMail.com", Invalid("email_webmail")),
        ("x@googlemail.com", Invalid("email_webmail")),
        ("x@hotmail.com", Invalid("email_webmail")),
        ("x@hotmail.es", Invalid("email_webmail")),
        ("x@hotmail.com.pe", Invalid("email_webmail")),
        ("x@yahoo.com.pe", Invalid("email_webmail")),
        ("x@outlook.com.pe", Invalid("email_webmail")),
        ("x@outlook.es", Invalid("email_webmail")),
        ("x@live.com", Invalid("email_webmail")),
        ("x@icloud.com", Invalid("email_webmail")),
        ("x@proton.me", Invalid("email_webmail")),
        ("x@protonmail.com", Invalid("email_webmail")),
        ("juan.perez", Invalid("email_syntax")),
        ("juan@", Invalid("email_syntax")),
        ("juan@@munisjl.gob.pe", Invalid("email_syntax")),
        ("juan perez@munisjl.gob.pe", Invalid("email_syntax")),
        ("juan@localhost", Invalid("email_syntax")),
        ("Juan <juan@munisjl.gob.pe>", Invalid("email_syntax")),
        ("", Invalid("email_syntax")),
    ],
)
def test_email(text: str, expected: validators.Result[EmailCheck]) -> None:
    assert validators.email(text) == expected


def test_webmail_list_is_loaded_from_data_file() -> None:
    domains = validators._webmail_domains()
    assert {"gmail.com", "hotmail.com", "yahoo.com", "outlook.com", "proton.me"} <= domains
    assert all(d == d.strip().lower() and "#" not in d and d for d in domains)


# --- Dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15/03/2026", Valid(date(2026, 3, 15))),
        ("5/3/2026", Valid(date(2026, 3, 5))),
        ("05-03-2026", Valid(date(2026, 3, 5))),
        ("05.03.2026", Valid(date(2026, 3, 5))),
        (" 02/12/2026 ", Valid(date(2026, 12, 2))),  # today
        ("01/01/2000", Valid(date(2000, 1, 1))),
        ("29/02/2024", Valid(date(2024, 2, 29))),
        ("31/02/2026", Invalid("date_invalid")),
        ("29/02/2025", Invalid("date_invalid")),
        ("00/01/2026", Invalid("date_invalid")),
        ("12/13/2026", Invalid("date_invalid")),
        ("03/12/2026", Invalid("date_future")),
        ("01/01/2027", Invalid("date_future")),
        ("31/12/1999", Invalid("date_too_old")),
        ("2026-03-15", Valid(date(2026, 3, 15))),
        ("15/03/26", Valid(date(2026, 3, 15))),
        ("5/10/26", Valid(date(2026, 10, 5))),
        ("05-10-2026", Valid(date(2026, 10, 5))),
        ("5 de octubre de 2026", Valid(date(2026, 10, 5))),
        ("5 oct 2026", Valid(date(2026, 10, 5))),
        ("5 Oct. 2026", Valid(date(2026, 10, 5))),
        ("lunes 5 de octubre del 2026", Valid(date(2026, 10, 5))),
        ("1ro de setiembre de 2026", Valid(date(2026, 9, 1))),
        ("1.º de setiembre de 2026", Valid(date(2026, 9, 1))),
        ("15 sept 2026", Valid(date(2026, 9, 15))),
        ("5 DE MARZO DE 2026", Valid(date(2026, 3, 5))),
        ("5-oct-26", Valid(date(2026, 10, 5))),
        ("5/10", Invalid("date_no_year")),  # which year is a guess: asked again
        ("5 de octubre", Invalid("date_no_year")),
        ("31 de febrero de 2026", Invalid("date_invalid")),
        ("5 de octubrx de 2026", Invalid("date_format")),
        ("05102026", Invalid("date_format")),
        ("5/10/27", Invalid("date_future")),
        ("5/10/99", Invalid("date_future")),  # 2099: two digits are this century's
        ("15/03-2026", Invalid("date_format")),
        ("115/03/2026", Invalid("date_format")),
        ("", Invalid("date_format")),
    ],
)
def test_past_date(text: str, expected: validators.Result[date]) -> None:
    assert validators.past_date(text, TODAY) == expected


# --- Names and free text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Juan", Valid("Juan")),
        ("  María   José  ", Valid("María José")),
        ("Pérez\tGarcía\nde la Cruz", Valid("Pérez García de la Cruz")),
        ("O'Higgins", Valid("O'Higgins")),
        ("Jefe (e) de la Oficina de TI", Valid("Jefe (e) de la Oficina de TI")),
        ("Li", Valid("Li")),
        ("Jose\u0301", Valid("José")),  # combining accent composed (NFC)
        ("a" * 80, Valid("a" * 80)),
        ("a" * 81, Invalid("text_too_long")),
        ("J", Invalid("text_too_short")),
        ("   ", Invalid("text_too_short")),
        ("", Invalid("text_too_short")),
        ("12345", Invalid("text_no_letters")),
        ("-- ..", Invalid("text_no_letters")),
        ("Juan\x00Pérez", Invalid("text_invalid_chars")),
        ("Juan\u202ePérez", Invalid("text_invalid_chars")),  # bidi override
        ("Juan\u200bPérez", Invalid("text_invalid_chars")),  # zero-width space
        ("Juan\u200dPérez", Invalid("text_invalid_chars")),
    ],
)
def test_name(text: str, expected: validators.Result[str]) -> None:
    assert validators.name(text) == expected


def test_free_text_single_line() -> None:
    assert validators.free_text("  No puedo\n\ningresar  ", 5, 100) == Valid("No puedo ingresar")
    assert validators.free_text("Hola", 5, 100) == Invalid("text_too_short")
    assert validators.free_text("Hola mundo", 1, 5) == Invalid("text_too_long")
    assert validators.free_text("👍\u200d", 1, 5) == Invalid("text_no_letters")


def test_free_text_multiline_keeps_line_breaks() -> None:
    text = "Hola,\r\n\r\n\r\n  no   puedo ingresar.  \r\nGracias 👩\u200d💻"
    assert validators.free_text(text, 1, 200, multiline=True) == Valid(
        "Hola,\n\nno puedo ingresar.\nGracias 👩\u200d💻"
    )


def test_free_text_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="invalid length bounds"):
        validators.free_text("x", 5, 2)


# --- Verification code ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456", Valid("123456")),
        (" 123 456 ", Valid("123456")),
        ("123-456", Valid("123456")),
        ("012345", Valid("012345")),
        ("12345", Invalid("code_format")),
        ("1234567", Invalid("code_format")),
        ("12345a", Invalid("code_format")),
        (_fullwidth("123456"), Invalid("code_format")),
        ("", Invalid("code_format")),
    ],
)
def test_verification_code(text: str, expected: validators.Result[str]) -> None:
    assert validators.verification_code(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ana María", Valid("Ana María")),
        ("María-José", Valid("María-José")),
        ("D'Angelo", Valid("D'Angelo")),
        ("Ma. del Pilar", Valid("Ma. del Pilar")),
        ("Ana123", Invalid("name_digits")),
        ("Ana_María", Invalid("name_chars")),
        ("Ana @ María", Invalid("name_chars")),
        ("A", Invalid("text_too_short")),
    ],
)
def test_person_name(text: str, expected: validators.Result[str]) -> None:
    assert validators.person_name(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Municipalidad Distrital de San Juan de Lurigancho", True),
        ("SUNAT Superintendencia Nacional de Aduanas y de Administración Tributaria", True),
        ("MDSJL – Municipalidad Distrital de San Juan de Lurigancho", True),
        ("Poder Judicial", True),
        ("Muni", False),
        ("MDSJL", False),
        ("Muni SJL", False),
        ("Congreso", False),
    ],
)
def test_entity_name_is_the_full_name(text: str, expected: bool) -> None:
    result = validators.entity_name(text)
    assert isinstance(result, Valid) is expected
    if not expected:
        assert result == Invalid("entity_one_word")
