"""
The logs lab: realistic application and edge log files, some leaking synthetic patients'
identifiers, some clean.

Everything is generated from a seeded random, so every run writes the same bytes. The patients
are synthetic (their numbers pass the detector's validators but belong to nobody); the same
generator builds the benchmark corpus in `benchmarks/phi_detector.py`, where each leaking line
carries the kinds of identifier it holds as its label.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hipaacheck.detectors.phi import Kind, luhn_ok, valid_mbi, valid_nanp, valid_ssn
from hipaacheck.lab.base import LabPart

SEED = 20261203
_BASE_TIME = dt.datetime(2026, 12, 3, 8, 0, 0, tzinfo=dt.UTC)

_FIRST = ("Amara", "Bastian", "Carmen", "Dmitri", "Esther", "Farid", "Greta", "Hiroshi",
          "Ines", "Joaquin", "Kamala", "Lorenzo", "Marisol", "Nikolai", "Odette", "Priya",
          "Quentin", "Rosalind", "Santiago", "Tamsin", "Ulrich", "Valentina", "Wendell",
          "Ximena", "Yusuf", "Zofia")
_LAST = ("Abernathy", "Brennan", "Castellano", "Dubois", "Eriksen", "Fairbanks", "Galloway",
         "Hargrove", "Iglesias", "Jablonski", "Kowalczyk", "Lindqvist", "Montgomery",
         "Nakamura", "Okonkwo", "Pemberton", "Quintero", "Rasmussen", "Szymanski", "Thornbury",
         "Underhill", "Villanueva", "Whitfield", "Yamaguchi", "Zielinski")
_STREETS = ("Maple", "Juniper", "Harbor View", "Old Mill", "Chestnut", "Willow Creek", "Bayside")
_STREET_TYPES = ("Street", "Ave", "Road", "Lane", "Drive", "Court", "Blvd")
_AREA_CODES = ("212", "312", "415", "617", "206", "303", "404", "512", "713", "614", "503",
               "702", "215", "305", "612")
_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "aol.com")
_MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"


@dataclass(frozen=True)
class SyntheticPatient:
    """One made-up patient whose identifiers pass the detector's validators."""

    first: str
    last: str
    ssn: str
    dob: dt.date
    mrn: str
    phone: str
    email: str
    mbi: str
    card: str
    street: str
    member_id: str
    npi: str


def _with_check_digit(rnd: random.Random, prefix: str, length: int, luhn_prefix: str = "") -> str:
    body = prefix + "".join(rnd.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_ok(luhn_prefix + body + d))


def _ssn(rnd: random.Random) -> str:
    while True:
        digits = f"{rnd.randint(1, 899):03d}{rnd.randint(1, 99):02d}{rnd.randint(1, 9999):04d}"
        if valid_ssn(digits):
            return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def _phone(rnd: random.Random) -> str:
    while True:
        npa = rnd.choice(_AREA_CODES)
        nxx = f"{rnd.randint(2, 9)}{rnd.randint(0, 9)}{rnd.randint(0, 9)}"
        line = f"{rnd.randint(0, 9999):04d}"
        if valid_nanp(npa + nxx + line) and nxx != "555":
            return f"{npa}-{nxx}-{line}"


def _mbi(rnd: random.Random) -> str:
    def a() -> str:
        return rnd.choice(_MBI_ALPHA)

    def an() -> str:
        return rnd.choice(_MBI_ALPHA + "0123456789")

    def n() -> str:
        return str(rnd.randint(0, 9))

    value = str(rnd.randint(1, 9)) + a() + an() + n() + a() + an() + n() + a() + a() + n() + n()
    assert valid_mbi(value)
    return value


def synthetic_patients(count: int, seed: int = SEED) -> list[SyntheticPatient]:
    """`count` deterministic synthetic patients."""
    rnd = random.Random(seed)
    patients = []
    for _ in range(count):
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        dob = dt.date(1928, 1, 1) + dt.timedelta(days=rnd.randint(0, 30000))
        patients.append(SyntheticPatient(
            first=first, last=last, ssn=_ssn(rnd), dob=dob,
            mrn=f"{rnd.randint(10**6, 10**8 - 1):08d}", phone=_phone(rnd),
            email=f"{first.lower()}.{last.lower()}{rnd.randint(1, 99)}@{rnd.choice(_MAIL_DOMAINS)}",
            mbi=_mbi(rnd), card=_with_check_digit(rnd, "4", 16),
            street=f"{rnd.randint(1, 9999)} {rnd.choice(_STREETS)} {rnd.choice(_STREET_TYPES)}",
            member_id=f"W{rnd.randint(10**8, 10**9 - 1)}",
            npi=_with_check_digit(rnd, "1", 10, luhn_prefix="80840")))
    return patients


