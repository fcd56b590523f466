"""CSV has one row per finding, survives a round trip, and defuses spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import json

from report_sample import FORMULA, MARKUP

from hipaacheck.render.csvfile import COLUMNS, render_csv


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_one_row_per_finding_with_every_column(result):
    rows = _rows(render_csv(result))
    assert len(rows) == len(result.findings)
    assert tuple(rows[0]) == COLUMNS
    for row, f in zip(rows, result.findings):
        assert (row["check_id"], row["status"], row["target"]) == (
            f.check_id, f.status.value, f.target)
        assert json.loads(row["evidence"]) == {
            k: list(v) if isinstance(v, tuple) else v for k, v in f.evidence.items()}


def test_markup_survives_and_formulas_are_defused(result):
    resources = [row["resource"] for row in _rows(render_csv(result))]
    assert MARKUP in resources
    assert "'" + FORMULA in resources and FORMULA not in resources
