"""Value checks of simple elements by X12 data type (N0..N9, R, DT, TM, AN and ID with
a code list): each returns the element syntax error code (AK4/IK4 04) of a bad
value, or None. Built once per element when a grammar is compiled or loaded."""

from __future__ import annotations

from collections.abc import Callable

from translators.x12.codes import ElementSyntaxCode

GOOD_VALUES_LIMIT = 4096  # values remembered as passing, per element: caps the memory the pass cache may use

ValueCheck = Callable[[str], ElementSyntaxCode | None]


def _is_digits(value: str) -> bool:
    return value.isdigit() and value.isascii()


def _numeric_check(lo: int, hi: int, decimal: bool) -> ValueCheck:
    """N0..N9 (digits, optional leading minus) or R (plus one optional point).
    Lengths count digits only, as X12 does."""

    def check(value: str) -> ElementSyntaxCode | None:
        body = value[1:] if value[0] == "-" else value
        if decimal and "." in body:
            whole, _, frac = body.partition(".")
            body = whole + frac
        if not body or not _is_digits(body):
            return ElementSyntaxCode.INVALID_CHARACTER
        size = len(body)
        if size < lo:
            return ElementSyntaxCode.TOO_SHORT
        if size > hi:
            return ElementSyntaxCode.TOO_LONG
        return None

    return check


_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_date(value: str, allow_short: bool) -> bool:
    """CCYYMMDD, or YYMMDD when the element allows six characters."""
    if not _is_digits(value):
        return False
    if len(value) == 8:
        year, month, day = int(value[:4]), int(value[4:6]), int(value[6:])
    elif len(value) == 6 and allow_short:
        year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    else:
        return False
    if not 1 <= month <= 12 or day < 1 or day > _DAYS[month - 1]:
        return False
    return not (month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)))


def valid_time(value: str) -> bool:
    """HHMM, HHMMSS or HHMMSSd..d (decimal seconds)."""
    size = len(value)
    if size not in (4, 6, 7, 8) or not _is_digits(value):
        return False
    if int(value[:2]) > 23 or int(value[2:4]) > 59:
        return False
    return size == 4 or int(value[4:6]) <= 59


def _date_check(lo: int, hi: int) -> ValueCheck:
    allow_short = lo <= 6

    def check(value: str) -> ElementSyntaxCode | None:
        return None if valid_date(value, allow_short) else ElementSyntaxCode.INVALID_DATE

    return check


def _time_check(lo: int, hi: int) -> ValueCheck:
    def check(value: str) -> ElementSyntaxCode | None:
        if not valid_time(value):
            return ElementSyntaxCode.INVALID_TIME
        if len(value) < lo:
            return ElementSyntaxCode.TOO_SHORT
        if len(value) > hi:
            return ElementSyntaxCode.TOO_LONG
        return None

    return check


def _text_check(lo: int, hi: int, codes: frozenset[str] | None) -> ValueCheck:
    """AN and ID. An ID with a code list is judged by the list first: a value that is
    not a code is an invalid code (7) whatever its length."""
    if codes:

        def check_code(value: str) -> ElementSyntaxCode | None:
            if value in codes:
                return None
            if not value.isprintable():
                return ElementSyntaxCode.INVALID_CHARACTER
            return ElementSyntaxCode.INVALID_CODE

        return check_code

    def check(value: str) -> ElementSyntaxCode | None:
        size = len(value)
        if size < lo:
            return ElementSyntaxCode.TOO_SHORT
        if size > hi:
            return ElementSyntaxCode.TOO_LONG
        # control characters are the only thing the extended character set forbids
        if not value.isprintable():
            return ElementSyntaxCode.INVALID_CHARACTER
        return None

    return check


def make_value_check(data_type: str, lo: int, hi: int, codes: frozenset[str] | None) -> ValueCheck:
    if data_type.startswith("N"):
        return _numeric_check(lo, hi, decimal=False)
    if data_type == "R":
        return _numeric_check(lo, hi, decimal=True)
    if data_type == "DT":
        return _date_check(lo, hi)
    if data_type == "TM":
        return _time_check(lo, hi)
    return _text_check(lo, hi, codes)