# --------------------------------------------------------------------------------------------
# Line generators. Clean lines are full of hard negatives: epoch timestamps, UUIDs, IPs,
# order and transaction ids, AWS account ids, HDFS block ids, version strings.

LabelledLine = tuple[bytes, frozenset[Kind]]


class SyntheticLogs:
    """
    Deterministic log lines in several formats: clean operations lines and leaking lines
    labelled with the kinds of identifier they hold.
    """

    FORMATS = ("nginx", "app_json", "postgres", "syslog", "k8s", "hl7", "fhir", "x12", "java",
               "alb", "hard")

    def __init__(self, seed: int = SEED, patients: int = 200) -> None:
        self.rnd = random.Random(seed)
        self.patients = synthetic_patients(patients, seed)
        self.time = _BASE_TIME

    def _tick(self) -> dt.datetime:
        self.time += dt.timedelta(milliseconds=self.rnd.randint(1, 900))
        return self.time

    def _uuid(self) -> str:
        h = f"{self.rnd.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def _ip(self) -> str:
        r = self.rnd
        return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _patient(self) -> SyntheticPatient:
        return self.rnd.choice(self.patients)

    def clean(self, fmt: str) -> bytes:
        """One ordinary operations line in format `fmt`, with no identifier in it."""
        return _CLEAN[fmt](self).encode()

    def leaking(self, fmt: str) -> LabelledLine:
        """One line in format `fmt` that leaks a patient's identifiers, and their kinds."""
        text, kinds = self.rnd.choice(_LEAKS[fmt])(self, self._patient())
        return text.encode(), frozenset(kinds)


def _clean_nginx(g: SyntheticLogs) -> str:
    t = g._tick().strftime("%d/%b/%Y:%H:%M:%S +0000")
    path = g.rnd.choice([
        f"/api/v2/orders/{g.rnd.randint(10**15, 10**16 - 1)}",
        f"/api/v2/appointments?clinic={g.rnd.randint(1, 400)}&page={g.rnd.randint(1, 9)}",
        f"/static/app.{g.rnd.getrandbits(32):08x}.js", "/healthz",
        f"/api/v2/transactions/TXN-{g.rnd.randint(10**9, 10**10 - 1)}",
        f"/api/v2/sessions/{g._uuid()}"])
    return (f'{g._ip()} - - [{t}] "GET {path} HTTP/1.1" {g.rnd.choice([200, 200, 304, 404])} '
            f'{g.rnd.randint(200, 90000)} "-" "Mozilla/5.0 (X11; Linux x86_64) '
            f'AppleWebKit/537.36 Chrome/131.0.{g.rnd.randint(1000, 6999)}.{g.rnd.randint(10, 99)}" '
            f'rt={g.rnd.random():.3f} uct="0.00{g.rnd.randint(1, 9)}"')


def _clean_app(g: SyntheticLogs) -> str:
    t = g._tick()
    record = {
        "ts": int(t.timestamp() * 1000), "level": g.rnd.choice(["info", "info", "warn"]),
        "logger": g.rnd.choice(["api.handlers", "billing.worker", "scheduler"]),
        "request_id": g._uuid(), "trace_id": f"{g.rnd.getrandbits(128):032x}",
        "user_id": g.rnd.randint(1000, 99999), "latency_ms": g.rnd.randint(1, 3000),
        "msg": g.rnd.choice(["request completed", "cache miss", "retrying upstream call",
                             "appointment slots refreshed", "invoice batch queued"]),
        "order_id": g.rnd.randint(10**15, 10**16 - 1), "version": "v1.24.3",
        "aws_account_id": f"{g.rnd.randint(10**11, 10**12 - 1)}",
        "epoch": int(t.timestamp()),
    }
    return json.dumps(record, separators=(",", ":"))


