"""
The terminal summary: verdict, counts per status and per standard, and what needs attention.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hipaacheck.model import Status
from hipaacheck.render.view import build_view
from hipaacheck.result import ScanResult

STYLES = {"FAIL": "bold red", "ERROR": "bold magenta", "UNVERIFIED": "bold yellow",
          "WARN": "yellow", "PASS": "green"}


def print_summary(result: ScanResult, console: Console, *, limit: int = 25) -> None:
    """
    Print the summary of a scan to `console`; every value is escaped.

    Below the table come the groups of findings that need attention (every status but PASS),
    most urgent first: a lone finding names its resource, a larger group its count.
    """
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
    endpoints = view.endpoints
    if endpoints.found:
        reasons = {r.reason for r in result.endpoints}
        hint = "" if endpoints.probed else (
            " (no TLS endpoint check was selected)" if "no_tls_check" in reasons
            else " (the scan was interrupted first)" if "interrupted" in reasons
            else " (set probe_endpoints on a source to probe its endpoints)")
        console.print(f"Endpoints found in control planes: {endpoints.found}; "
                      f"probed live: {endpoints.probed}{hint}")
    groups = [g for section in view.sections for g in section.groups
              if g.status is not Status.PASS]
    for group in groups[:limit]:
        what = group.resources[0][1] if group.count == 1 else f"{group.count} resources"
        reason = group.reasons[0].value if group.reasons else ""
        console.print(f"[{STYLES[group.status.value]}]{group.status.value:<10}[/] "
                      f"{escape(group.check_id)}  {escape(what)}: {escape(reason)}")
    if len(groups) > limit:
        console.print(f"... and {len(groups) - limit} more groups in the report files.")
