"""
The PHI detector: finds unredacted identifiers in raw log bytes and keeps none of their values.

Detection runs in two stages. The first is one combined pass of cheap patterns over a block of
raw lines, so the common case (a block of ordinary operations logs) costs a single scan in C.
Only the lines it flags go to the second stage, where the full patterns of the identifiers that
fired are run again and every candidate is validated (area and group rules for SSNs, Luhn for
cards and NPIs, calendar dates for birth dates, NANP codes for phones, context keywords where a
bare number would be ambiguous).

Every pattern stays in the subset that RE2 and Hyperscan accept (no look-around, no
back-references), so matching time is linear in the input. The fastest installed engine is
used: Hyperscan for the first pass (with RE2 or `re` for the second, which needs capture
groups), else google-re2, else Python's `re`, a complete fallback. All of them find exactly
the same things, because they run the same patterns in Latin-1 byte mode and everything after
the match is plain Python.

What leaves the detector is a `Match`: the kind of identifier, where it was, the validator that
accepted it and a keyed fingerprint (HMAC under a key random per run). Never the value. The
`preview` function gives a structural view of a line in which every word and number is masked
except key names.

Decisions worth knowing:

- E-mail addresses at RFC 2606 / RFC 6761 reserved domains (`example.com`, `.test`,
  `.invalid`, ...) are skipped: nothing can be delivered there, so they are never a real
  person's address, and they are everywhere in test fixtures. Role and service mailboxes
  (`noreply@`, `alerts@`, ...) and cloud-internal domains (`*.amazonaws.com`,
  `*.svc.cluster.local`, `*.internal`) are skipped too.
- Toll-free and premium-rate phone numbers (800, 833-888, 900) belong to businesses and are
  skipped, as are the fictional 555-01XX numbers.
- Well-known sample and test values (SSN 078-05-1120, 123-45-6789; card 4111 1111 1111 1111)
  are rejected: they identify nobody.
- A patient id that is a UUID is not reported: UUIDs are never findings on their own.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hipaacheck.redact import Fingerprinter

try:  # pragma: no branch - which branch runs depends on the environment
    import re2 as _re2
except ImportError:  # pragma: no cover - google-re2 is part of the test extra
    _re2 = None

try:  # pragma: no branch - the hyperscan wheel is an optional accelerator
    import hyperscan as _hyperscan
except ImportError:  # pragma: no cover
    _hyperscan = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

EngineName = Literal["auto", "hyperscan", "re2", "re"]


class Kind(str, enum.Enum):
    """
    The kinds of identifier the detector reports, after the Safe Harbor list of 164.514(b)(2).
    """

    SSN = "ssn"
    MEDICARE_ID = "medicare_id"
    MRN = "medical_record_number"
    HEALTH_PLAN_ID = "health_plan_id"
    ACCOUNT_NUMBER = "account_number"
    DATE_OF_BIRTH = "date_of_birth"
    AGE_OVER_89 = "age_over_89"
    EMAIL = "email"
    PHONE = "phone"
    PAYMENT_CARD = "payment_card"
    NPI = "npi"
    DEA_NUMBER = "dea_number"
    ICD10_CODE = "icd10_code"
    PERSON_NAME = "person_name"
    STREET_ADDRESS = "street_address"
    HL7_PID = "hl7_pid_segment"
    FHIR_PATIENT = "fhir_patient"
    X12_MEMBER = "x12_member"

    @property
    def provider(self) -> bool:
        """True for provider identifiers (NPI, DEA): low severity unless a patient is named."""
        return self in (Kind.NPI, Kind.DEA_NUMBER)

    @property
    def identifies_patient(self) -> bool:
        """True when the kind on its own points at a patient (used by record-level rules)."""
        return self not in (Kind.NPI, Kind.DEA_NUMBER, Kind.ICD10_CODE, Kind.AGE_OVER_89)


# Generic keyword-anchored ids lose to a specific identifier found on the same bytes.
_GENERIC = frozenset({Kind.MRN, Kind.HEALTH_PLAN_ID, Kind.ACCOUNT_NUMBER})
_CONTAINERS = frozenset({Kind.HL7_PID, Kind.FHIR_PATIENT, Kind.X12_MEMBER})


@dataclass(frozen=True)
class Match:
    """
    One validated identifier: where it was and how it was recognised, never what it was.

    `offset` is the byte offset of the value inside its line; `fingerprint` is a keyed digest
    that lets repeats be counted within a run and says nothing about the value.
    """

    kind: Kind
    line_no: int
    offset: int
    validator: str
    fingerprint: str


@dataclass(frozen=True)
class LineHits:
    """
    The matches found on one line, and (for the first lines of a scan) its masked preview.

    `line_no` is 0 when the line's number is not known (a window sampled from the middle of a
    file); `offset` is the byte offset of the line's start in its source, -1 when unknown.
    """

    line_no: int
    matches: tuple[Match, ...]
    preview: str | None = None
    offset: int = -1


@dataclass(frozen=True)
class Block:
    """
    A run of complete lines (joined by `\\n`), the number of its first line and the byte
    offset of its first byte in the source.

    `first_line_no` is 0 when line numbers are not known (a window sampled from the middle of a
    file); the lines then carry byte offsets only. The bytes are raw log content: `repr`
    leaves them out.
    """

    first_line_no: int
    data: bytes = field(repr=False)
    offset: int = 0


# --------------------------------------------------------------------------------------------
# Validators: pure functions over normalised values. Each rejects every known-invalid number.

_SSN_SAMPLES = frozenset({
    "078051120",  # the Woolworth wallet card
    "219099999",  # the 1940s SSA pamphlet
    "457555462",  # the LifeLock advertisement
    "123456789", "234567890", "012345678", "987654321",
})


def valid_ssn(digits: str) -> bool:
    """
    Whether nine digits can be an issued SSN: area not 000, 666 or 900-999, group not 00,
    serial not 0000, and not a well-known sample or a run of one digit.
    """
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    return digits not in _SSN_SAMPLES and len(set(digits)) > 1


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn (mod 10) check."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def valid_npi(digits: str) -> bool:
    """Whether ten digits are an NPI: first digit 1 or 2, Luhn over the `80840` prefix."""
    return (len(digits) == 10 and digits.isdigit() and digits[0] in "12"
            and luhn_ok("80840" + digits))


_DEA_REGISTRANTS = frozenset("ABCDEFGHJKLMPRSTUX")


def valid_dea(value: str) -> bool:
    """
    Whether a value is a DEA registration number: registrant letter, a letter or 9, seven
    digits whose last is the check digit of the first six.
    """
    if len(value) != 9 or value[0] not in _DEA_REGISTRANTS:
        return False
    if not (value[1].isalpha() or value[1] == "9") or not value[2:].isdigit():
        return False
    d = [int(c) for c in value[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


_MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"
_MBI_RULES = ("C", "A", "AN", "N", "A", "AN", "N", "A", "A", "N", "N")


def valid_mbi(value: str) -> bool:
    """Whether 11 characters (dashes removed) follow the Medicare Beneficiary Id positions."""
    if len(value) != 11:
        return False
    for ch, rule in zip(value, _MBI_RULES):
        alpha, digit = ch in _MBI_ALPHA, ch.isdigit()
        if rule == "C" and not (digit and ch != "0"):
            return False
        if (rule == "A" and not alpha) or (rule == "N" and not digit):
            return False
        if rule == "AN" and not (alpha or digit):
            return False
    return True


_TOLL_FREE = frozenset({"800", "833", "844", "855", "866", "877", "888", "900"})


def valid_nanp(digits: str) -> bool:
    """
    Whether a phone number is a dialable NANP subscriber number: area and exchange codes
    start 2-9 and are not N11, the area's middle digit is not 9, not toll-free or premium,
    not a fictional 555-01XX number.
    """
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10 or not digits.isdigit():
        return False
    npa, nxx, line = digits[:3], digits[3:6], digits[6:]
    if npa[0] in "01" or npa[1] == "9" or npa[1:] == "11" or npa in _TOLL_FREE:
        return False
    if nxx[0] in "01" or nxx[1:] == "11":
        return False
    if nxx == "555" and "0100" <= line <= "0199":
        return False
    return len(set(digits)) > 2


_TEST_PANS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "378282246310005",
    "371449635398431", "6011111111111117", "6011000990139424", "3530111333300000",
    "3566002020360505", "30569309025904", "38520000023237", "6200000000000005",
})


def card_issuer(digits: str) -> str | None:
    """The card network a number belongs to by its prefix and length, or None."""
    n, p2, p3, p4 = len(digits), int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or 644 <= p3 <= 649 or p2 == 65) and 16 <= n <= 19:
        return "discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= p3 <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


def valid_card(digits: str) -> bool:
    """Whether a digit string is a payment card number: known issuer, length, Luhn."""
    if not 13 <= len(digits) <= 19 or not digits.isdigit() or len(set(digits)) < 3:
        return False
    return card_issuer(digits) is not None and luhn_ok(digits) and digits not in _TEST_PANS


_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DATE_PARTS = re.compile(rb"[0-9]+|[A-Za-z]+")


def parse_birth_date(raw: bytes, today: dt.date) -> dt.date | None:
    """
    A plausible date of birth from the date forms logs use, or None.

    ISO (`1980-04-21`, `1980/04/21`), US (`4/21/1980`, `04-21-80`), dotted European
    (`21.04.1980`), compact (`19800421`) and month names (`Apr 21, 1980`, `21 April 1980`).
    The date must exist, lie after 1880 and not in the future.
    """
    parts = _DATE_PARTS.findall(raw)
    try:
        if len(parts) == 1 and len(parts[0]) == 8:
            p = parts[0]
            y, m, d = int(p[:4]), int(p[4:6]), int(p[6:])
        elif len(parts) == 3 and parts[0].isalpha():
            m, d, y = _MONTHS.get(parts[0][:3].lower().decode(), 0), int(parts[1]), int(parts[2])
        elif len(parts) == 3 and parts[1].isalpha():
            d, m, y = int(parts[0]), _MONTHS.get(parts[1][:3].lower().decode(), 0), int(parts[2])
        elif len(parts) == 3 and len(parts[0]) == 4:
            y, m, d = int(parts[0]), int(parts[1]), int(parts[2])
        elif len(parts) == 3:
            a, b, y = int(parts[0]), int(parts[1]), int(parts[2])
            m, d = (b, a) if b"." in raw or a > 12 else (a, b)
            if len(parts[2]) == 2:
                y += 2000 if y <= today.year % 100 else 1900
        else:
            return None
        date = dt.date(y, m, d)
    except ValueError:
        return None
    return date if dt.date(1880, 1, 1) <= date <= today else None


# --------------------------------------------------------------------------------------------
# Patterns. Bytes, Latin-1 semantics, RE2 subset. `(?P<k>...)` is the keyword, `(?P<v>...)`
# the value. No pattern can match a newline, so a match never spans two lines.

_SEP = rb"""[\\"' \t:=>#|\[]{1,8}"""
_NUM_SUFFIX = rb"(?:[ _-]?(?:number|num|nbr|no|id))?"


def _kv(keywords: bytes, value: bytes) -> bytes:
    return rb"(?P<k>(?i:" + keywords + rb"))" + _SEP + rb"(?P<v>" + value + rb")"


_ID_VALUE = rb"[A-Za-z0-9][A-Za-z0-9-]{2,39}"
_DATE_VALUE = (
    rb"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}|[0-9]{8}"
    rb"|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? [0-9]{1,2},? [0-9]{4}"
    rb"|[0-9]{1,2} (?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? [0-9]{4}")
_MBI_A = rb"[AC-HJKMNP-RT-Y]"
_MBI_AN = rb"[AC-HJKMNP-RT-Y0-9]"


@dataclass(frozen=True)
class _Hit:
    kind: Kind
    validator: str
    value: bytes
    offset: int
    needs_patient: bool = False


@dataclass(frozen=True)
class _Found:
    """An engine-independent regex match: spans of the whole match and of named groups."""

    start: int
    end: int
    groups: dict[str, tuple[int, int]]

    def span(self, name: str) -> tuple[int, int]:
        return self.groups.get(name, (-1, -1))


_Check = Callable[["_Ctx", bytes, _Found], list[_Hit]]


@dataclass(frozen=True)
class _Ctx:
    today: dt.date


@dataclass(frozen=True)
class Spec:
    """
    One way of finding one kind of identifier: a full pattern, cheaper first-pass patterns
    that match at least wherever the full pattern does, and a validating check.

    A spec without `anchors` or `shapes` is found by the `re` engine with its own pattern
    (correct, only slower).
    """

    kind: Kind
    validator: str
    pattern: bytes
    check: _Check
    prefilter: bytes | None = None
    """For RE2's combined first pass; default: the pattern itself."""
    anchors: tuple[bytes, ...] = ()
    """For the `re` engine's first pass: patterns over the lowercased line, at least one of
    which matches wherever `pattern` does. Each should start with a literal, which `re`
    finds fast."""
    shapes: tuple[bytes, ...] = ()
    """Like `anchors`, over the line's shape: digits as `9`, letters as `A` or `a`."""


# --------------------------------------------------------------------------------------------
# Context helpers for the checks.

_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_REDACTED_CHARS = frozenset(b"*xX#9-_ .")


def _prev(line: bytes, i: int) -> int:
    return line[i - 1] if i > 0 else 0x20


def _next(line: bytes, i: int) -> int:
    return line[i] if i < len(line) else 0x20


def _keyword_ok(line: bytes, start: int) -> bool:
    """A keyword starts a word: after a non-alphanumeric byte, or camelCase (`patientSsn`)."""
    if start <= 0:
        return True
    before, first = line[start - 1], line[start]
    if before not in _WORD:
        return True
    return 0x41 <= first <= 0x5A and (0x61 <= before <= 0x7A or 0x30 <= before <= 0x39)


def _value_ends(line: bytes, end: int) -> bool:
    """The value is not the start of a longer token (`12345_abc`, `123-45-6789-1`)."""
    nxt = _next(line, end)
    if nxt in _WORD or nxt in b"_-/@":
        return False
    return not (nxt == 0x2E and _next(line, end + 1) in _WORD)


def _standalone(line: bytes, start: int, end: int) -> bool:
    """A number that is not glued to a longer token on either side."""
    return _prev(line, start) not in _WORD and _prev(line, start) not in b"-_./\\+" \
        and _value_ends(line, end)


def _digits(value: bytes) -> str:
    return bytes(c for c in value if 0x30 <= c <= 0x39).decode()


def _redacted(value: bytes) -> bool:
    return not value or all(c in _REDACTED_CHARS for c in value) or b"redact" in value.lower()


def _has_patient_word(line: bytes) -> bool:
    low = line.lower()
    return b"patient" in low or b"resourcetype" in low or b"member" in low


def _value(line: bytes, m: _Found) -> tuple[bytes, int, int]:
    s, e = m.span("v")
    return line[s:e], s, e


def _keyword_value(line: bytes, m: _Found) -> tuple[bytes, int, int] | None:
    """The value of a keyword-anchored match, or None when the keyword is inside a word."""
    if not _keyword_ok(line, m.span("k")[0]):
        return None
    value, s, e = _value(line, m)
    if not _value_ends(line, e):
        return None
    return value, s, e


def _hit(spec_kind: Kind, validator: str, value: bytes | str, offset: int,
         needs_patient: bool = False) -> list[_Hit]:
    raw = value.encode() if isinstance(value, str) else value
    return [_Hit(spec_kind, validator, raw, offset, needs_patient)]


# --------------------------------------------------------------------------------------------
# The checks, one per spec.

def _ssn_format(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, e = _value(line, m)
    digits = _digits(value)
    if not _standalone(line, s, e) or not valid_ssn(digits):
        return []
    return _hit(Kind.SSN, "ssn_format", digits, s)


def _ssn_keyword(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_ssn(_digits(found[0])):
        return []
    return _hit(Kind.SSN, "ssn_keyword", _digits(found[0]), found[1])


def _date_of_birth(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    if not _keyword_ok(line, m.span("k")[0]):
        return []
    value, s, e = _value(line, m)
    if _next(line, e) in b"0123456789" or (_next(line, e) in b"-/." and
                                           _next(line, e + 1) in b"0123456789"):
        return []
    date = parse_birth_date(value, ctx.today)
    return _hit(Kind.DATE_OF_BIRTH, "dob_keyword", date.isoformat(), s) if date else []


def _age_over_89(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    ks = m.span("k")[0]
    if _prev(line, ks) in _WORD or _prev(line, ks) in b"_-":
        return []
    found = _keyword_value(line, m)
    if found is None or not 90 <= int(found[0]) <= 120:
        return []
    keyword = line[ks:m.span("k")[1]].lower()
    return _hit(Kind.AGE_OVER_89, "age_keyword", found[0], found[1],
                needs_patient=b"patient" not in keyword)


def _generic_id(kind: Kind, validator: str) -> _Check:
    def check(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
        found = _keyword_value(line, m)
        if found is None:
            return []
        value = found[0]
        digits = _digits(value)
        if len(value) > 20 or len(digits) < 4 or len(set(digits)) == 1 or _redacted(value):
            return []
        return _hit(kind, validator, value.upper(), found[1])
    return check


def _email(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, e = _value(line, m)
    value = value.replace(b"%40", b"@")
    local, _, domain = value.lower().partition(b"@")
    if _next(line, e) in b"@-_" or _prev(line, s) in b"/\\":
        return []
    if _role_mailbox(local) or _service_domain(domain) or _in_url_credentials(line, s):
        return []
    return _hit(Kind.EMAIL, "email_address", value.lower(), s)


_ROLE_LOCALS = frozenset(
    b"noreply no-reply no_reply donotreply do-not-reply do_not_reply alerts alert admin root "
    b"postmaster hostmaster webmaster abuse security support info ops devops sre oncall "
    b"on-call billing notifications notification notify mailer-daemon bounce bounces help "
    b"sales contact team hello git jenkins ci build deploy system sysadmin monitoring "
    b"nagios pagerduty privacy compliance legal hr careers jobs marketing news newsletter "
    b"feedback service services test testing user username".split())
_ROLE_PREFIXES = (b"noreply", b"no-reply", b"donotreply", b"bounce", b"mailer-daemon")
_SERVICE_SUFFIXES = (
    b".amazonaws.com", b".cluster.local", b".local", b".internal", b".localhost",
    b".localdomain", b".test", b".invalid", b".example", b".gserviceaccount.com",
    b".noreply.github.com", b".amazonses.com", b".sendgrid.net", b".mailgun.org",
)
_RESERVED = frozenset({b"example.com", b"example.net", b"example.org", b"localhost",
                       b"amazonses.com", b"sentry.io", b"users.noreply.github.com"})
_FILE_TLDS = frozenset(
    b"png jpg jpeg gif svg webp ico js mjs css map json html htm txt log xml yaml yml gz zip "
    b"tar py rb go java class jar so dll exe php sh bin dat csv tsv md pdf woff woff2 ttf "
    b"eot mp4 mp3 wav ts tsx jsx vue scss less lock toml ini cfg conf".split())


def _role_mailbox(local: bytes) -> bool:
    base = local.split(b"+", 1)[0]
    return base in _ROLE_LOCALS or base.startswith(_ROLE_PREFIXES)


def _service_domain(domain: bytes) -> bool:
    if domain in _RESERVED or domain.rsplit(b".", 1)[-1] in _FILE_TLDS:
        return True
    return any(domain.endswith(s) or domain == s[1:] for s in _SERVICE_SUFFIXES) or \
        any(domain.endswith(b"." + r) for r in _RESERVED)


def _in_url_credentials(line: bytes, start: int) -> bool:
    """`scheme://user:password@host` is a credential in a URL, not an e-mail address."""
    i = start
    while i > 0 and line[i - 1] not in b" \t\"'<>(),;[]{}=":
        i -= 1
    return b"://" in line[i:start] or _prev(line, start) == 0x3A and b"://" in line[i:start + 1]


def _phone_format(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, e = _value(line, m)
    if not _standalone(line, s, e) and not (value[:1] in b"(+" and _prev(line, s) not in _WORD):
        return []
    digits = _digits(value)
    if not valid_nanp(digits):
        return []
    clear = value[:1] in b"(+" or b"-" in value or b"." in value
    if not clear and not _PHONE_WORDS.search(line[max(0, s - 40):s].lower()):
        return []
    return _hit(Kind.PHONE, "phone_format", digits[-10:], s)


_PHONE_WORDS = re.compile(rb"phone|tel|mobile|cell|fax|contact|call")


def _phone_keyword(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_nanp(_digits(found[0])):
        return []
    return _hit(Kind.PHONE, "phone_keyword", _digits(found[0])[-10:], found[1])


_CARD_LAYOUTS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 3), (4, 4, 4, 1),
                           (4, 6, 5), (4, 6, 4), (4, 4, 4, 2)})


def _card_grouped(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, e = _value(line, m)
    if not _standalone(line, s, e) or len({c for c in value if c in b" -"}) != 1:
        return []
    groups = tuple(len(g) for g in value.replace(b"-", b" ").split(b" "))
    digits = _digits(value)
    if groups not in _CARD_LAYOUTS or not valid_card(digits):
        return []
    return _hit(Kind.PAYMENT_CARD, "card_luhn", digits, s)


def _card_keyword(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_card(found[0].decode()):
        return []
    return _hit(Kind.PAYMENT_CARD, "card_keyword_luhn", found[0], found[1])


def _mbi(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, e = _value(line, m)
    if _prev(line, s) in b"-_./" or not _value_ends(line, e):
        return []
    if value.count(b"-") not in (0, 2):
        return []
    plain = value.replace(b"-", b"").decode()
    return _hit(Kind.MEDICARE_ID, "mbi_format", plain, s) if valid_mbi(plain) else []


def _hicn(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_ssn(found[0][:9].decode()):
        return []
    return _hit(Kind.MEDICARE_ID, "hicn_keyword", found[0].upper(), found[1])


def _npi(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_npi(found[0].decode()):
        return []
    return _hit(Kind.NPI, "npi_luhn", found[0], found[1])


def _dea(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or not valid_dea(found[0].upper().decode()):
        return []
    return _hit(Kind.DEA_NUMBER, "dea_check_digit", found[0].upper(), found[1])


def _icd10(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None:
        return []
    return _hit(Kind.ICD10_CODE, "icd10_keyword", found[0], found[1], needs_patient=True)


_NOT_NAMES = frozenset(
    b"null none nil unknown test tester anonymous redacted masked hidden n/a na true false "
    b"undefined string name john doe jane".split())


def _person_name(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None:
        return []
    value = found[0]
    keyword = line[m.span("k")[0]:m.span("k")[1]].lower()
    if keyword in (b"given", b"family") and not _has_patient_word(line):
        return []
    words = value.lower().replace(b",", b" ").split()
    if not words or all(w in _NOT_NAMES for w in words) or _redacted(value):
        return []
    return _hit(Kind.PERSON_NAME, "name_keyword", value.lower(), found[1])


def _patient_object_name(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    found = _keyword_value(line, m)
    if found is None or len(found[0].split()) < 2 or _redacted(found[0]):
        return []
    words = found[0].lower().replace(b",", b" ").split()
    if all(w in _NOT_NAMES for w in words):
        return []
    return _hit(Kind.PERSON_NAME, "patient_object_name", found[0].lower(), found[1])


def _street_address(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    if not _keyword_ok(line, m.span("k")[0]):
        return []
    value, s, _ = _value(line, m)
    return _hit(Kind.STREET_ADDRESS, "address_keyword", value.lower(), s)


def _hl7_pid(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    """A PID segment: the container, and the identifiers in PID-3, PID-5, PID-7 and PID-19."""
    s = m.start
    if s > 0 and line[s - 1] in _WORD and line[s - 2:s] not in (b"\\r", b"\\n"):
        return []
    seg_end = len(line)
    for stop in (b"\r", b"\\r", b"\\n", b'"'):
        at = line.find(stop, s)
        if at >= 0:
            seg_end = min(seg_end, at)
    fields = line[s:seg_end].split(b"|")
    offsets = [s]
    for f in fields[:-1]:
        offsets.append(offsets[-1] + len(f) + 1)
    hits: list[_Hit] = []

    def field_at(n: int) -> tuple[bytes, int]:
        return (fields[n], offsets[n]) if n < len(fields) else (b"", 0)

    pid3, off3 = field_at(3)
    patient_id = pid3.split(b"^", 1)[0]
    if len(_digits(patient_id)) >= 3 and not _redacted(patient_id):
        hits += _hit(Kind.MRN, "hl7_pid3", patient_id.upper(), off3)
    pid5, off5 = field_at(5)
    name = pid5.replace(b"^", b" ").strip()
    if any(c in _WORD for c in name) and not _redacted(name) and not _digits(name):
        hits += _hit(Kind.PERSON_NAME, "hl7_pid5", name.lower(), off5)
    pid7, off7 = field_at(7)
    date = parse_birth_date(pid7[:8], ctx.today) if len(pid7) >= 8 else None
    if date:
        hits += _hit(Kind.DATE_OF_BIRTH, "hl7_pid7", date.isoformat(), off7)
    pid19, off19 = field_at(19)
    if valid_ssn(_digits(pid19)):
        hits += _hit(Kind.SSN, "hl7_pid19", _digits(pid19), off19)
    if hits:
        hits += _hit(Kind.HL7_PID, "hl7_pid_segment", hits[0].value, s)
    return hits


_FHIR_FIELDS = (b"birthdate", b"name", b"identifier", b"telecom", b"address")


def _fhir_patient(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    rest = line[m.start:].lower()
    if not any(f in rest for f in _FHIR_FIELDS):
        return []
    ident = _FHIR_ID.search(line, m.start)
    value = line[ident.start(1):ident.end(1)] if ident else line[m.start:m.start + 256]
    return _hit(Kind.FHIR_PATIENT, "fhir_patient_resource", value, m.start)


_FHIR_ID = re.compile(rb'"id\\?"[ \t]*:[ \t]*\\?"([^"\\]{1,64})')


def _x12_member(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value = _value(line, m)[0]
    if _redacted(value) or not any(0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A for c in value):
        return []
    seg_end = line.find(b"~", m.start)
    segment = line[m.start:seg_end if seg_end >= 0 else len(line)]
    member = segment.rsplit(b"*", 1)[-1] if b"*MI*" in segment else value
    return _hit(Kind.X12_MEMBER, "x12_nm1_member", member.upper(), m.start)


def _x12_dob(ctx: _Ctx, line: bytes, m: _Found) -> list[_Hit]:
    value, s, _ = _value(line, m)
    date = parse_birth_date(value, ctx.today)
    return _hit(Kind.DATE_OF_BIRTH, "x12_dmg", date.isoformat(), s) if date else []


_NAME_WORD = rb"[A-Z][A-Za-z'-]{1,30}"
_STREET_TYPES = (rb"(?i:st|street|ave|avenue|rd|road|blvd|boulevard|dr|drive|ln|lane|way|ct"
                 rb"|court|pl|place|ter|terrace|pkwy|parkway|hwy|highway|cir|circle|sq|square"
                 rb"|trl|trail)")

_SEP_L = rb"""[\\"' \t:=>#|\[]{1,8}"""

SPECS: tuple[Spec, ...] = (
    Spec(Kind.SSN, "ssn_format", rb"\b(?P<v>[0-9]{3}-[0-9]{2}-[0-9]{4})\b", _ssn_format,
         shapes=(rb"999-99-9999",)),
    Spec(Kind.SSN, "ssn_keyword", _kv(
        rb"ssn|social[ _-]?security(?:[ _-]?(?:number|num|no))?|soc[ _-]?sec(?:[ _-]?no)?",
        rb"[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4}"), _ssn_keyword, anchors=(rb"ssn", rb"soc")),
    Spec(Kind.DATE_OF_BIRTH, "dob_keyword", _kv(
        rb"dob|d\.o\.b\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|birth[ _-]?day|born(?: on)?",
        _DATE_VALUE), _date_of_birth, anchors=(rb"dob", rb"d\.o\.b", rb"birth", rb"born")),
    Spec(Kind.AGE_OVER_89, "age_keyword", _kv(
        rb"patient[ _-]?age|age[ _-]?(?:in[ _-]?)?(?:years|yrs)|\"age|'age", rb"[0-9]{2,3}"),
        _age_over_89, anchors=(rb"patient[ _-]?a", rb"age[ _-]?(?:in[ _-]?)?(?:years|yrs)",
                               rb"\"age", rb"'age")),
    Spec(Kind.MRN, "mrn_keyword", _kv(
        rb"mrn|medical[ _-]?record" + _NUM_SUFFIX + rb"|patient[ _-]?(?:id|identifier|number|num"
        rb"|nbr|no|mrn)|chart[ _-]?(?:number|num|no)", _ID_VALUE),
        _generic_id(Kind.MRN, "mrn_keyword"),
        anchors=(rb"mrn", rb"medical[ _-]?record", rb"patient[ _-]?(?:id|n)", rb"chart")),
    Spec(Kind.HEALTH_PLAN_ID, "plan_keyword", _kv(
        rb"member[ _-]?(?:id|number|num|nbr|no)|subscriber[ _-]?(?:id|number|num|no)"
        rb"|health[ _-]?plan" + _NUM_SUFFIX + rb"|beneficiary[ _-]?(?:id|number|no)"
        rb"|insurance[ _-]?(?:id|number|no)|policy[ _-]?(?:number|no)", _ID_VALUE),
        _generic_id(Kind.HEALTH_PLAN_ID, "plan_keyword"),
        anchors=(rb"member[ _-]?(?:id|n)", rb"subscriber", rb"health[ _-]?plan",
                 rb"beneficiary", rb"insurance", rb"policy[ _-]?n")),
    Spec(Kind.ACCOUNT_NUMBER, "account_keyword", _kv(
        rb"(?:patient[ _-]?|billing[ _-]?)?(?:account|acct)[ _-]?(?:number|num|nbr|no)"
        rb"|patient[ _-]?account", _ID_VALUE),
        _generic_id(Kind.ACCOUNT_NUMBER, "account_keyword"),
        anchors=(rb"ac(?:count|ct)[ _-]?n", rb"patient[ _-]?a")),
    Spec(Kind.EMAIL, "email_address",
         rb"(?P<v>[A-Za-z0-9._%+-]{1,64}(?:@|%40)[A-Za-z0-9-]{1,63}"
         rb"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})\b", _email,
         prefilter=rb"[A-Za-z0-9._%+-](?:@|%40)[A-Za-z0-9-]+\.[A-Za-z0-9.-]*[A-Za-z]{2}",
         anchors=(rb"@[a-z0-9-]+\.[a-z0-9.-]*[a-z]{2}", rb"%40[a-z0-9-]+\.")),
    Spec(Kind.PHONE, "phone_format",
         rb"(?P<v>(?:\+1[ .-]?|1[ .-])?(?:\([2-9][0-9]{2}\)[ ]?|[2-9][0-9]{2}[ .-])"
         rb"[2-9][0-9]{2}[ .-][0-9]{4})\b", _phone_format,
         prefilter=rb"[0-9]{3}(?:\)[ ]?|[ .-])[0-9]{3}[ .-][0-9]{4}\b",
         shapes=(rb"999(?:\) ?|[ .-])999[ .-]9999",)),
    Spec(Kind.PHONE, "phone_keyword", _kv(
        rb"phone" + _NUM_SUFFIX + rb"|telephone|tel|mobile(?:[ _-]?(?:number|no|phone))?"
        rb"|cell(?:[ _-]?phone)?|fax" + _NUM_SUFFIX, rb"\+?1?[2-9][0-9]{9}"), _phone_keyword,
        anchors=(rb"phone", rb"tel", rb"mobile", rb"cell", rb"fax")),
    Spec(Kind.PAYMENT_CARD, "card_luhn",
         rb"\b(?P<v>[0-9]{4}[ -](?:[0-9]{6}[ -][0-9]{4,5}|[0-9]{4}[ -][0-9]{4}"
         rb"(?:[ -][0-9]{1,4}(?:[ -][0-9]{3})?)?))\b", _card_grouped,
         shapes=(rb"9999[ -]9999",)),
    Spec(Kind.PAYMENT_CARD, "card_keyword_luhn", _kv(
        rb"(?:credit|debit|payment)?[ _-]?card(?:[ _-]?(?:number|num|no))?"
        rb"|cc[ _-]?(?:number|num|no)|ccnum|pan", rb"[0-9]{13,19}"), _card_keyword,
        anchors=(rb"card", rb"cc[ _-]?n", rb"pan")),
    Spec(Kind.MEDICARE_ID, "mbi_format",
         rb"\b(?P<v>[1-9]" + _MBI_A + _MBI_AN + rb"[0-9]-?" + _MBI_A + _MBI_AN +
         rb"[0-9]-?" + _MBI_A + rb"{2}[0-9]{2})\b", _mbi,
         shapes=(rb"9A[A9]9-?A[A9]9-?AA99",)),
    Spec(Kind.MEDICARE_ID, "hicn_keyword", _kv(
        rb"hicn|hic[ _-]?(?:number|no)|medicare[ _-]?(?:id|number|no|claim[ _-]?number)",
        rb"[0-9]{9}[A-Za-z][A-Za-z0-9]?"), _hicn, anchors=(rb"hic", rb"medicare")),
    Spec(Kind.NPI, "npi_luhn", _kv(
        rb"npi" + _NUM_SUFFIX + rb"|national[ _-]?provider[ _-]?(?:identifier|id|number)",
        rb"[12][0-9]{9}"), _npi, anchors=(rb"npi", rb"national[ _-]?provider")),
    Spec(Kind.DEA_NUMBER, "dea_check_digit", _kv(
        rb"dea(?:[ _-]?(?:number|num|no|registration|reg))?", rb"[A-Za-z][A-Za-z9][0-9]{7}"),
        _dea, anchors=(rb"dea",)),
    Spec(Kind.ICD10_CODE, "icd10_keyword", _kv(
        rb"diagnosis(?:[ _-]?codes?)?|dx(?:[ _-]?codes?)?|icd[ _-]?10(?:[ _-]?cm)?"
        rb"(?:[ _-]?codes?)?|icd(?:[ _-]?codes?)?|diag[ _-]?codes?",
        rb"[A-TV-Z][0-9][0-9AB](?:\.?[0-9A-TV-Z]{1,4})?"), _icd10,
        anchors=(rb"diag", rb"dx", rb"icd")),
    Spec(Kind.PERSON_NAME, "name_keyword", _kv(
        rb"patient[ _-]?(?:full[ _-]?)?name|(?:first|last|middle|given|family|full|sur)[ _-]?"
        rb"name|surname|pt[ _-]?name|given|family",
        _NAME_WORD + rb"(?:(?:, ?| )" + _NAME_WORD + rb"){0,3}"), _person_name,
        anchors=(rb"patient[ _-]?(?:full[ _-]?)?name", rb"first[ _-]?name", rb"last[ _-]?name",
                 rb"middle[ _-]?name", rb"full[ _-]?name", rb"surname", rb"pt[ _-]?name",
                 rb"given", rb"family")),
    Spec(Kind.PERSON_NAME, "patient_object_name", _kv(
        rb"patient[\"']?[ \t]*:[ \t]*\{[^{}\n]{0,200}?[\"']name",
        _NAME_WORD + rb"(?:, ?| )" + _NAME_WORD + rb"(?:(?:, ?| )" + _NAME_WORD + rb"){0,2}"),
        _patient_object_name, prefilter=rb"(?i:patient)[\"']?[ \t]*:[ \t]*\{",
        anchors=(rb"patient[\"']?[ \t]*:[ \t]*\{",)),
    Spec(Kind.STREET_ADDRESS, "address_keyword", _kv(
        rb"(?:street|home|mailing|patient|billing|residential|postal)?[ _-]?address"
        rb"(?:[ _-]?line)?(?:[ _-]?[12])?|addr(?:ess)?[ _-]?(?:line)?[ _-]?[12]|street|line1",
        rb"[0-9]{1,6} (?:[A-Za-z0-9.'-]{1,30} ){1,5}" + _STREET_TYPES + rb"\b\.?"),
        _street_address,
        anchors=(rb"addr(?:ess)?[ _-]?(?:line)?[ _-]?[12]?" + _SEP_L + rb"[0-9]{1,6} ",
                 rb"street", rb"line1")),
    Spec(Kind.HL7_PID, "hl7_pid_segment", rb"PID\|[^|\r\n]{0,20}\|", _hl7_pid,
         anchors=(rb"pid\|",)),
    Spec(Kind.FHIR_PATIENT, "fhir_patient_resource",
         rb'resourceType\\?"[ \t]*:[ \t]*\\?"Patient\\?"', _fhir_patient,
         anchors=(rb'resourcetype\\?"[ \t]*:[ \t]*\\?"patient',)),
    Spec(Kind.X12_MEMBER, "x12_nm1_member",
         rb"NM1\*(?:IL|QC)\*[12]\*(?P<v>[^*~\r\n]{1,60})\*", _x12_member,
         anchors=(rb"nm1\*",)),
    Spec(Kind.DATE_OF_BIRTH, "x12_dmg", rb"DMG\*D8\*(?P<v>[0-9]{8})\b", _x12_dob,
         anchors=(rb"dmg\*",)),
)
"""Every built-in way of finding an identifier; pass a subset to `PhiDetector` to narrow it."""


# --------------------------------------------------------------------------------------------
# Engines: the same patterns, compiled by RE2 or by Python's `re`, behind one small interface.

_GROUP_NAME = re.compile(rb"\(\?P<[a-z]+>")


def _name(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name


def _ungrouped(pattern: bytes) -> bytes:
    return _GROUP_NAME.sub(b"(?:", pattern)


def first_pass_pattern(spec: Spec) -> bytes:
    """
    The pattern RE2's first pass uses for `spec`: its `prefilter`, or for a keyword-anchored
    pattern the keyword, the separator and the first character of the value (a superset of
    the full pattern, and a much smaller automaton), or else the pattern itself.
    """
    if spec.prefilter is not None:
        return _ungrouped(spec.prefilter)
    at = spec.pattern.find(b"(?P<v>")
    if not spec.pattern.startswith(b"(?P<k>") or at < 0:
        return _ungrouped(spec.pattern)
    value = spec.pattern[at + 6:]
    close = value.find(b"]", 1)
    simple = value.startswith(b"[") and close > 0 and not _alternates(value)
    first = value[:close + 1] if simple else rb"[0-9A-Za-z+(]"
    return _ungrouped(spec.pattern[:at]) + first


def _alternates(group_body: bytes) -> bool:
    """Whether a group's body (up to its closing parenthesis) has a top-level `|`."""
    depth, i, n = 0, 0, len(group_body)
    while i < n:
        c = group_body[i:i + 1]
        if c == b"\\":
            i += 1
        elif c == b"[":
            i = group_body.find(b"]", i + 2)
            if i < 0:
                return True
        elif c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth < 0:
                return False
        elif c == b"|" and depth == 0:
            return True
        i += 1
    return False


class _Engine:
    """
    Compiled patterns for Python's `re`.

    The first pass runs each spec's anchors (literal-prefixed patterns, which `re` finds fast)
    over a lowercased copy and a shape copy of the block, and notes which specs each line
    needs; the second pass runs only those specs' full patterns on only those lines.
    """

    name = "re"

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.specs = specs
        self.full = [self.compile(s.pattern) for s in specs]
        self.group_index = [{_name(n): int(g) for n, g in p.groupindex.items()}
                            for p in self.full]
        grouped: dict[tuple[str, bytes], list[int]] = {}
        for i, spec in enumerate(specs):
            views = [("lower", a) for a in spec.anchors] + [("shape", a) for a in spec.shapes]
            for key in views or [("raw", first_pass_pattern(spec))]:
                grouped.setdefault(key, []).append(i)
        self.anchors = [(view, re.compile(p), tuple(ids)) for (view, p), ids in grouped.items()]

    def compile(self, pattern: bytes) -> Any:
        """A compiled pattern with byte (Latin-1) semantics."""
        return re.compile(pattern)

    def candidate_lines(self, data: bytes) -> Iterator[tuple[int, int, Sequence[int] | None]]:
        """The (start, end, spec indices or None) of every line the first pass flags."""
        views = {"raw": data, "lower": data.lower(), "shape": data.translate(_SHAPE)}
        flagged: dict[int, set[int]] = {}
        for view, rx, ids in self.anchors:
            text, pos = views[view], 0
            while (m := rx.search(text, pos)) is not None:
                start = data.rfind(b"\n", 0, m.start()) + 1
                flagged.setdefault(start, set()).update(ids)
                end = data.find(b"\n", m.start())
                if end < 0:
                    break
                pos = end + 1
        for start in sorted(flagged):
            end = data.find(b"\n", start)
            yield start, len(data) if end < 0 else end, sorted(flagged[start])

    def fired(self, line: bytes) -> list[int]:
        """The indices of the specs whose full pattern matches somewhere in `line`."""
        return [i for i, p in enumerate(self.full) if p.search(line) is not None]

    def finditer(self, i: int, line: bytes) -> Iterator[_Found]:
        """Every non-overlapping match of spec `i` in `line`, leftmost first."""
        names = self.group_index[i]
        for m in self.full[i].finditer(line):
            yield _Found(m.start(), m.end(), {n: m.span(g) for n, g in names.items()})


class _Re2Engine(_Engine):
    """
    Compiled patterns for RE2: one combined first pass over the block, and an `re2.Set` of
    the same first-pass patterns that names the specs that fired on a flagged line.
    """

    name = "re2"

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.options = _re2.Options()
        self.options.encoding = _re2.Options.Encoding.LATIN1
        self.options.max_mem = 64 << 20
        self.options.log_errors = False
        super().__init__(specs)
        first = [first_pass_pattern(s) for s in specs]
        self.combined = self.compile(b"|".join(b"(?:" + p + b")" for p in first))
        self.set = _re2.Set.SearchSet(self.options)
        for pattern in first:
            self.set.Add(pattern)
        self.set.Compile()

    def compile(self, pattern: bytes) -> Any:
        return _re2.compile(pattern, self.options)

    def candidate_lines(self, data: bytes) -> Iterator[tuple[int, int, Sequence[int] | None]]:
        pos, n = 0, len(data)
        while pos < n:
            m = self.combined.search(data, pos)
            if m is None:
                return
            start = data.rfind(b"\n", pos, m.start()) + 1 or pos
            end = data.find(b"\n", m.start())
            end = n if end < 0 else end
            yield start, end, None
            pos = end + 1

    def fired(self, line: bytes) -> list[int]:
        return sorted(self.set.Match(line) or ())


_SHAPE = bytes(0x39 if 0x30 <= b <= 0x39 else 0x41 if 0x41 <= b <= 0x5A else
               0x61 if 0x61 <= b <= 0x7A else b for b in range(256))


class _HyperscanEngine:
    """
    Hyperscan for the first pass, RE2 (or `re`) for the second.

    One Hyperscan database holds every spec's first-pass pattern; a scan of a block reports
    where each pattern's matches end, and since no pattern spans a newline, that names the
    line and the specs to re-run on it. Hyperscan reports no capture groups, so the second
    stage runs on the RE2 or `re` engine, and the results are exactly theirs.
    """

    name = "hyperscan"

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.second: _Engine = _Re2Engine(specs) if _re2 is not None else _Engine(specs)
        patterns = [first_pass_pattern(s) for s in specs]
        self.database = _hyperscan.Database(mode=_hyperscan.HS_MODE_BLOCK)
        self.database.compile(expressions=patterns, ids=list(range(len(patterns))),
                              elements=len(patterns), flags=[0] * len(patterns))
        self._local = threading.local()

    def _scratch(self) -> Any:
        """Scratch space of this thread: Hyperscan forbids sharing one between threads."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _hyperscan.Scratch(self.database)
        return scratch

    def candidate_lines(self, data: bytes) -> Iterator[tuple[int, int, Sequence[int] | None]]:
        """The (start, end, spec indices) of every line a first-pass pattern matches in."""
        flagged: dict[int, set[int]] = {}
        span = [1, 0]  # the line the previous match ended on: [start, end)

        def on_match(spec: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            if not span[0] <= end - 1 < span[1]:
                span[0] = data.rfind(b"\n", 0, end - 1) + 1
                stop = data.find(b"\n", end - 1)
                span[1] = len(data) if stop < 0 else stop
            flagged.setdefault(span[0], set()).add(spec)

        if data:
            self.database.scan(data, match_event_handler=on_match, scratch=self._scratch())
        for start in sorted(flagged):
            end = data.find(b"\n", start)
            yield start, len(data) if end < 0 else end, sorted(flagged[start])

    def fired(self, line: bytes) -> list[int]:
        """The indices of the specs whose full pattern matches somewhere in `line`."""
        return self.second.fired(line)

    def finditer(self, i: int, line: bytes) -> Iterator[_Found]:
        """Every non-overlapping match of spec `i` in `line`, leftmost first."""
        return self.second.finditer(i, line)


def re2_available() -> bool:
    """Whether google-re2 is importable in this environment."""
    return _re2 is not None


def hyperscan_available() -> bool:
    """Whether the hyperscan wheel is importable (and its library loads) here."""
    return _hyperscan is not None


def available_engines() -> tuple[EngineName, ...]:
    """The engines this environment can run, fastest first; `re` is always there."""
    found: list[EngineName] = ["hyperscan"] if _hyperscan is not None else []
    if _re2 is not None:
        found.append("re2")
    return (*found, "re")


def _make_engine(engine: EngineName, specs: Sequence[Spec]) -> _Engine | _HyperscanEngine:
    for name, module in (("re2", _re2), ("hyperscan", _hyperscan)):
        if engine == name and module is None:
            raise ValueError(f"engine {name!r} requested but its package is not installed")
    if engine == "hyperscan":
        return _HyperscanEngine(specs)
    if engine == "auto" and _hyperscan is not None:
        try:
            return _HyperscanEngine(specs)
        except _hyperscan.error:
            # NOTE: a wheel that imports but cannot compile here (an unsupported CPU) is
            # not an accelerator; RE2 or `re` find exactly the same things.
            logger.info("hyperscan could not compile the patterns; using the next engine")
    if engine in ("re2", "auto") and _re2 is not None:
        return _Re2Engine(specs)
    return _Engine(specs)


# --------------------------------------------------------------------------------------------
# The detector.

class PhiDetector:
    """
    Finds unredacted identifiers in raw log lines; thread-safe once built.

    `specs` narrows or extends what is looked for (default: `SPECS`); `engine` picks
    Hyperscan, RE2 or Python's `re` (`auto` takes the fastest installed); every engine finds
    exactly the same things; `fingerprinter` keys the fingerprints (default: a
    fresh random key); `today` bounds plausible birth dates (default: the current date).
    """

    def __init__(self, specs: Sequence[Spec] = SPECS, *, engine: EngineName = "auto",
                 fingerprinter: Fingerprinter | None = None,
                 today: dt.date | None = None) -> None:
        self.specs = tuple(specs)
        self._engine: _Engine | _HyperscanEngine = _make_engine(engine, self.specs)
        self._fp = fingerprinter or Fingerprinter()
        self._ctx = _Ctx(today or dt.date.today())

    @property
    def engine(self) -> str:
        """The engine in use: `hyperscan`, `re2` or `re`."""
        return self._engine.name

    @property
    def kinds(self) -> frozenset[Kind]:
        """Every kind this detector can report."""
        kinds = {s.kind for s in self.specs}
        if Kind.HL7_PID in kinds:
            kinds |= {Kind.MRN, Kind.PERSON_NAME, Kind.DATE_OF_BIRTH, Kind.SSN}
        return frozenset(kinds)

    def scan_line(self, line: bytes, line_no: int = 1) -> list[Match]:
        """The identifiers on one line (a trailing newline is ignored)."""
        line = line.rstrip(b"\r\n").replace(b"\n", b" ")
        for _, _, specs in self._engine.candidate_lines(line):
            return self._second_stage(line, line_no, specs)
        return []

    def scan_lines(self, lines: Iterable[bytes], first_line_no: int = 1) -> Iterator[Match]:
        """Every identifier in a stream of lines, in order; lines are batched into blocks."""
        for hits in self.scan_blocks(_batch(lines, first_line_no)):
            yield from hits.matches

    def scan_blocks(self, blocks: Iterable[Block], previews: int = 0) -> Iterator[LineHits]:
        """
        The lines with identifiers in a stream of blocks. The first `previews` such lines
        carry their masked structural preview.
        """
        for block in blocks:
            for line_no, offset, line, specs in self._candidates(block):
                matches = self._second_stage(line, line_no, specs)
                if not matches:
                    continue
                shown = None
                if previews > 0:
                    shown, previews = preview(line), previews - 1
                yield LineHits(line_no, tuple(matches), shown, offset)

    def _candidates(self, block: Block
                    ) -> Iterator[tuple[int, int, bytes, Sequence[int] | None]]:
        """The first stage: the lines of `block` that any first-pass pattern flags."""
        data, line_no, counted = block.data, block.first_line_no, 0
        for start, end, specs in self._engine.candidate_lines(data):
            if line_no:
                line_no += data.count(b"\n", counted, start)
                counted = start
            yield line_no, block.offset + start, data[start:end].rstrip(b"\r"), specs

    def _second_stage(self, line: bytes, line_no: int,
                      specs: Sequence[int] | None = None) -> list[Match]:
        """Re-run only the specs that fired, validate, apply record rules and fingerprint."""
        hits: list[_Hit] = []
        for i in self._engine.fired(line) if specs is None else specs:
            check = self.specs[i].check
            for found in self._engine.finditer(i, line):
                hits.extend(check(self._ctx, line, found))
        hits = _resolve(hits)
        return [Match(h.kind, line_no, h.offset, h.validator,
                      self._fp.digest(h.kind.value.encode() + b":" + h.value)) for h in hits]


def _resolve(hits: list[_Hit]) -> list[_Hit]:
    """Apply record-level rules and drop duplicates of the same value."""
    if not hits:
        return hits
    if any(h.needs_patient for h in hits):
        patient = any(h.kind.identifies_patient for h in hits)
        hits = [h for h in hits if patient or not h.needs_patient]
    hits.sort(key=lambda h: (h.offset, h.kind in _GENERIC))
    kept: list[_Hit] = []
    for h in hits:
        end = h.offset + len(h.value)
        if h.kind not in _CONTAINERS and any(
                _overlap(k, h.offset, end) and (k.kind == h.kind or h.kind in _GENERIC)
                for k in kept if k.kind not in _CONTAINERS):
            continue
        kept.append(h)
    return kept


def _overlap(k: _Hit, start: int, end: int) -> bool:
    return k.offset < end and start < k.offset + max(len(k.value), 1)


def _batch(lines: Iterable[bytes], first_line_no: int,
           block_bytes: int = 256 * 1024) -> Iterator[Block]:
    """Join lines into blocks of about `block_bytes`, one line per input item."""
    buf: list[bytes] = []
    size, start, line_no = 0, first_line_no, first_line_no
    for line in lines:
        line = line.rstrip(b"\r\n").replace(b"\n", b" ")
        buf.append(line)
        size += len(line) + 1
        line_no += 1
        if size >= block_bytes:
            yield Block(start, b"\n".join(buf))
            buf, size, start = [], 0, line_no
    if buf:
        yield Block(start, b"\n".join(buf))


# --------------------------------------------------------------------------------------------
# The structural preview.

PREVIEW_CHARS = 200

_MASK = bytes(
    0x78 if (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b >= 0x80) else
    0x39 if 0x30 <= b <= 0x39 else
    0x2E if b < 0x20 or b == 0x7F else b
    for b in range(256))
_KEY_KEEP = bytes(
    b if (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b in b"_-.$@") else _MASK[b]
    for b in range(256))
_IDENT = re.compile(rb"[A-Za-z_@$][A-Za-z0-9_.@$-]{0,63}")
_BARE_KEY = re.compile(rb"[a-z_][A-Za-z0-9_.-]{0,63}|[A-Z][A-Z0-9_.-]{0,63}")
_KEY_BEFORE = frozenset(b" \t{,;&?([|\"'")


def preview(line: bytes) -> str:
    """
    A structural preview of `line`: every letter becomes `x`, every digit `9`, every other
    byte outside printable ASCII `x` or `.`, except key names, which are kept.

    Keys are JSON (or Python-repr) object keys, quoted strings followed by `:`, and bare
    `key=value` / `key: value` names in lower, snake or upper case. Text inside a quoted value
    is masked whole, so `{"name": "Ada:Lovelace"}` keeps `name` and nothing else. The result
    is cut to `PREVIEW_CHARS` characters.
    """
    line = line[:PREVIEW_CHARS * 2]
    out = bytearray(line.translate(_MASK))
    for start, end in _key_spans(line):
        out[start:end] = line[start:end].translate(_KEY_KEEP)
    text = out.decode("ascii")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 3] + "..."


def _key_spans(line: bytes, lo: int = 0, hi: int | None = None,
               inside: bool = False) -> Iterator[tuple[int, int]]:
    """
    The byte spans of key names in `line[lo:hi]`, by a small quote-aware scan. Inside a
    quoted value only `key=value` names count (query strings, logfmt in a message).
    """
    i, n = lo, len(line) if hi is None else hi
    while i < n:
        c = line[i]
        if c in b"\"'" and not inside:
            close = _closing_quote(line, i, n)
            after = _skip_spaces(line, close + 1, n)
            if (after < n and line[after] == 0x3A and _IDENT.fullmatch(line, i + 1, close)
                    and _safe_key(line[i + 1:close], quoted=True)):
                yield i + 1, close
            else:
                yield from _key_spans(line, i + 1, close, inside=True)
            i = close + 1
        elif c in _WORD or c == 0x5F:
            m = _BARE_KEY.match(line, i, n)
            end = i + 1 if m is None else m.end()
            while end < n and (line[end] in _WORD or line[end] in b"_.-"):
                end += 1
            if (m is not None and m.end() == end and _bare_key_at(line, i, end, n, inside)
                    and _safe_key(line[i:end], quoted=False, before_equals=_equals_after(
                        line, end, n))):
                yield i, end
            i = end
        else:
            i += 1


def _safe_key(name: bytes, *, quoted: bool, before_equals: bool = False) -> bool:
    """
    Whether a key name may stay unmasked in a preview. A key can itself be a value (an e-mail
    address used as a JSON key, a surname before a colon in prose), so `@` always masks, and a
    bare word before `:` stays only when it looks like an identifier (holds `_` or a digit).
    """
    if b"@" in name:
        return False
    if quoted or before_equals:
        return True
    return any(c == 0x5F or 0x30 <= c <= 0x39 for c in name)


def _equals_after(line: bytes, end: int, n: int) -> bool:
    after = _skip_spaces(line, end, n)
    return after < n and line[after] == 0x3D


def _closing_quote(line: bytes, i: int, n: int) -> int:
    q, j = line[i], i + 1
    while j < n and line[j] != q:
        j += 2 if line[j] == 0x5C else 1
    return min(j, n)


def _skip_spaces(line: bytes, i: int, n: int) -> int:
    while i < n and line[i] in b" \t":
        i += 1
    return i


def _bare_key_at(line: bytes, start: int, end: int, n: int, inside: bool) -> bool:
    """A bare word is a key when it follows a separator and precedes `=` (or, outside quoted
    values, `: `)."""
    if start > 0 and line[start - 1] not in _KEY_BEFORE:
        return False
    after = _skip_spaces(line, end, n)
    if after < n and line[after] == 0x3D:
        # Inside a quoted value, `name=` with nothing after it is a word, not a key.
        return not inside or (after + 1 < n and line[after + 1] not in b" \t\"'")
    return not inside and end < n and line[end] == 0x3A and \
        (end + 1 >= n or line[end + 1] in b" \t\"")


# --------------------------------------------------------------------------------------------
# Aggregation.

@dataclass(frozen=True)
class KindSummary:
    """
    How often one kind of identifier was seen: count, first and last line, distinct values.

    `first_line`/`last_line` are 0 when only lines of unknown number held the kind (windows
    sampled from a file's middle); `first_offset`/`last_offset` are byte offsets of the lines
    (-1 when unknown); `first_time`/`last_time` are event times in epoch milliseconds for
    sinks whose records carry one (CloudWatch), else None.
    """

    kind: Kind
    count: int
    first_line: int
    last_line: int
    distinct: int
    first_offset: int = -1
    last_offset: int = -1
    first_time: int | None = None
    last_time: int | None = None


class PhiSummary:
    """
    Aggregates matches per kind without keeping any value: counts, first and last line
    numbers, byte offsets and times, the number of distinct fingerprints, the validators that
    fired, the first few line numbers (or offsets) with hits and the first masked preview.
    """

    def __init__(self, keep_lines: int = 10) -> None:
        self._keep = keep_lines
        self._count: dict[Kind, int] = {}
        self._lines: dict[Kind, tuple[int, int]] = {}
        self._offsets: dict[Kind, tuple[int, int]] = {}
        self._times: dict[Kind, tuple[int, int]] = {}
        self._prints: dict[Kind, set[str]] = {}
        self.validators: set[str] = set()
        self.lines: list[int] = []
        self.offsets: list[int] = []
        """Byte offsets of the first lines with hits whose line numbers are unknown."""
        self.lines_with_hits = 0
        self.first_preview: str | None = None

    def add(self, hits: LineHits, time: int | None = None) -> None:
        """Count the matches of one line; `time` is its record's time (epoch ms), if any."""
        self.lines_with_hits += 1
        if hits.line_no and len(self.lines) < self._keep:
            self.lines.append(hits.line_no)
        elif not hits.line_no and hits.offset >= 0 and len(self.offsets) < self._keep:
            self.offsets.append(hits.offset)
        if self.first_preview is None and hits.preview is not None:
            self.first_preview = hits.preview
        for m in hits.matches:
            self.add_match(m, hits.offset, time)

    def add_match(self, m: Match, offset: int = -1, time: int | None = None) -> None:
        """Count one match, found on a line at byte `offset` of a record at `time`."""
        self._count[m.kind] = self._count.get(m.kind, 0) + 1
        if m.line_no:
            _widen(self._lines, m.kind, m.line_no)
        if offset >= 0:
            _widen(self._offsets, m.kind, offset)
        if time is not None:
            _widen(self._times, m.kind, time)
        self._prints.setdefault(m.kind, set()).add(m.fingerprint)
        self.validators.add(m.validator)

    @property
    def total(self) -> int:
        """The number of matches counted."""
        return sum(self._count.values())

    def kinds(self) -> tuple[KindSummary, ...]:
        """One summary per kind seen, most frequent first."""
        rows = []
        for kind, count in self._count.items():
            lines, offsets = self._lines.get(kind, (0, 0)), self._offsets.get(kind, (-1, -1))
            times = self._times.get(kind)
            rows.append(KindSummary(kind, count, lines[0], lines[1], len(self._prints[kind]),
                                    offsets[0], offsets[1], times[0] if times else None,
                                    times[1] if times else None))
        return tuple(sorted(rows, key=lambda r: (-r.count, r.kind.value)))


def _widen(spans: dict[Kind, tuple[int, int]], kind: Kind, value: int) -> None:
    low, high = spans.get(kind, (value, value))
    spans[kind] = (min(low, value), max(high, value))
