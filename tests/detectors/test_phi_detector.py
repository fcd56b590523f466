"""
The PHI detector finds validated identifiers, ignores operations noise, behaves the same on
RE2 and on Python's `re`, and never carries a value out.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipaacheck.detectors.phi import (
    SPECS,
    Block,
    Kind,
    PhiDetector,
    PhiSummary,
    Spec,
    available_engines,
    card_issuer,
    hyperscan_available,
    luhn_ok,
    parse_birth_date,
    preview,
    re2_available,
    valid_card,
    valid_dea,
    valid_mbi,
    valid_nanp,
    valid_npi,
    valid_ssn,
)
from hipaacheck.lab.logs import SyntheticLogs
from hipaacheck.redact import Fingerprinter

TODAY = dt.date(2026, 12, 3)


def kinds_of(detector: PhiDetector, line: bytes) -> set[Kind]:
    return {m.kind for m in detector.scan_line(line)}


# --------------------------------------------------------------------------------------------
# Positives: each identifier in the forms logs hold it.

POSITIVES = [
    (b'{"patient_ssn": "219-45-6781"}', Kind.SSN),
    (b"ssn=219456781", Kind.SSN),
    (b"SSN: 219 45 6781", Kind.SSN),
    (b"DETAIL:  Key (ssn)=(219-45-6781) already exists.", Kind.SSN),
    (b'"dob":"1957-03-14"', Kind.DATE_OF_BIRTH),
    (b"DOB: 03/14/1957", Kind.DATE_OF_BIRTH),
    (b"date_of_birth = '14.03.1957'", Kind.DATE_OF_BIRTH),
    (b'"birthDate": "1957-03-14"', Kind.DATE_OF_BIRTH),
    (b"birth_date=19570314", Kind.DATE_OF_BIRTH),
    (b"Date of Birth: March 14, 1957", Kind.DATE_OF_BIRTH),
    (b"DMG*D8*19570314*F~", Kind.DATE_OF_BIRTH),
    (b"mrn=00481234", Kind.MRN),
    (b'"patientId": "MR-0048123"', Kind.MRN),
    (b"Medical Record Number: 48123456", Kind.MRN),
    (b"member_id=W123456789", Kind.HEALTH_PLAN_ID),
    (b'"account_number": "AC-99812345"', Kind.ACCOUNT_NUMBER),
    (b"sent to amara.brennan12@gmail.com", Kind.EMAIL),
    (b"GET /search?email=amara.brennan12%40gmail.com&x=1", Kind.EMAIL),
    (b"call (617) 234-5678 now", Kind.PHONE),
    (b"phone=617-234-5678", Kind.PHONE),
    (b"+1 617 234 5678", Kind.PHONE),
    (b"mobile: 6172345678", Kind.PHONE),
    (b"card 4539 1488 0343 6467 declined", Kind.PAYMENT_CARD),
    (b'"card_number":"4539148803436467"', Kind.PAYMENT_CARD),
    (b'mbi="1EG4TE5MK73"', Kind.MEDICARE_ID),
    (b"MBI 1EG4-TE5-MK73", Kind.MEDICARE_ID),
    (b"hicn=219456781A", Kind.MEDICARE_ID),
    (b"npi=1245319599", Kind.NPI),
    (b"dea_number=AB1234563", Kind.DEA_NUMBER),
    (b'"first_name": "Amara", "last_name": "Brennan"', Kind.PERSON_NAME),
    (b'"street_address": "1600 Harbor View Ave"', Kind.STREET_ADDRESS),
    (b"PID|1||00481234^^^HOSP^MR||SMITH^ALICE||19520317|F", Kind.HL7_PID),
    (b"MSH|^~\\&|A|B|||20261203||ADT^A01|9|P|2.5\rPID|1||00481234^^^H^MR||ROE^ANA", Kind.HL7_PID),
    (b'{"resourceType":"Patient","id":"p1","birthDate":"1961-08-09"}', Kind.FHIR_PATIENT),
    (b"NM1*IL*1*OKAFOR*CHIDI****MI*W123456789~", Kind.X12_MEMBER),
    (b'{"patient_age": 93}', Kind.AGE_OVER_89),
    (b'{"patient": {"id": 12, "name": "Amara Brennan"}}', Kind.PERSON_NAME),
]


@pytest.mark.parametrize(("line", "kind"), POSITIVES, ids=[k.value for _, k in POSITIVES])
def test_each_identifier_is_found(detector: PhiDetector, line: bytes, kind: Kind) -> None:
    assert kind in kinds_of(detector, line)


def test_hl7_pid_fields_are_reported_separately(detector: PhiDetector) -> None:
    line = (b"MSH|^~\\&|EPIC|HOSP|||202601021200||ADT^A01|1|P|2.5\\rPID|1||00481234^^^HOSP^MR||"
            b"SMITH^ALICE||19520317|F|||||||||||||219-45-6781")
    validators = {m.validator for m in detector.scan_line(line)}
    assert {"hl7_pid3", "hl7_pid5", "hl7_pid7", "hl7_pid_segment"} <= validators
    assert Kind.SSN in kinds_of(detector, line)


def test_icd10_needs_a_patient_on_the_same_record(detector: PhiDetector) -> None:
    assert kinds_of(detector, b"claim diagnosis=E11.9 clinic=4") == set()
    assert kinds_of(detector, b"claim diagnosis=E11.9 mrn=00481234") == {Kind.ICD10_CODE, Kind.MRN}


def test_age_needs_patient_context(detector: PhiDetector) -> None:
    assert kinds_of(detector, b'{"age": 93, "plan": "gold"}') == set()
    assert Kind.AGE_OVER_89 in kinds_of(detector, b'{"age": 93, "mrn": "00481234"}')
    assert kinds_of(detector, b'{"patient_age": 45}') == set()


def test_fhir_given_and_family_need_a_patient_resource(detector: PhiDetector) -> None:
    assert kinds_of(detector, b'{"font": {"family": "Roboto"}}') == set()
    assert Kind.PERSON_NAME in kinds_of(
        detector, b'{"resourceType":"Patient","name":[{"family":"Okafor","given":["Chidi"]}]}')


def test_bare_nine_digits_are_an_ssn_only_next_to_a_keyword(detector: PhiDetector) -> None:
    assert kinds_of(detector, b"resourceVersion=219456781") == set()
    assert kinds_of(detector, b"ssn=219456781") == {Kind.SSN}


def test_bare_card_and_phone_digits_need_a_keyword(detector: PhiDetector) -> None:
    assert kinds_of(detector, b"order_id=4539148803436467") == set()
    assert kinds_of(detector, b"ts=6172345678") == set()
    assert kinds_of(detector, b"tel 6172345678") == {Kind.PHONE}


def test_provider_kinds_are_marked() -> None:
    assert Kind.NPI.provider and Kind.DEA_NUMBER.provider and not Kind.SSN.provider


# --------------------------------------------------------------------------------------------
# Validators reject every known-invalid number.

@pytest.mark.parametrize("digits", [
    "000123456", "666123456", "900123456", "999123456", "219001234", "219450000",
    "078051120", "123456789", "219099999", "111111111", "12345678", "21945678a",
])
def test_invalid_ssns_are_rejected(digits: str) -> None:
    assert not valid_ssn(digits)


def test_valid_ssn_is_accepted() -> None:
    assert valid_ssn("219456781")


@pytest.mark.parametrize("line", [
    b"ssn=078-05-1120", b"ssn=123-45-6789", b"ssn=666-12-3456", b"ssn=912-34-5678",
    b"ssn=219-00-1234", b"ssn=219-45-0000", b"ssn=000-45-6781",
])
def test_invalid_ssns_are_not_findings(detector: PhiDetector, line: bytes) -> None:
    assert kinds_of(detector, line) == set()


def test_luhn_npi_dea_and_mbi_validators() -> None:
    assert luhn_ok("4539148803436467") and not luhn_ok("4539148803436468")
    assert valid_npi("1245319599") and not valid_npi("1245319598") and not valid_npi("3245319599")
    assert valid_dea("AB1234563") and not valid_dea("AB1234564") and not valid_dea("QB1234563")
    assert valid_mbi("1EG4TE5MK73")
    for bad in ("0EG4TE5MK73", "1SG4TE5MK73", "1EG4TE5MK7", "1EGATE5MK73", "1EG4TE5MK7O"):
        assert not valid_mbi(bad)


@pytest.mark.parametrize("number", [
    "1172345678", "6171345678", "6972345678", "4112345678", "6179115678", "6171115678",
    "8002345678", "8882345678", "9002345678", "6175550142", "2222222222", "617234567",
])
def test_invalid_nanp_numbers_are_rejected(number: str) -> None:
    assert not valid_nanp(number)


def test_valid_nanp_numbers_are_accepted() -> None:
    assert valid_nanp("6172345678") and valid_nanp("16172345678") and valid_nanp("6175552671")


@pytest.mark.parametrize("number", [
    "4539148803436468", "9539148803436467", "4111111111111111", "4242424242424242",
    "5555555555554444", "378282246310005", "0000000000000000", "453914880343",
])
def test_invalid_or_test_cards_are_rejected(number: str) -> None:
    assert not valid_card(number)


def test_card_issuers() -> None:
    assert card_issuer("4539148803436467") == "visa"
    assert card_issuer("5105105105105100") == "mastercard"
    assert card_issuer("371449635398431") == "amex"
    assert card_issuer("1234567890123456") is None


@pytest.mark.parametrize("raw", [b"1957-02-30", b"2027-01-01", b"1850-01-01", b"13/45/1990",
                                 b"19571340", b"Smarch 3, 1990"])
def test_impossible_birth_dates_are_rejected(raw: bytes) -> None:
    assert parse_birth_date(raw, TODAY) is None


@pytest.mark.parametrize(("raw", "iso"), [
    (b"1957-03-14", "1957-03-14"), (b"03/14/1957", "1957-03-14"), (b"14.03.1957", "1957-03-14"),
    (b"19570314", "1957-03-14"), (b"Mar 14, 1957", "1957-03-14"), (b"14 March 1957", "1957-03-14"),
    (b"3/14/57", "1957-03-14"), (b"25/12/1960", "1960-12-25"),
])
def test_birth_date_forms(raw: bytes, iso: str) -> None:
    date = parse_birth_date(raw, TODAY)
    assert date is not None and date.isoformat() == iso


# --------------------------------------------------------------------------------------------
# Hard negatives: ordinary operations noise is never a finding.

HARD_NEGATIVES = [
    b'{"ts":1733212345678,"epoch":1733212345,"level":"info"}',
    b"request_id=6f1c2f3a-9b4e-4c1d-8f2e-0a1b2c3d4e5f trace=4bf92f3577b34da6a3ce929d0e0e4736",
    b'order_id=4000123412341234 txn=TXN-4539148803 "orderId": 5105105105105100',
    b"account=123456789012 arn:aws:iam::219456781234:role/api aws_account_id=219456781234",
    b"hdfs: Received block blk_-4539148803436467 of size 67108864 from /10.0.0.4",
    b"blk_4539148803436467 blk_-1608999687919862906",
    b'image="api:1.24.3" version=v2.31.0 chrome/131.0.6778.85 build 2026.1203.1412',
    b"10.12.0.4 - - [03/Dec/2026:11:22:33 +0000] 172.16.254.1:8443 ::ffff:10.0.0.1",
    b"2026-12-03T11:22:33.123456Z 2026-12-03 11:22:33,123 12/03/2026 11:22",
    b"uuid=123e4567-e89b-12d3-a456-426614174000 123e4567-e89b-12d3-a456-426614174000",
    b"Cache-Control: max-age=95 Age: 100 age=93",
    b'"ip_address": "10.0.0.12", "remote_addr": "10.1.2.3"',
    b"from noreply@clinic.org alerts@clinic.org to pager@svc.cluster.local",
    b"sent to jane.roe@example.com and a@b.example.org ses: x@email.amazonses.com",
    b"logo@2x.png icon@3x.webp postgres://app:s3cret@db.internal:5432/clinic",
    b"worker@ip-10-0-0-1.ec2.internal sa@project.iam.gserviceaccount.com",
    b"latency_ms=234 567 8901 rt=0.234 bytes=5678901",
    b"hotel 6172345678 intel=6172345678",
    b"pid=12345 port=5432 status=200 size=34567 duration=123.456 ms",
    b"PID 4521 exited; SSN_LOOKUP disabled; dob_check=false",
    b'"patient_id": "6f1c2f3a-9b4e-4c1d-8f2e-0a1b2c3d4e5f"',
    b"MSH|^~\\&|ENGINE|HOSP|EPIC|HOSP|20261203112233||ACK^A01|1234567|P|2.5.1\\rMSA|AA|1",
    b'{"resourceType":"Bundle","id":"b1","total":3}',
    b'"first_name": "REDACTED", "last_name": "***", "ssn": "***-**-****"',
    b"sha256:4539148803436467e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c",
    b"k8s pod=clinic/api-7d9f8b6c5-x2x4z node=ip-10-0-1-23 restarts=3",
]


@pytest.mark.parametrize("line", HARD_NEGATIVES)
def test_hard_negatives_are_not_findings(detector: PhiDetector, line: bytes) -> None:
    assert kinds_of(detector, line) == set()


def test_clean_operations_logs_flag_at_most_one_line_in_two_thousand(
        detector: PhiDetector) -> None:
    logs = SyntheticLogs(seed=7)
    lines = [logs.clean(fmt) for _ in range(400) for fmt in SyntheticLogs.FORMATS]
    flagged = {m.line_no for m in detector.scan_lines(lines)}
    assert len(flagged) * 2000 <= len(lines)


# --------------------------------------------------------------------------------------------
# The two engines find exactly the same things.

def _labelled_corpus(seed: int, count: int) -> list[bytes]:
    logs = SyntheticLogs(seed=seed)
    lines = []
    for i in range(count):
        fmt = SyntheticLogs.FORMATS[i % len(SyntheticLogs.FORMATS)]
        lines.append(logs.leaking(fmt)[0] if i % 5 == 0 else logs.clean(fmt))
    return lines + [line for line, _ in POSITIVES] + HARD_NEGATIVES


def test_engines_agree_on_a_realistic_corpus(engines: dict[str, PhiDetector]) -> None:
    lines = _labelled_corpus(11, 1500)
    results = {name: list(d.scan_lines(lines)) for name, d in engines.items()}
    for name, found in results.items():
        assert found == results["re"], name
    assert len(results["re"]) > 300


def test_first_pass_misses_nothing_the_second_would_find(engines: dict[str, PhiDetector]) -> None:
    """The first pass of each engine flags every line on which a full pattern finds anything."""
    lines = _labelled_corpus(12, 700)
    for detector in engines.values():
        exhaustive = [m for n, line in enumerate(lines, 1)
                      for m in detector._second_stage(line, n)]  # every line, no first pass
        assert list(detector.scan_lines(lines)) == exhaustive


_FRAGMENTS = [
    "ssn", "SSN", "dob", "DOB", "mrn", "patient_id", "patientId", "member_id", "phone", "tel",
    "card", "npi", "dea", "mbi", "diagnosis", "first_name", "given", "family", "address",
    "resourceType", "Patient", "PID|", "NM1*IL*1*", "DMG*D8*", "@", "%40", "gmail.com",
    "example.com", "=", ": ", '"', "'", "-", ".", "/", "(", ")", " ", "\t", "|", "^", "*", "~",
    "_", "+1", "\\r", "\\", "219", "45", "6781", "617", "234", "5678", "4539", "1488", "0343",
    "6467", "1957", "03", "14", "1EG4", "TE5", "MK73", "AB1234563", "1245319599", "E11.9",
    "Amara", "Brennan", "1600", "Harbor", "Ave", "19570314", "93", "March", "Apr", ",",
    '"patient": {', '"name": "', "{", "}",
    "\x00", "\xe9", "\xff",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_FRAGMENTS), max_size=14), min_size=1, max_size=6))
def test_engines_agree_on_generated_lines(engines: dict[str, PhiDetector],
                                         parts: list[list[str]]) -> None:
    lines = ["".join(p).encode("latin-1") for p in parts]
    exhaustive = [m for n, line in enumerate(lines, 1)
                  for m in engines["re"]._second_stage(line.replace(b"\n", b" "), n)]
    for name, detector in engines.items():
        assert list(detector.scan_lines(lines)) == exhaustive, name


def test_a_custom_spec_without_anchors_works_on_both_engines(fingerprinter: Fingerprinter) -> None:
    spec = Spec(Kind.MRN, "custom_chart", rb"CHART#(?P<v>[0-9]{6})",
                lambda ctx, line, m: [])  # finds, but accepts nothing
    accepting = Spec(Kind.MRN, "custom_chart", rb"CHART#(?P<v>[0-9]{6})", SPECS[4].check)
    for engine in available_engines():
        assert PhiDetector([spec], engine=engine).scan_line(b"x CHART#123456") == []
        narrowed = PhiDetector([*SPECS[:1], accepting], engine=engine, fingerprinter=fingerprinter)
        assert narrowed.kinds == {Kind.SSN, Kind.MRN}


# --------------------------------------------------------------------------------------------
# Nothing leaves the detector with a value in it.

LEAKY = (b'{"patient_ssn":"219-45-6781","dob":"1957-03-14","email":"amara.brennan12@gmail.com",'
         b'"phone":"(617) 234-5678","first_name":"Amara","mrn":"00481234"}')
VALUES = [b"219-45-6781", b"219456781", b"1957-03-14", b"amara", b"brennan", b"617", b"2345678",
          b"00481234", b"gmail", b"Amara"]


def test_matches_and_previews_never_hold_a_value(detector: PhiDetector) -> None:
    hits = list(detector.scan_blocks([Block(1, LEAKY)], previews=1))
    assert len(hits) == 1 and len(hits[0].matches) == 6
    shown = repr(hits).encode() + (hits[0].preview or "").encode()
    for value in VALUES:
        assert value not in shown


def test_preview_keeps_keys_and_masks_values() -> None:
    assert preview(b'{"patient_ssn": "219-45-6781"}') == '{"patient_ssn": "999-99-9999"}'
    assert preview(b"ssn=219456781 msg=\"dob=1957-03-14\"") == 'ssn=999999999 msg="dob=9999-99-99"'
    assert preview(b'{"name": "Ada:Lovelace", "note": "smith: fever"}') == \
        '{"name": "xxx:xxxxxxxx", "note": "xxxxx: xxxxx"}'
    assert preview(b"PID|1||00481234^^^HOSP||SMITH^ALICE\x00\xc3\xa9") == \
        "xxx|9||99999999^^^xxxx||xxxxx^xxxxx.xx"
    assert len(preview(b"x" * 10_000)) == 200


def _key_tokens(line: bytes) -> list[bytes]:
    return re.findall(rb"""([A-Za-z0-9_.$@-]+)\\?["']?[ \t]*[:=]""", line)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS + ["Smith", "John", "fever", "42", "x", "9"]),
                max_size=30))
