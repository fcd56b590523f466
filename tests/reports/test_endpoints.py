"""
The Discovered endpoints part of the transmission security section: every endpoint the scan
found, whether it was probed and why not, and the worst status of its TLS target's findings.
"""

from __future__ import annotations

import dataclasses
import json
import time
from html.parser import HTMLParser

from report_sample import MARKUP, TLS_META, endpoint_records, sample_result, tls_finding

from hipaacheck.config import ProbeEndpointsConfig, TlsEndpointConfig
from hipaacheck.discovery import ProbeRequest, plan_probes
from hipaacheck.model import (
    ENDPOINT_REASONS,
    Endpoint,
    EndpointRecord,
    Family,
    Status,
    Target,
    TargetKind,
)
from hipaacheck.render import render_html, render_markdown
from hipaacheck.render.view import (
    ENDPOINT_LIMIT,
    NO_FINDING,
    build_view,
    endpoint_reason,
)
from hipaacheck.result import ScanResult, Shard
from hipaacheck.sharding import merge

NONE_FOUND = "No endpoints were found in control planes"


def _with(result: ScanResult, **changes: object) -> ScanResult:
    return dataclasses.replace(result, **changes)  # type: ignore[arg-type]


def _record(host: str, port: int = 443, *, probed: bool, note: str, target: str | None = None,
            source: str = "aws:lab", origins: tuple[str, ...] = ()) -> EndpointRecord:
    endpoint = Endpoint(host=host, port=port, source=source, origin=f"lb/{host}",
                        via="ELBv2 listener")
    return EndpointRecord(endpoint, probed, note, target, origins)


