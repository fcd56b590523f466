"""
The Audit controls and Retention map sections: one row per audit store and per retained
resource, every cell traced to its check and status, "not observed" where nothing was seen.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_sample import (
    APPEND_ONLY,
    AUDIT_TABLE,
    BREACH,
    BUCKET,
    COVERAGE,
    LOCATION,
    MARKUP,
    MARKUP_TABLE,
    RETAINED_BUCKET,
    RETAINED_DB,
    SHARED,
    audit_finding,
    without_audit_evidence,
)

from hipaacheck.model import Status
from hipaacheck.render import render_html, render_markdown
from hipaacheck.render.view import (
    AUDIT_COLUMNS,
    ENTRY_LIMIT,
    STORE_LIMIT,
    Copy,
    build_view,
    copies_of,
)
from hipaacheck.result import ScanResult

NO_STORE = "The scan observed no audit store"
NO_RETENTION = "The scan observed no retention data"


class _Table(HTMLParser):
    """The body rows of the first table with class `css_class`: each cell's text, and links."""

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.rows: list[list[str]] = []
        self.links: list[list[str]] = []
        self._inside = self._done = self._body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._cell is not None and tag in ("div", "li", "p", "a", "br"):
            self._cell.append(" ")  # block boundaries read as spaces
        if tag == "table" and not self._done and self.css_class in (attrs.get("class") or ""):
            self._inside = True
        elif self._inside and tag == "tbody":
            self._body = True
        elif self._body and tag == "tr":
            self.rows.append([])
            self.links.append([])
        elif self._body and tag == "td":
            self._cell = []
        elif self._body and tag == "a":
            self.links[-1].append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if self._body and tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._inside and tag == "table":
            self._inside = self._body = False
            self._done = True

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _table(html: str, css_class: str) -> _Table:
    parser = _Table(css_class)
    parser.feed(html)
    return parser


def _store(view, target, trail):
    return next(s for s in view.audit.stores if (s.target, s.trail) == (target, trail))


def _cell(store, heading):
    index = [h for h, _ in AUDIT_COLUMNS].index(heading)
    return [(t.text, t.check_id, t.status) for t in store.cells[index].entries]


# --- the view ------------------------------------------------------------------------------------

def test_one_row_per_target_and_trail_with_a_target_wide_finding_on_every_table(result):
    view = build_view(result)
    assert [(s.target, s.trail) for s in view.audit.stores] == [
        ("aws:lab", "s3://audit-trail-bucket"), ("postgres:billing", ""),
        ("postgres:clinic", MARKUP_TABLE), ("postgres:clinic", AUDIT_TABLE)]
    shared = [("yes", SHARED.id, Status.FAIL)]
    for trail in (AUDIT_TABLE, MARKUP_TABLE):
        store = _store(view, "postgres:clinic", trail)
        assert store.label == "PostgreSQL table"
        assert _cell(store, "Shares the application's credentials") == shared


def test_cells_hold_every_observed_value_with_its_check_and_status(result):
    store = _store(build_view(result), "postgres:clinic", AUDIT_TABLE)
    assert _cell(store, "Who can write") == [("clinic_app, audit_writer", APPEND_ONLY.id,
                                              Status.FAIL)]
    assert _cell(store, "Who can change or delete") == [("clinic_app", APPEND_ONLY.id,
                                                         Status.FAIL)]
    assert _cell(store, "Breach query answerable") == [
        ("answerable: indexed by user and by patient", BREACH.id, Status.PASS)]
    assert _cell(store, "Where it lives") == []
    assert [(t.check_id, t.status) for t in store.checks] == [
        (APPEND_ONLY.id, Status.FAIL), (SHARED.id, Status.FAIL), (BREACH.id, Status.PASS)]
    assert all(t.anchor == f"g-{t.check_id}-{t.status.value}" for t in store.checks)


