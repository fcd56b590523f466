"""
The terminal summary: verdict, counts per status and per standard, and what needs attention.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hipaacheck.render.view import build_view
from hipaacheck.result import ScanResult

STYLES = {"FAIL": "bold red", "ERROR": "bold magenta", "UNVERIFIED": "bold yellow",
          "WARN": "yellow", "PASS": "green"}


def print_summary(result: ScanResult, console: Console, *, limit: int = 25) -> None:
    """Print the summary of a scan to `console`; every value is escaped."""
    view = build_view(result)
    console.print(f"[bold]{escape(view.verdict)}[/bold]")
    table = Table(title="Findings by HIPAA standard", title_justify="left")
    table.add_column("45 CFR")
    table.add_column("Safeguard")
    for status in view.statuses:
        table.add_column(status, justify="right", style=STYLES[status])
    for section in view.sections:
        table.add_row(section.standard.value, escape(section.title),
                      *(str(section.counts[s]) for s in view.statuses))
    table.add_row("all", "", *(str(view.counts[s]) for s in view.statuses), style="bold")
    console.print(table)
    rows = [row for section in view.sections for row in section.rows
            if row.finding.status.value != "PASS"]
    for row in rows[:limit]:
        f = row.finding
        console.print(f"[{STYLES[f.status.value]}]{f.status.value:<10}[/] "
                      f"{escape(f.check_id)}  {escape(f.resource)}: {escape(f.reason)}")
    if len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more in the report files.")
