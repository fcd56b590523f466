"""
Properties of the detector, checked on generated input (hypothesis): the masked preview keeps
no word or number of a line but its key names, and no validator accepts a number its rules
make invalid, whatever the rest of the number is.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from hipaacheck.detectors.phi import (
    Kind,
    PhiDetector,
    luhn_ok,
    parse_birth_date,
    preview,
    valid_card,
    valid_dea,
    valid_mbi,
    valid_nanp,
    valid_npi,
    valid_ssn,
)
from hipaacheck.redact import Fingerprinter

TODAY = dt.date(2026, 12, 3)
DETECTOR = PhiDetector(engine="re", fingerprinter=Fingerprinter(b"p" * 32), today=TODAY)
KEY = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True)
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
LETTERS = re.compile(rb"[A-Za-z]+")


def _alnum_runs(text: bytes) -> set[bytes]:
    return set(re.findall(rb"[A-Za-z0-9]+", text))


NESTED_KEY = re.compile(rb"([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[^ \t\"']")


def _assert_only_keys_survive(line: bytes, keys: set[bytes]) -> None:
    """Every word left in the preview is a key: of the record, or a `name=value` inside it."""
    keys = keys | set(NESTED_KEY.findall(line))
    shown = preview(line).encode()
    assert set(re.findall(rb"[0-9]", shown)) <= {b"9"}, shown
    for word in LETTERS.findall(shown):
        assert set(word) <= set(b"x") or any(word in k for k in keys), (word, shown)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEY, st.one_of(WORDS, st.integers(), st.floats(allow_nan=False),
                                      st.lists(WORDS, max_size=3)), max_size=6))
def test_a_json_preview_keeps_only_key_names(record: dict[str, object]) -> None:
    line = json.dumps(record, ensure_ascii=False).encode()
    _assert_only_keys_survive(line, {k.encode() for k in record})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEY, WORDS), max_size=6))
def test_a_logfmt_preview_keeps_only_key_names(pairs: list[tuple[str, str]]) -> None:
    line = " ".join(f'{k}="{v}"' if " " in v else f"{k}={v}" for k, v in pairs).encode()
    _assert_only_keys_survive(line, {k.encode() for k, _ in pairs})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_a_preview_of_arbitrary_bytes_masks_every_digit_and_is_ascii(raw: bytes) -> None:
    shown = preview(raw)
    assert shown.isascii() and len(shown) <= 200
    assert set(re.findall(r"[0-9]", shown)) <= {"9"}
    # Whatever is kept is a key name of the line, taken from the line itself.
    for word in LETTERS.findall(shown.encode()):
        assert set(word) <= set(b"x") or word in raw


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Amara", "Brennan", "219", "45", "6781", "1957", "03", "14",
                                 "617", "234", "5678", "gmail"]), min_size=1, max_size=8),
       st.sampled_from(["ssn", "dob", "phone", "patient_name", "mrn", "email"]))
def test_values_under_a_key_never_survive_the_preview(parts: list[str], key: str) -> None:
    value = " ".join(parts)
    shown = preview(json.dumps({key: value}).encode()).encode()
    for run in _alnum_runs(value.encode()):
        if not set(run) <= set(b"9x") and run not in key.encode():
            assert run not in _alnum_runs(shown), run


# --------------------------------------------------------------------------------------------
# Validators.

DIGIT = st.sampled_from("0123456789")


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@given(st.one_of(
    st.tuples(st.sampled_from(["000", "666"] + [str(a) for a in range(900, 1000)]),
              _digits(2), _digits(4)),
    st.tuples(_digits(3), st.just("00"), _digits(4)),
    st.tuples(_digits(3), _digits(2), st.just("0000"))))
def test_ssns_with_a_forbidden_area_group_or_serial_are_rejected(
        parts: tuple[str, str, str]) -> None:
    digits = "".join(parts)
    assert not valid_ssn(digits)
    line = f"ssn={parts[0]}-{parts[1]}-{parts[2]}".encode()
    assert not [m for m in DETECTOR.scan_line(line) if m.kind == Kind.SSN]


def _break_luhn(digits: str) -> str:
    """The same number with a check digit that fails Luhn."""
    last = int(digits[-1])
    for d in range(1, 10):
        candidate = digits[:-1] + str((last + d) % 10)
        if not luhn_ok(candidate):
            return candidate
    raise AssertionError("unreachable")


@given(st.sampled_from(["4", "51", "37", "6011"]).flatmap(
    lambda prefix: _digits(16 - len(prefix) - (1 if prefix == "37" else 0)).map(
        lambda rest: prefix + rest)))
def test_cards_failing_luhn_are_rejected(number: str) -> None:
    broken = _break_luhn(number)
    assert not valid_card(broken)
    assert not [m for m in DETECTOR.scan_line(f"card_number={broken}".encode())
                if m.kind == Kind.PAYMENT_CARD]


@given(st.sampled_from("1234") .flatmap(lambda first: _digits(9).map(lambda r: first + r)))
def test_npis_failing_the_check_digit_or_prefix_are_rejected(number: str) -> None:
    if number[0] in "12":
        good = next(number[:-1] + d for d in "0123456789" if valid_npi(number[:-1] + d))
        for d in "0123456789":
            if d != good[-1]:
                assert not valid_npi(good[:-1] + d)
    else:
        assert not valid_npi(number)


@given(st.sampled_from("ABCDEFGHJKLMPRSTUX"), st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ9"),
       _digits(6))
def test_dea_numbers_with_a_wrong_check_digit_are_rejected(registrant: str, second: str,
                                                           body: str) -> None:
    d = [int(c) for c in body]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    prefix = registrant + second + body
    assert valid_dea(prefix + str(check))
    for wrong in range(10):
        if wrong != check:
            assert not valid_dea(prefix + str(wrong))
    assert not valid_dea("Q" + second + body + str(check))


MBI_FORBIDDEN = "BILOSZ"


@given(_digits(11), st.integers(0, 10), st.sampled_from(MBI_FORBIDDEN))
def test_mbis_with_a_forbidden_letter_or_a_leading_zero_are_rejected(
        digits: str, position: int, letter: str) -> None:
    value = list("1EG4TE5MK73")
    value[position] = letter
    assert not valid_mbi("".join(value))
    assert not valid_mbi("0" + "EG4TE5MK73")


@given(st.sampled_from("01"), _digits(2), st.sampled_from("23456789"), _digits(6))
def test_nanp_numbers_with_an_invalid_area_code_are_rejected(first: str, rest: str,
                                                             exchange: str, line: str) -> None:
    assert not valid_nanp(first + rest + exchange + line)


@given(st.sampled_from("23456789"), DIGIT, _digits(1), _digits(4))
def test_nanp_numbers_with_an_n11_or_low_exchange_are_rejected(
        area_first: str, area_mid: str, area_last: str, line: str) -> None:
    area = area_first + area_mid + area_last
    for exchange in ("011", "111", "211", "911", "055", "123"):
        if exchange[0] in "01" or exchange[1:] == "11":
            assert not valid_nanp(area + exchange + line)


@given(st.integers(1900, 2026), st.sampled_from([(2, 30), (2, 31), (4, 31), (13, 1), (0, 5),
                                                 (6, 0), (11, 31)]))
def test_impossible_dates_of_birth_are_rejected(year: int, month_day: tuple[int, int]) -> None:
    month, day = month_day
    assert parse_birth_date(f"{year:04d}-{month:02d}-{day:02d}".encode(), TODAY) is None


@given(st.dates(min_value=dt.date(2026, 12, 4), max_value=dt.date(2099, 12, 31)))
def test_dates_of_birth_in_the_future_are_rejected(date: dt.date) -> None:
    assert parse_birth_date(date.isoformat().encode(), TODAY) is None
    assert not [m for m in DETECTOR.scan_line(f"dob={date.isoformat()}".encode())]