def test_preview_shows_no_word_or_number_but_key_names(parts: list[str]) -> None:
    line = "".join(parts).encode("latin-1")
    shown = preview(line).encode()
    assert set(re.findall(rb"[0-9]", shown)) <= {b"9"}
    keys = _key_tokens(line)
    for word in re.findall(rb"[A-Za-z]+", shown):
        assert set(word) <= set(b"x") or any(word in k for k in keys), word


# --------------------------------------------------------------------------------------------
# Streaming, line numbers, fingerprints and the summary.

def test_line_numbers_and_offsets_across_blocks(detector: PhiDetector) -> None:
    lines = [b"ok"] * 5 + [b"ssn=219-45-6781\r"] + [b"ok"] * 3 + [b"x mrn=00481234"]
    found = list(detector.scan_lines(lines))
    assert [(m.line_no, m.offset, m.kind) for m in found] == [
        (6, 4, Kind.SSN), (10, 6, Kind.MRN)]
    blocks = [Block(1, b"\n".join(lines[:5])), Block(6, b"\n".join(lines[5:]))]
    assert [h.line_no for h in detector.scan_blocks(blocks)] == [6, 10]


def test_fingerprints_count_repeats_but_change_with_the_key() -> None:
    one = PhiDetector(fingerprinter=Fingerprinter(b"a" * 32))
    other = PhiDetector(fingerprinter=Fingerprinter(b"b" * 32))
    a = one.scan_line(b"ssn=219-45-6781")[0].fingerprint
    assert a == one.scan_line(b"SSN: 219456781")[0].fingerprint
    assert a != other.scan_line(b"ssn=219-45-6781")[0].fingerprint
    assert a != one.scan_line(b"ssn=219-45-6782")[0].fingerprint