def _clean_postgres(g: SyntheticLogs) -> str:
    t = g._tick().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return (f"{t} UTC [{g.rnd.randint(100, 60000)}] app@clinic LOG:  duration: "
            f"{g.rnd.randint(0, 900)}.{g.rnd.randint(0, 999):03d} ms  statement: SELECT id, "
            f"status FROM appointments WHERE clinic_id = {g.rnd.randint(1, 400)} AND "
            f"starts_at > to_timestamp({int(g.time.timestamp())}) LIMIT 50")


def _clean_syslog(g: SyntheticLogs) -> str:
    t, r = g._tick().strftime("%b %d %H:%M:%S"), g.rnd
    return g.rnd.choice([
        (f"{t} ip-10-0-{r.randint(0, 255)}-{r.randint(1, 254)} kernel: [{r.randint(1, 99999)}"
         f".{r.randint(0, 999999):06d}] eth0: renamed from veth{r.getrandbits(24):06x}"),
        (f"{t} node-{r.randint(1, 9)} hdfs: Received block blk_-{r.randint(10**18, 9 * 10**18)}"
         f" of size {r.randint(10**6, 10**8)} from /{g._ip()}"),
        (f"{t} node-{g.rnd.randint(1, 9)} systemd[1]: Started session {g.rnd.randint(1, 9999)} "
        f"of user deploy (pid {g.rnd.randint(100, 99999)})."),
    ])


def _clean_k8s(g: SyntheticLogs) -> str:
    t = g._tick().strftime("%m%d %H:%M:%S.%f")
    return (f'I{t}       1 controller.go:{g.rnd.randint(10, 900)}] "Reconciled object" '
            f'pod="clinic/api-{g.rnd.getrandbits(40):010x}" uid="{g._uuid()}" '
            f'resourceVersion="{g.rnd.randint(10**6, 10**9)}" image="api:1.{g.rnd.randint(0, 40)}'
            f'.{g.rnd.randint(0, 9)}" account="arn:aws:iam::{g.rnd.randint(10**11, 10**12 - 1)}'
            f':role/api"')


def _clean_hl7(g: SyntheticLogs) -> str:
    t = g._tick().strftime("%Y%m%d%H%M%S")
    return (f"{g._tick().isoformat()} INFO mllp: ACK sent MSH|^~\\&|ENGINE|HOSP|EPIC|HOSP|{t}||"
            f"ACK^A01|{g.rnd.randint(10**6, 10**7)}|P|2.5.1\\rMSA|AA|{g.rnd.randint(10**6, 10**7)}")


def _clean_fhir(g: SyntheticLogs) -> str:
    return (f'{g._tick().isoformat()} INFO fhir: GET /fhir/Appointment?date=ge2026-12-03 200 '
            f'{{"resourceType":"Bundle","id":"{g._uuid()}","total":{g.rnd.randint(0, 90)}}}')


def _clean_x12(g: SyntheticLogs) -> str:
    t, n = g._tick(), g.rnd.randint(10**8, 10**9 - 1)
    return (f"{t.isoformat()} INFO edi: 270 out ISA*00*          *00*          *ZZ*CLINIC   "
            f"*ZZ*PAYER    *{t:%y%m%d}*{t:%H%M}*^*00501*{n}*0*P*:~GS*HS*CLINIC*PAYER*"
            f"{t:%Y%m%d}*{t:%H%M}*{n % 10**4}*X*005010X279A1~ST*270*0001*005010X279A1~"
            f"BHT*0022*13*{n}*{t:%Y%m%d}*{t:%H%M}~NM1*PR*2*ACME HEALTH PLAN*****PI*"
            f"{g.rnd.randint(10**8, 10**9 - 1)}~")


def _clean_java(g: SyntheticLogs) -> str:
    t, r = g._tick().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3], g.rnd
    return r.choice([
        (f"{t} ERROR [http-nio-8080-exec-{r.randint(1, 40)}] o.h.e.j.s.SqlExceptionHelper - "
         f"could not execute statement; SQL [update appointments set status=? where id=?]; "
         f"constraint [fk_clinic_{r.randint(1, 9)}]"),
        (f"\tat com.clinic.api.PatientController.search(PatientController.java:"
         f"{r.randint(10, 900)}) ~[clinic-api-2.{r.randint(0, 30)}.{r.randint(0, 9)}.jar:?]"),
        (f"{t} WARN  [scheduler-{r.randint(1, 4)}] c.c.jobs.Reminders - batch "
         f"{r.randint(10**6, 10**7)} took {r.randint(100, 90000)} ms for "
         f"{r.randint(1, 500)} appointments (order {r.randint(10**15, 10**16 - 1)})"),
    ])


