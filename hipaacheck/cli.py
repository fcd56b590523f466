"""
The command line: thin Typer commands over the core, one error handler, one exit-code policy.

Reports go to stdout or files; progress and logs go to stderr. Credentials never come from
flags: they come from the environment, the AWS chain, kubeconfig files and libpq.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hipaacheck import __version__
from hipaacheck.config import json_schema, load_inventory, parse_inventory
from hipaacheck.errors import HipaacheckError, UsageError
from hipaacheck.exitcodes import FailOn, exit_code
from hipaacheck.model import Finding
from hipaacheck.registry import Registry, load_registry
from hipaacheck.render import FORMATS, write_report
from hipaacheck.render.text import print_summary
from hipaacheck.result import ScanResult
from hipaacheck.scanning import run_scan

app = typer.Typer(
    name="hipaacheck", no_args_is_help=True, add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Audit running infrastructure against the HIPAA Security Rule's technical safeguards.")
checks_app = typer.Typer(no_args_is_help=True, help="List and describe the installed checks.")
config_app = typer.Typer(no_args_is_help=True, help="Write or describe the inventory file.")
app.add_typer(checks_app, name="checks")
app.add_typer(config_app, name="config")

stderr = Console(stderr=True)
logger = logging.getLogger("hipaacheck.cli")
_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])

QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "kubernetes", "psycopg", "s3transfer",
                 "werkzeug", "moto", "sslyze", "nassl")


def _configure_logging(verbose: int, debug: bool) -> None:
    """Configure the `hipaacheck` logger only; third-party loggers stay at WARNING."""
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    package = logging.getLogger("hipaacheck")
    package.handlers[:] = [RichHandler(console=stderr, show_path=False, show_time=False)]
    package.setLevel(level)
    package.propagate = False
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _guarded(func: F) -> F:
    """Turn expected errors into one explained line on stderr and their exit code."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HipaacheckError as exc:
            if _state["debug"]:
                logger.exception("details")
            stderr.print(f"[bold red]error:[/] {escape(exc.explain())}")
            raise typer.Exit(exc.exit_code) from None
    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output on stderr (-vv for debug).")] = 0,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of errors.")] = False,
) -> None:
    _state["debug"] = debug
    _configure_logging(verbose, debug)


class _ProgressObserver:
    """Shows a progress bar on stderr while checks finish."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("scanning", total=None)

    def on_start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def on_task_done(self, check_id: str, target_id: str, findings: Sequence[Finding]) -> None:
        self.progress.update(self.task, advance=1, description=escape(f"{check_id} {target_id}"))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", style="dim"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=stderr, transient=True)


def _parse_formats(value: str) -> list[str]:
    formats = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f != "text" and f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format: unknown format(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from text, {', '.join(FORMATS)}")
    return formats


def _emit(result: ScanResult, formats: list[str], out: Path) -> None:
    """Write every file format into `out` and print the text summary on stdout."""
    for fmt in formats:
        if fmt != "text":
            path = write_report(result, fmt, out)
            stderr.print(f"wrote {escape(str(path))}")
    if "text" in formats:
        print_summary(result, Console(), limit=25)


def _interruptible() -> None:
    """Make SIGTERM behave like Ctrl-C, so a scheduler's stop still writes partial results."""
    def handler(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handler)


def _scan_and_report(inventory: Any, registry: Registry, only: list[str], formats: list[str],
                     out: Path, fail_on: FailOn) -> int:
    _interruptible()
    with _progress() as progress:
        result = run_scan(inventory, registry, only=only, observer=_ProgressObserver(progress))
    _emit(result, formats, out)
    return exit_code(result, fail_on)


@app.command()
@_guarded
def scan(
    config: Annotated[Path, typer.Option("--config", "-c", help="The inventory file.")] = Path(
        "hipaacheck.yaml"),
    only: Annotated[list[str] | None, typer.Option(
        help="Check id, id prefix (aws.rds) or family; repeatable.")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="Comma-separated: text, json, html, md.")] = "text,json,html,md",
    out: Annotated[Path, typer.Option(help="Folder for report files.")] = Path(
        "hipaacheck-report"),
    fail_on: Annotated[FailOn, typer.Option(help="Weakest status that exits 1.")] = FailOn.FAIL,
) -> None:
    """Scan the targets of the inventory and write the report."""
    formats = _parse_formats(format)
    inventory = load_inventory(config)
    raise typer.Exit(_scan_and_report(inventory, load_registry(), only or [], formats, out,
                                      fail_on))