def test_app_can_modify_reads_as_who_can_change_the_store(result):
    bucket = _store(build_view(result), "aws:lab", "s3://audit-trail-bucket")
    assert bucket.label == "S3 bucket"
    assert _cell(bucket, "Who can change or delete") == [
        ("the application: not known", BUCKET.id, Status.WARN)]
    assert _cell(bucket, "How long it is kept") == [
        ("Object Lock COMPLIANCE, 365 days", BUCKET.id, Status.WARN)]


def test_a_target_wide_finding_without_a_named_store_gets_a_row_of_its_own(result):
    billing = _store(build_view(result), "postgres:billing", "")
    assert billing.name.startswith("every audit store of this target")
    assert _cell(billing, "Shares the application's credentials") == [
        ("unknown", SHARED.id, Status.UNVERIFIED)]
    assert [_cell(billing, h) for h, _ in AUDIT_COLUMNS[:-1]] == [[]] * (len(AUDIT_COLUMNS) - 1)


def test_audit_findings_that_name_no_store_are_counted_apart(result):
    storeless = build_view(result).audit.storeless
    assert [(g.check_id, g.status, g.count) for g in storeless] == [
        (LOCATION.id, Status.UNVERIFIED, 1)]


def test_the_table_is_bounded_by_stores_and_each_cell_by_values(result):
    many = tuple(audit_finding(APPEND_ONLY, "postgres:big", f"audit.t{n:05d}", Status.PASS,
                               evidence={"trail": f"audit.t{n:05d}", "trail_writers": ("w",)})
                 for n in range(STORE_LIMIT * 3))
    noisy = tuple(audit_finding(APPEND_ONLY, "postgres:big", "audit.noisy", Status.FAIL,
                                evidence={"trail": "audit.noisy", "trail_writers": (f"w{n}",)})
                  for n in range(ENTRY_LIMIT + 4))
    big = ScanResult(**{**result.__dict__, "findings": noisy + many})
    audit = build_view(big).audit
    assert len(audit.stores) == STORE_LIMIT and audit.more == STORE_LIMIT * 2 + 1
    listed = [s.trail for s in audit.stores if s.target == "postgres:big"]
    assert listed == sorted(listed) and "audit.noisy" in listed  # the failing store is kept
    writers = next(s for s in audit.stores if s.trail == "audit.noisy").cells[0]
    assert len(writers.entries) == ENTRY_LIMIT and writers.more == 4
    html = render_html(big)
    assert len(_table(html, "audit-controls").rows) == STORE_LIMIT
    assert f"and {STORE_LIMIT * 2 + 1:,} more audit stores, listed in report.json." in html


def test_retention_rows_follow_every_shape_of_copies_the_checks_emit(result):
    rows = {row.resource: row for row in build_view(result).retention.rows}
    assert list(rows) == [RETAINED_BUCKET, "audit-trail-bucket", RETAINED_DB]  # worst first
    (archive,) = rows[RETAINED_BUCKET].sources
    assert (archive.check_id, archive.status, archive.incomplete) == (COVERAGE.id, Status.FAIL,
                                                                      True)
    assert archive.copies == (Copy("primary", "us-east-1", "until deleted (nothing expires it)"),
                              Copy("versions", "us-east-1", "30 days"))
    assert rows[RETAINED_BUCKET].store == "s3_bucket"
    assert rows[RETAINED_DB].sources[0].copies == (
        Copy("snapshot", "", "35 days"), Copy("backup-vault", "", "2,192 days (about 6 years)"))
    (lock,) = rows["audit-trail-bucket"].sources
    assert lock.copies == (Copy("retention period", "", "365 days (about 1 year)"),)


@pytest.mark.parametrize(("evidence", "expected"), [
    ({"copies": "primary"}, (Copy("primary", "", "not observed"),)),
    ({"copies": "primary", "retention_days": 7}, (Copy("primary", "", "7 days"),)),
    ({"copies": ("a", "b"), "retention_days": 7},  # not parallel: never paired by guess
     (Copy("a", "", "not observed"), Copy("b", "", "not observed"),
      Copy("retention period", "", "7 days"))),
    ({"retention_days": None}, (Copy("retention period", "", "no retention period set"),)),
    ({"retention_days": "unknown"}, (Copy("retention period", "", "unknown"),)),
    ({"copies": ["snapshot:35d"], "retention_days": [35]}, (Copy("snapshot", "", "35 days"),)),
    ({"copies": ()}, ()),
])
def test_copies_are_read_tolerantly_and_never_guessed(evidence, expected):
    assert copies_of(evidence) == expected