def _clean_alb(g: SyntheticLogs) -> str:
    t, r = g._tick(), g.rnd
    account = r.randint(10**11, 10**12 - 1)
    return (f"https {t.isoformat()}Z app/clinic-alb/{r.getrandbits(64):016x} {g._ip()}:"
            f"{r.randint(1024, 65535)} {g._ip()}:8443 0.00{r.randint(1, 9)} 0.0{r.randint(10, 99)}"
            f" 0.000 200 200 {r.randint(100, 900)} {r.randint(100, 90000)} \"GET https://api."
            f"clinic.example:443/v2/slots?clinic={r.randint(1, 400)}&day={t:%Y-%m-%d} HTTP/1.1\" "
            f"\"okhttp/4.12.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:"
            f"us-east-1:{account}:targetgroup/api/{r.getrandbits(64):016x} \"Root=1-"
            f"{r.getrandbits(32):08x}-{r.getrandbits(96):024x}\" \"-\" \"arn:aws:acm:us-east-1:"
            f"{account}:certificate/{g._uuid()}\" 0 {t.isoformat()}Z \"forward\"")


def _luhn_digits(rnd: random.Random, length: int) -> str:
    return _with_check_digit(rnd, str(rnd.randint(3, 6)), length)


def _clean_hard(g: SyntheticLogs) -> str:
    """Operations lines full of numbers an identifier validator would accept on its own."""
    r, p = g.rnd, g._patient()
    ssn_like, phone_like = p.ssn.replace("-", ""), p.phone.replace("-", "")
    return r.choice([
        (f'{{"order_id": "{_luhn_digits(r, 16)}", "txn": "TXN-{_luhn_digits(r, 12)}", '
         f'"amount_cents": {r.randint(100, 99999)}, "resource_id": {ssn_like}}}'),
        (f"bytes_sent={phone_like} latency_us={r.randint(10**6, 10**9)} "
         f"shard={ssn_like} ts={int(g._tick().timestamp() * 1000)}"),
        (f'{{"created_at": "{p.dob.isoformat()}", "updated_at": "{g.time:%Y-%m-%d}", '
         f'"valid_until": "{p.dob:%m/%d/%Y}", "member_count": {r.randint(1, 90)}}}'),
        (f"notify: sent via noreply@{r.choice(_MAIL_DOMAINS)} to alerts@clinic.org and "
         f"pager@oncall.svc.cluster.local (ticket {r.randint(10**5, 10**6)})"),
        (f"assume arn:aws:iam::{r.randint(10**11, 10**12 - 1)}:role/api account_id="
         f"{r.randint(10**11, 10**12 - 1)} image=registry/api:1.{r.randint(0, 40)}."
         f"{r.randint(0, 9)}"
         f" sha256:{r.getrandbits(256):064x}"),
        (f"trace_id={r.getrandbits(128):032x} span_id={r.getrandbits(64):016x} "
         f"patient_portal_version=2.{r.randint(0, 9)}.{r.randint(0, 9)} "
         f"request_id={g._uuid()} uptime_s={r.randint(10**6, 10**9)}"),
        (f"hdfs: blk_{_luhn_digits(r, 16)} replicated to 3 nodes; gc pause "
         f"{r.randint(1, 999)} ms; heap {r.randint(10**8, 10**10)} bytes; "
         f"build 2026.{r.randint(1, 12):02d}{r.randint(1, 28):02d}.{r.randint(1000, 9999)}"),
    ])


_CLEAN: dict[str, Callable[[SyntheticLogs], str]] = {
    "nginx": _clean_nginx, "app_json": _clean_app, "postgres": _clean_postgres,
    "syslog": _clean_syslog, "k8s": _clean_k8s, "hl7": _clean_hl7, "fhir": _clean_fhir,
    "x12": _clean_x12, "java": _clean_java, "alb": _clean_alb, "hard": _clean_hard,
}

_Leak = Callable[[SyntheticLogs, SyntheticPatient], tuple[str, set[Kind]]]