def test_summary_counts_kinds_lines_and_distinct_values(detector: PhiDetector) -> None:
    lines = [b"ssn=219-45-6781", b"ok", b"ssn=219-45-6781 mrn=00481234", b"ssn=219-45-6782"]
    summary = PhiSummary()
    for hits in detector.scan_blocks([Block(1, b"\n".join(lines))], previews=1):
        summary.add(hits)
    rows = {r.kind: r for r in summary.kinds()}
    assert (rows[Kind.SSN].count, rows[Kind.SSN].first_line, rows[Kind.SSN].last_line,
            rows[Kind.SSN].distinct) == (3, 1, 4, 2)
    assert rows[Kind.MRN].count == 1 and summary.total == 4
    assert summary.lines == [1, 3, 4] and summary.lines_with_hits == 3
    assert summary.first_preview == "ssn=999-99-9999"
    assert summary.validators == {"ssn_format", "mrn_keyword"}


def test_invalid_utf8_nul_bytes_and_long_lines_are_handled(detector: PhiDetector) -> None:
    line = b"\xff\xfe\x00 ssn=219-45-6781 \x00" + b"\xc3" * 50_000 + b" mrn=00481234"
    assert kinds_of(detector, line) == {Kind.SSN, Kind.MRN}


def test_engine_choice() -> None:
    assert re2_available()
    assert available_engines()[-1] == "re" and "re2" in available_engines()
    assert PhiDetector().engine == available_engines()[0]
    assert PhiDetector(engine="re").engine == "re"
    assert PhiDetector(engine="re2").engine == "re2"
    assert ("hyperscan" in available_engines()) == hyperscan_available()


def test_preview_masks_keys_that_are_themselves_values():
    # An e-mail address used as a JSON key, and surnames before a colon in prose, are masked;
    # identifier-shaped keys stay, so the preview keeps its structure.
    from hipaacheck.detectors.phi import preview

    for line, secret in ((b"{'jane.doe@example.com': {'ssn': '524-71-3390'}}", "jane"),
                         (b"patient DOE: ssn=524-71-3390", "DOE"),
                         (b"name JANE.DOE: 524-71-3390", "JANE")):
        assert secret not in preview(line)
    assert preview(b'{"patient_ssn": "524-71-3390"} user_id: 77').startswith('{"patient_ssn"')