# --- the HTML and Markdown reports ----------------------------------------------------------------

def test_html_audit_table_has_a_row_per_store_and_no_blank_cell(result):
    html = render_html(result)
    table = _table(html, "audit-controls")
    assert len(table.rows) == 4
    assert all(len(row) == 1 + len(AUDIT_COLUMNS) and all(row) for row in table.rows)
    events = next(row for row in table.rows if row[0].startswith(AUDIT_TABLE))
    assert events[1] == f"clinic_app, audit_writer FAIL {APPEND_ONLY.id}"
    assert events[3] == "not observed"
    assert events[5] == f"answerable: indexed by user and by patient PASS {BREACH.id}"
    assert events[6] == f"yes FAIL {SHARED.id}"
    assert sum(cell == "not observed" for row in table.rows for cell in row) == 12


def test_html_audit_table_escapes_markup_and_links_each_value_to_its_findings(result):
    html = render_html(result)
    table = _table(html, "audit-controls")
    marked = next(row for row in table.rows if row[0].startswith("audit.<script>"))
    assert marked[0].startswith(MARKUP_TABLE) and marked[1].startswith(MARKUP)
    assert "<script>" not in html
    assert f'href="#g-{APPEND_ONLY.id}-FAIL"' in html
    assert all(link.startswith("#g-") for row in table.links for link in row)


def test_html_retention_map_lists_each_resource_with_its_copies(result):
    table = _table(render_html(result), "retention")
    assert [row[0].split()[0] for row in table.rows] == [RETAINED_BUCKET, "audit-trail-bucket",
                                                        RETAINED_DB]
    assert table.rows[2][1] == (f"PASS {COVERAGE.id} snapshot: 35 days backup-vault: "
                                "2,192 days (about 6 years)")


def test_contents_list_both_sections(result):
    html = render_html(result)
    assert '<a href="#audit-controls">Audit controls</a>' in html
    assert '<a href="#retention">Retention map</a>' in html


def _md_row(markdown: str, first_cell: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell}"))
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_audit_table_carries_the_same_cells(result):
    markdown = render_markdown(result)
    row = _md_row(markdown, AUDIT_TABLE)
    check = APPEND_ONLY.id.replace("_", "\\_")
    assert len(row) == 1 + len(AUDIT_COLUMNS)
    assert row[1] == f"clinic\\_app, audit\\_writer (FAIL, {check})"
    assert row[3] == "not observed"
    marked = _md_row(markdown, "audit.\\<script\\>")
    assert marked[1].startswith("\\<script\\>alert")  # escaped, so it prints as text


def test_audit_checks_that_saw_no_store_still_show_in_the_section(result):
    blind = audit_finding(LOCATION, "postgres:clinic", "audit-tables", Status.UNVERIFIED,
                          reason="Could not observe the audit tables: permission denied.")
    only = ScanResult(**{**without_audit_evidence(result).__dict__,
                         "findings": without_audit_evidence(result).findings + (blind,)})
    html = render_html(only)
    assert NO_STORE in html
    assert "Could not observe the audit tables: permission denied." in html.split(
        'id="audit-controls"')[1].split('id="retention"')[0]


def test_without_audit_evidence_both_sections_say_nothing_was_observed(result):
    bare = without_audit_evidence(result)
    html, markdown = render_html(bare), render_markdown(bare)
    for text in (html, markdown):
        assert NO_STORE in text and NO_RETENTION in text
    assert 'class="audit-controls"' not in html and 'class="retention"' not in html
    assert NO_STORE not in render_html(result) and NO_RETENTION not in render_html(result)