def _leak_nginx_search(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    line = _clean_nginx(g).replace(
        "GET /", f"GET /api/v2/patients/search?email={p.email.replace('@', '%40')}"
                 f"&phone={p.phone}&x=/", 1)
    return line, {Kind.EMAIL, Kind.PHONE}


def _leak_nginx_dob(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    line = _clean_nginx(g).replace(
        "GET /", f"GET /api/v2/eligibility?member_id={p.member_id}&dob={p.dob.isoformat()}&x=/", 1)
    return line, {Kind.HEALTH_PLAN_ID, Kind.DATE_OF_BIRTH}


def _leak_app_body(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    record = json.loads(_clean_app(g))
    record.update(level="debug", msg="request body", body={"patient": {
        "first_name": p.first, "last_name": p.last, "dob": p.dob.isoformat(), "ssn": p.ssn}})
    return json.dumps(record), {Kind.PERSON_NAME, Kind.DATE_OF_BIRTH, Kind.SSN}


def _leak_app_contact(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    record = json.loads(_clean_app(g))
    record.update(msg=f"reminder sent to {p.email} for patient MRN {p.mrn}",
                  patient_phone=f"({p.phone[:3]}) {p.phone[4:]}")
    return json.dumps(record), {Kind.EMAIL, Kind.MRN, Kind.PHONE}


def _leak_app_patient(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    record = json.loads(_clean_app(g))
    record.update(msg="appointment booked", patient={
        "id": g.rnd.randint(1, 999), "name": f"{p.first} {p.last}",
        "phone": p.phone.replace("-", ".")})
    return json.dumps(record), {Kind.PERSON_NAME, Kind.PHONE}


def _leak_app_card(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    record = json.loads(_clean_app(g))
    record.update(level="error", msg="payment declined", card_number=p.card,
                  billing_address=p.street)
    return json.dumps(record), {Kind.PAYMENT_CARD, Kind.STREET_ADDRESS}


def _leak_pg_where(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return ((f"{t} UTC [{g.rnd.randint(100, 60000)}] app@clinic LOG:  statement: SELECT * FROM "
            f"patients WHERE mrn = '{p.mrn}' AND date_of_birth = '{p.dob.isoformat()}'"),
            {Kind.MRN, Kind.DATE_OF_BIRTH})


def _leak_pg_unique(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return ((f"{t} UTC [{g.rnd.randint(100, 60000)}] app@clinic DETAIL:  Key (ssn)=({p.ssn}) "
            f"already exists."), {Kind.SSN})


def _leak_syslog(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%b %d %H:%M:%S")
    return ((f"{t} fax-gw-1 faxd[{g.rnd.randint(100, 9999)}]: job {g.rnd.randint(1, 99999)} "
            f"delivered to +1 {p.phone.replace('-', ' ')}"),
            {Kind.PHONE})


def _leak_k8s(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%m%d %H:%M:%S.%f")
    return ((f'I{t}       1 eligibility.go:88] "eligibility check" member_id="{p.member_id}" '
            f'mbi="{p.mbi}" npi="{p.npi}"'), {Kind.HEALTH_PLAN_ID, Kind.MEDICARE_ID, Kind.NPI})


def _leak_hl7(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%Y%m%d%H%M%S")
    return ((f"{g.time.isoformat()} INFO mllp: inbound MSH|^~\\&|EPIC|HOSP|ENGINE|HOSP|{t}||"
            f"ADT^A01|{g.rnd.randint(10**6, 10**7)}|P|2.5.1\\rPID|1||{p.mrn}^^^HOSP^MR||"
            f"{p.last.upper()}^{p.first.upper()}||{p.dob:%Y%m%d}|F"),
            {Kind.HL7_PID, Kind.MRN, Kind.PERSON_NAME, Kind.DATE_OF_BIRTH})


def _leak_fhir(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    resource = {"resourceType": "Patient", "id": g._uuid(),
                "name": [{"family": p.last, "given": [p.first]}],
                "birthDate": p.dob.isoformat()}
    return (f"{g._tick().isoformat()} DEBUG fhir: response {json.dumps(resource)}",
            {Kind.FHIR_PATIENT, Kind.PERSON_NAME, Kind.DATE_OF_BIRTH})


def _leak_x12(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    line = _clean_x12(g).replace("~NM1*PR*", f"~HL*2*1*22*0~NM1*IL*1*{p.last.upper()}*"
                                 f"{p.first.upper()}****MI*{p.member_id}~DMG*D8*{p.dob:%Y%m%d}"
                                 "*F~NM1*PR*", 1)
    return line, {Kind.X12_MEMBER, Kind.DATE_OF_BIRTH}


def _leak_java(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    t = g._tick().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return ((f"{t} ERROR [http-nio-8080-exec-{g.rnd.randint(1, 40)}] o.h.e.j.s.SqlExceptionHelper"
             f" - ERROR: canceling statement due to statement timeout Where: SQL statement "
             f"\"SELECT * FROM patients WHERE ssn = '{p.ssn}' AND last_name = '{p.last}'\""),
            {Kind.SSN, Kind.PERSON_NAME})


def _leak_alb(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    line = _clean_alb(g).replace("/v2/slots?", f"/v2/patients?last_name={p.last}&dob="
                                 f"{p.dob.isoformat()}&", 1)
    return line, {Kind.PERSON_NAME, Kind.DATE_OF_BIRTH}


def _leak_hard(g: SyntheticLogs, p: SyntheticPatient) -> tuple[str, set[Kind]]:
    record = {"order_id": _luhn_digits(g.rnd, 16), "subscriber_id": p.member_id,
              "amount_cents": g.rnd.randint(100, 99999)}
    return json.dumps(record), {Kind.HEALTH_PLAN_ID}


_LEAKS: dict[str, tuple[_Leak, ...]] = {
    "nginx": (_leak_nginx_search, _leak_nginx_dob),
    "app_json": (_leak_app_body, _leak_app_contact, _leak_app_patient, _leak_app_card),
    "postgres": (_leak_pg_where, _leak_pg_unique),
    "syslog": (_leak_syslog,), "k8s": (_leak_k8s,), "hl7": (_leak_hl7,), "fhir": (_leak_fhir,),
    "x12": (_leak_x12,), "java": (_leak_java,), "alb": (_leak_alb,), "hard": (_leak_hard,),
}


# --------------------------------------------------------------------------------------------
# The lab itself.

def _write(path: Path, lines: list[bytes], compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(lines) + b"\n"
    if compress:
        # mtime=0 keeps the gzip bytes identical from run to run.
        with gzip.GzipFile(path, "wb", mtime=0) as out:
            out.write(data)
    else:
        path.write_bytes(data)


def _file(g: SyntheticLogs, fmts: tuple[str, ...], count: int, leaks: int) -> list[bytes]:
    lines = [g.clean(g.rnd.choice(fmts)) for _ in range(count)]
    for i in sorted(g.rnd.sample(range(count), leaks)):
        lines[i] = g.leaking(g.rnd.choice(fmts))[0]
    return lines


def start_logs_lab(workdir: Path) -> LabPart:
    """
    Write the lab's log files under `workdir/logs` and return the inventory pointing at them.

    Sink `app` (`app/*.log`, which takes in rotated copies): `api.log` leaks identifiers
    (FAIL), `api.log.1.gz` and `worker.log` are clean (PASS). Sink `edge`
    (`nginx/access.log` and its rotations): `access.log` is clean (PASS), the rotated
    `access.log-20261202.gz` leaks search parameters (FAIL).
    """
    root = Path(workdir) / "logs"
    g = SyntheticLogs(SEED)
    _write(root / "app" / "api.log", _file(g, ("app_json", "postgres", "hl7", "fhir"), 600, 6))
    _write(root / "app" / "api.log.1.gz", _file(g, ("app_json", "postgres"), 800, 0), True)
    _write(root / "app" / "worker.log", _file(g, ("k8s", "syslog"), 400, 0))
    _write(root / "nginx" / "access.log", _file(g, ("nginx",), 800, 0))
    _write(root / "nginx" / "access.log-20261202.gz", _file(g, ("nginx",), 800, 4), True)
    inventory = {"logs": {"sinks": [
        {"name": "app", "paths": [str(root / "app" / "*.log")]},
        {"name": "edge", "paths": [str(root / "nginx" / "access.log")]},
    ]}}
    return LabPart(name="logs", inventory=inventory, notes=[
        (f"log files under {root}: app/api.log and nginx/access.log-20261202.gz leak synthetic "
        "patients' identifiers; the others are clean")])