@app.command()
@_guarded
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the report and the lab's inventory.")] = Path(
        "hipaacheck-demo"),
    keep_running: Annotated[bool, typer.Option(
        help="Leave the lab running after the scan, until Ctrl-C.")] = False,
    format: Annotated[str, typer.Option("--format", "-f")] = "text,json,html,md",
) -> None:
    """Start the built-in lab of real local services, scan it, and write the report."""
    from hipaacheck.lab.run import start_lab

    formats = _parse_formats(format)
    out = out.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="hipaacheck-lab-"))
    stderr.print("starting the lab: moto, PostgreSQL, TLS servers, Kubernetes API, log files")
    lab = start_lab(workdir)
    try:
        os.environ.update(lab.env)
        out.mkdir(parents=True, exist_ok=True)
        config = lab.write_inventory(out / "hipaacheck.yaml")
        inventory = load_inventory(config)
        code = _scan_and_report(inventory, load_registry(), [], formats, out, FailOn.FAIL)
        stderr.print(f"report: {escape(str(out / 'report.html'))} (also report.md, report.json)")
        if keep_running:
            stderr.print(f"lab running; scan it again with: hipaacheck scan -c {config}"
                         " (in this shell's environment). Ctrl-C stops it.")
            signal.pause()
    except KeyboardInterrupt:
        code = 3
    finally:
        lab.stop()
    raise typer.Exit(code)


@app.command()
@_guarded
def report(
    findings: Annotated[Path, typer.Argument(help="A JSON result written by `scan`.")],
    format: Annotated[str, typer.Option("--format", "-f", help="html or md.")] = "html",
    out: Annotated[Path, typer.Option(help="Folder for the report file.")] = Path(
        "hipaacheck-report"),
) -> None:
    """Re-render a saved JSON result without scanning again."""
    formats = _parse_formats(format)
    try:
        result = ScanResult.from_json(json.loads(findings.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{findings}: not a readable hipaacheck result "
                         f"({type(exc).__name__})") from None
    _emit(result, formats, out)


@checks_app.command("list")
@_guarded
def checks_list() -> None:
    """List every installed check with its family and citation."""
    registry = load_registry()
    table = Table("id", "family", "45 CFR", "severity", "title")
    for meta in registry.metas():
        table.add_row(meta.id, meta.family.value, ", ".join(meta.citations), meta.severity.value,
                      escape(meta.title))
    for failure in registry.failures:
        table.add_row(failure.check_id, "-", "-", "-", f"[red]failed to load ({failure.error})[/]")
    Console().print(table)


@checks_app.command("show")
@_guarded
def checks_show(check_id: Annotated[str, typer.Argument(help="A check id.")]) -> None:
    """Show one check's metadata, citations and read-only operations."""
    registry = load_registry()
    if check_id not in registry.checks:
        raise UsageError(f"no check with id {check_id}")
    meta = registry.checks[check_id].meta
    console = Console()
    console.print(f"[bold]{meta.id}[/]: {escape(meta.title)}")
    console.print(f"family {meta.family.value}; standard 45 CFR {meta.standard.value}; "
                  f"citations {', '.join(meta.citations)}; severity {meta.severity.value}")
    console.print(escape(meta.description))
    console.print(f"[bold]Remediation:[/] {escape(meta.remediation)}")
    console.print("[bold]Read-only operations:[/]")
    for op in meta.operations:
        console.print(f"  {op.system.value}: {escape(op.action)}"
                      + (f" ({escape(op.why)})" if op.why else ""))


class PermissionsFor(str, Enum):
    """The systems `hipaacheck permissions` can write a grant for."""

    AWS = "aws"
    KUBERNETES = "kubernetes"
    POSTGRES = "postgres"


@app.command()
@_guarded
def permissions(
    system: Annotated[PermissionsFor, typer.Argument(help="aws, kubernetes or postgres.")],
    only: Annotated[list[str] | None, typer.Option(help="Limit to these checks.")] = None,
) -> None:
    """Print the least-privilege read-only grant for the selected checks."""
    from hipaacheck import permissions as grants

    metas = load_registry().select(only or []).metas()
    writer = {PermissionsFor.AWS: grants.aws_policy,
              PermissionsFor.KUBERNETES: grants.kubernetes_cluster_role,
              PermissionsFor.POSTGRES: grants.postgres_role_sql}[system]
    sys.stdout.write(writer(metas))


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the inventory file."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@config_app.command("init")
@_guarded
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the file.")] = Path(
        "hipaacheck.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starting inventory."""
    from importlib.resources import files

    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = files("hipaacheck").joinpath("example.yaml").read_text(encoding="utf-8")
    parse_inventory(text, "example.yaml", env={"APP_DB_PASSWORD": "x", "AUDIT_DB_PASSWORD": "x"})
    path.write_text(text, encoding="utf-8")
    stderr.print(f"wrote {escape(str(path))}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(3)