class _Section(HTMLParser):
    """The text, the ids and the links of the HTML between `id="endpoints"` and the next h3."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.ids: list[str] = []
        self.rows = 0
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if attrs.get("id") == "endpoints":
            self.inside = True
        elif self.inside and tag == "h3":
            self.inside = False
        if self.inside:
            self.tags.append(tag)
            self.rows += tag == "tr"
            if tag == "a":
                self.hrefs.append(attrs.get("href", ""))

    def handle_data(self, data):
        if self.inside:
            self.text.append(data)


def _section(html: str) -> _Section:
    parser = _Section()
    parser.feed(html)
    return parser


# --- the view ------------------------------------------------------------------------------------

def test_rows_are_probed_worst_first_then_not_probed_each_by_address():
    view = build_view(sample_result()).endpoints
    assert view.shown
    assert [(r.address, r.probed, r.status) for r in view.rows] == [
        ("legacy.example.org:443", True, Status.FAIL),
        ("api.internal.example:8443", True, Status.UNVERIFIED),
        ("ep-01:443", True, Status.PASS),
        ("portal.example.org:443", True, Status.PASS),
        ("status.example.org:80", False, None),
        ("web.clinic.example:443", False, None)]
    legacy = view.rows[0]
    assert legacy.target == "tls:ep-08" and legacy.findings == 1
    assert [(o.source, o.resource) for o in legacy.origins] == [
        ("aws:lab", "CloudFront distribution E2LEGACY"),
        ("aws:lab", "ELBv2 listener app/legacy/19cd")]
    assert [(t.check_id, t.status, t.anchor) for t in legacy.checks] == [
        (TLS_META.id, Status.FAIL, f"g-{TLS_META.id}-FAIL")]
    assert view.rows[4].target == "" and view.rows[4].checks == ()


def test_counts_cover_every_endpoint_by_class_and_worst_status():
    view = build_view(sample_result()).endpoints
    assert (view.found, view.probed, view.not_probed, view.more) == (6, 4, 2, 0)
    assert {(t.value, t.count) for t in view.probed_by} == {
        ("directly", 2), ("through probe_endpoints.connect_to", 1),
        ("as a configured TLS endpoint", 1)}
    assert {(t.value, t.count) for t in view.not_probed_by} == {
        ("plaintext by configuration (judged by the configuration checks)", 1),
        ("probing is off for its source (set probe_endpoints)", 1)}
    assert [(t.value, t.count) for t in view.worst] == [("FAIL", 1), ("UNVERIFIED", 1),
                                                        ("PASS", 2)]


def test_error_is_worst_warn_outranks_unverified_and_an_unjudged_probe_never_passes():
    base = sample_result()
    findings = (tls_finding(Status.PASS, 20), tls_finding(Status.FAIL, 20),
                tls_finding(Status.ERROR, 20), tls_finding(Status.UNVERIFIED, 21),
                tls_finding(Status.WARN, 21), tls_finding(Status.PASS, 22))
    records = (
        _record("c.example", probed=True, note="probed", target="tls:ep-22"),
        _record("b.example", probed=True, note="probed", target="tls:ep-21"),
        _record("z.example", probed=False, note="not probed: probing is off for aws:lab "
                "(set probe_endpoints)"),
        _record("d.example", probed=True, note="probed", target="tls:ep-99"),  # nothing judged
        _record("a.example", probed=True, note="probed", target="tls:ep-20"),
        _record("y.example", probed=False, note="not probed: a wildcard host names no single "
                "endpoint"))
    view = build_view(_with(base, findings=findings, endpoints=records)).endpoints
    assert [(r.address, r.status) for r in view.rows] == [
        ("a.example:443", Status.ERROR), ("b.example:443", Status.WARN),
        ("d.example:443", None), ("c.example:443", Status.PASS),
        ("y.example:443", None), ("z.example:443", None)]
    assert [(t.status, t.check_id) for t in view.rows[0].checks] == [
        (Status.ERROR, TLS_META.id), (Status.FAIL, TLS_META.id), (Status.PASS, TLS_META.id)]
    assert view.rows[0].findings == 3 and view.rows[2].findings == 0
    assert [t.value for t in view.worst] == ["ERROR", "WARN", "PASS", NO_FINDING]
    html = render_html(_with(base, findings=findings, endpoints=records))
    assert NO_FINDING in "".join(_section(html).text)


def test_every_note_plan_probes_writes_falls_in_a_named_class():
    # Given endpoints that meet every branch of the real probe planner
    def found(host: str, port: int = 443, source: str = "aws:on", **kw) -> Endpoint:
        return Endpoint(host=host, port=port, source=source, origin=host, via="ELBv2 listener",
                        **kw)
    setting = ProbeEndpointsConfig(exclude=["skip.*"], max_endpoints=2,
                                   connect_to={"tunnel.example:443": "127.0.0.1:8443"})
    portal = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal",
                    TlsEndpointConfig(name="portal", host="portal.example", port=443))
    endpoints = [found("portal.example"), found("plain.example", 80, tls=False),
                 found("db.example", 5432, starttls="postgres",
                       unprobeable="a database whose TLS upgrade the prober does not speak"),
                 found("*.example"), found("skip.example"), found("tunnel.example"),
                 found("direct.example"), found("zz-over.example"), found("off.example", 443,
                                                                       "k8s:off")]
    request = ProbeRequest(sources={"aws:on": setting, "k8s:off": None}, configured=[portal])
    records, _ = plan_probes(endpoints, request)
    unselected, _ = plan_probes([found("x.example")],
                                dataclasses.replace(request, tls_checks=False))
    stopped, _ = plan_probes([found("y.example")],
                             dataclasses.replace(request, interrupted=True))
    # When each record is classed
    classes = {r.endpoint.host: endpoint_reason(r)
               for r in [*records, *unselected, *stopped]}
    # Then every note but the prober's own refusal lands in a named class
    named = {label for key, label in ENDPOINT_REASONS.items() if key != "unprobeable"}
    assert classes.pop("db.example") == "a database whose TLS upgrade the prober does not speak"
    assert set(classes.values()) == named
    assert classes["tunnel.example"] == "through probe_endpoints.connect_to"
    assert classes["portal.example"] == "as a configured TLS endpoint"


def test_ten_thousand_endpoints_list_a_bounded_number_of_rows():
    # Given a scan that found 10,000 endpoints, a failing one among them
    records = tuple(_record(f"host-{n:05d}.example", probed=n % 2 == 0,
                            note="probed" if n % 2 == 0 else "not probed: outside "
                            "probe_endpoints.include and exclude",
                            target="tls:ep-08" if n == 9_998 else f"tls:ep-{n % 8:02d}")
                    for n in range(10_000))
    big = _with(sample_result(), endpoints=records)
    # When the view and the reports are built
    start = time.perf_counter()
    view = build_view(big).endpoints
    html, markdown = render_html(big), render_markdown(big)
    elapsed = time.perf_counter() - start
    # Then the table lists the most urgent rows and counts the rest; the reports stay small
    assert len(view.rows) == ENDPOINT_LIMIT and view.rows[0].address == "host-09998.example:443"
    assert (view.found, view.probed, view.more, view.more_not_probed) == (
        10_000, 5_000, 10_000 - ENDPOINT_LIMIT, 5_000)
    assert _section(html).rows == ENDPOINT_LIMIT + 1  # the header row, then one per endpoint
    assert "and 9,800 more endpoints (4,800 probed, 5,000 not probed)" in html
    assert len(html.encode()) < 1024 * 1024 and len(markdown.encode()) < 512 * 1024
    assert elapsed < 5


# --- when the part is shown ----------------------------------------------------------------------

def test_no_endpoints_with_transmission_checks_says_none_were_found():
    bare = _with(sample_result(), endpoints=())
    assert any(m.family is Family.TRANSMISSION for m in bare.checks)
    view = build_view(bare).endpoints
    assert view.shown and view.rows == () and view.found == 0
    html, markdown = render_html(bare), render_markdown(bare)
    assert 'id="endpoints"' in html and "#### Discovered endpoints" in markdown
    for text in (html, markdown):
        assert NONE_FOUND in text
    assert NONE_FOUND not in render_html(sample_result())


def test_no_endpoints_and_no_transmission_check_leaves_the_part_out():
    base = sample_result()
    checks = tuple(m for m in base.checks if m.family is not Family.TRANSMISSION)
    findings = tuple(f for f in base.findings if f.check_id != TLS_META.id)
    bare = _with(base, checks=checks, findings=findings, endpoints=())
    assert not build_view(bare).endpoints.shown
    html, markdown = render_html(bare), render_markdown(bare)
    assert 'id="endpoints"' not in html and 'href="#endpoints"' not in html
    assert "Discovered endpoints" not in markdown and NONE_FOUND not in html


# --- the HTML and Markdown reports ----------------------------------------------------------------

def test_html_lists_every_row_escaped_with_links_that_land():
    marked = _record(f"{MARKUP}.example", probed=False, note="not probed: probing is off for "
                     "aws:lab (set probe_endpoints)", origins=(f"aws:lab ELBv2 listener {MARKUP}",))
    result = _with(sample_result(), endpoints=(*endpoint_records(), marked))
    html = render_html(result)
    section = _section(html)
    text = "".join(section.text)
    assert section.rows == 1 + 7 and "script" not in section.tags
    assert f"{MARKUP}.example:443" in text  # shown as text
    assert "<script>" not in html and "&lt;script&gt;" in html
    for row in endpoint_records():
        assert row.endpoint.address in text and row.note in text
    assert section.hrefs and all(h.startswith("#g-") for h in section.hrefs)
    assert {h[1:] for h in section.hrefs} <= set(section.ids)
    assert '<a href="#endpoints">Discovered endpoints</a>' in html


def test_markdown_escapes_markup_in_endpoint_rows():
    marked = _record(f"{MARKUP}.example", probed=False, note="not probed: probing is off for "
                     "aws:lab (set probe_endpoints)")
    markdown = render_markdown(_with(sample_result(), endpoints=(marked,)))
    row = next(line for line in markdown.splitlines() if "alert" in line and "ELBv2" in line)
    assert row.startswith("| \\<script\\>alert") and "<script>" not in markdown
    assert "\\|\\*bold\\*" in row  # a pipe in a host cannot split the table's cells


# --- the scan document ---------------------------------------------------------------------------

def test_json_round_trip_keeps_every_endpoint():
    result = sample_result()
    rebuilt = ScanResult.from_json(json.loads(json.dumps(result.to_json())))
    assert rebuilt.endpoints == result.endpoints == endpoint_records()
    assert build_view(rebuilt).endpoints == build_view(result).endpoints


def test_merging_two_shards_keeps_both_shards_endpoints():
    # Given the sample split in two shard results, each with its own endpoints
    whole = sample_result()
    records = endpoint_records()
    halves = (whole.targets[: len(whole.targets) // 2], whole.targets[len(whole.targets) // 2:])
    shards = []
    for index, (targets, mine) in enumerate(zip(halves, (records[:2], records[2:])), start=1):
        ids = {t.id for t in targets}
        shards.append(_with(whole, targets=targets, shard=Shard(index, 2), endpoints=mine,
                            inventory_targets=whole.targets, scope="scope-a",
                            findings=tuple(f for f in whole.findings if f.target in ids)))
    # When they are merged after their JSON round trip
    reread = [ScanResult.from_json(json.loads(json.dumps(s.to_json()))) for s in shards]
    merged = merge(reread).result
    # Then the merged result lists every endpoint of both shards, and the report all of them
    assert set(merged.endpoints) == set(records) and len(merged.endpoints) == len(records)
    view = build_view(merged).endpoints
    assert view.found == len(records)
    assert {r.address for r in view.rows} == {r.endpoint.address for r in records}
    assert next(r for r in view.rows if r.target == "tls:ep-08").status is Status.FAIL
