"""
The command line: thin Typer commands over the core, one error handler, one exit-code policy.

Reports go to stdout or files; progress and logs go to stderr. Credentials never come from
flags: they come from the environment, the AWS chain, kubeconfig files and libpq.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from typer.core import TyperGroup

from hipaacheck.config import json_schema, load_inventory, parse_inventory
from hipaacheck.errors import HipaacheckError, UsageError
from hipaacheck.exitcodes import FailOn, exit_code
from hipaacheck.history import DEFAULT_KEEP, History, Retention, default_path
from hipaacheck.model import Finding, Severity
from hipaacheck.registry import Registry, load_registry
from hipaacheck.render import FORMATS, ReportOptions, write_report
from hipaacheck.render.text import print_summary
from hipaacheck.result import ScanResult, Shard
from hipaacheck.scanning import run_scan
from hipaacheck.waivers import Waiver, apply_waivers, load_waivers, waiver_notes

app = typer.Typer(
    name="hipaacheck", no_args_is_help=True, add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Audit running infrastructure against the HIPAA Security Rule's technical safeguards.")
checks_app = typer.Typer(no_args_is_help=True, help="List and describe the installed checks.")
config_app = typer.Typer(no_args_is_help=True, help="Write or describe the inventory file.")
history_app = typer.Typer(no_args_is_help=True, help="List and show the stored scan history.")
app.add_typer(checks_app, name="checks")
app.add_typer(config_app, name="config")
app.add_typer(history_app, name="history")

stderr = Console(stderr=True)
logger = logging.getLogger("hipaacheck.cli")
_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])

QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "kubernetes", "psycopg", "s3transfer",
                 "weasyprint", "fontTools",
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
        except KeyboardInterrupt:
            # Outside the runner (loading, writing): nothing partial to write, still exit 3.
            stderr.print("[bold yellow]interrupted[/]")
            raise typer.Exit(3) from None
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


_FORMAT_HELP = f"Comma-separated: text, {', '.join(FORMATS)}."


def _parse_formats(value: str) -> list[str]:
    formats = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f != "text" and f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format: unknown format(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from text, {', '.join(FORMATS)}")
    return formats


class _PipeConsole(Console):
    """The stdout console: a reader that closed early (`| head`) silences it, nothing more."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _silence_stdout()


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _prepare_out(out: Path) -> Path:
    """Create the report folder owner-only before any scanning; a usage error if impossible."""
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the report folder "
                         f"({exc.strerror or type(exc).__name__})") from None
    if not out.is_dir() or not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: not a writable folder")
    return out


def _emit(result: ScanResult, formats: list[str], out: Path,
          options: ReportOptions | None = None) -> None:
    """Write every file format into `out` and print the text summary on stdout."""
    for fmt in formats:
        if fmt != "text":
            path = write_report(result, fmt, out, options)
            stderr.print(f"wrote {escape(str(path))}")
    if "text" in formats:
        # A reader that closed early (`| head`) must not cost the history or the exit code.
        try:
            print_summary(result, _PipeConsole(), limit=25)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()


def _interruptible() -> None:
    """Make SIGTERM behave like Ctrl-C, so a scheduler's stop still writes partial results."""
    def handler(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handler)


HistoryOpt = Annotated[Path | None, typer.Option(
    "--history", envvar="HIPAACHECK_HISTORY", show_default=False,
    help="The history database (default: hipaacheck/history.sqlite in the user data folder).")]
NoHistoryOpt = Annotated[bool, typer.Option("--no-history", help="Do not record this scan.")]
SinceLastOpt = Annotated[bool, typer.Option(
    "--since-last", help="After the scan, print what changed since the previous one.")]
KeepOpt = Annotated[int, typer.Option(
    "--history-keep", envvar="HIPAACHECK_HISTORY_KEEP", min=1,
    help="Scans of this scope and shard to keep in history.")]
DaysOpt = Annotated[int | None, typer.Option(
    "--history-days", envvar="HIPAACHECK_HISTORY_DAYS", min=1,
    help="Also drop history older than this many days.")]
WaiversOpt = Annotated[Path | None, typer.Option(
    "--waivers", envvar="HIPAACHECK_WAIVERS", help="A YAML file of accepted risks.")]
FailOnOpt = Annotated[FailOn, typer.Option(
    help="fail: FAIL exits 1; warn: WARN too; unverified: WARN too, and every UNVERIFIED or "
         "ERROR exits 3 whatever its severity.")]
ThresholdOpt = Annotated[Severity, typer.Option(
    "--severity-threshold", help="Findings of checks below this severity do not affect the "
                                 "exit code.")]


@dataclass(frozen=True)
class _Finish:
    """What happens to a result once it exists: reports, history, the diff, the exit code."""

    formats: list[str]
    out: Path
    fail_on: FailOn = FailOn.FAIL
    threshold: Severity = Severity.LOW
    record: bool = False
    history: Path | None = None
    since_last: bool = False
    retention: Retention = field(default_factory=Retention)
    options: ReportOptions | None = None

    @classmethod
    def build(cls, formats: list[str], out: Path, fail_on: FailOn, threshold: Severity,
              history: Path | None, no_history: bool, since_last: bool, keep: int,
              days: int | None) -> _Finish:
        """Bundle the options; `--no-history` wins over `--history` (which may come from the
        environment): nothing is recorded, and `--since-last` still reads that history."""
        return cls(formats, _prepare_out(out), fail_on, threshold, record=not no_history,
                   history=history or default_path(), since_last=since_last,
                   retention=Retention(keep_last=keep, keep_days=days))


@contextmanager
def _open_history(finish: _Finish) -> Iterator[History | None]:
    """The history store the run needs: None when it neither records nor compares."""
    if finish.history is None or not (finish.record or finish.since_last):
        yield None
        return
    if not finish.record and not finish.history.exists():
        yield None  # --no-history --since-last before any scan was recorded: nothing to read
        return
    with History(finish.history, create=finish.record) as store:
        yield store


def _conclude(result: ScanResult, finish: _Finish, store: History | None) -> int:
    """Write the reports, record the scan, print the diff if asked; return the exit code."""
    from hipaacheck.diff import diff, print_diff

    _emit(result, finish.formats, finish.out, finish.options)  # reports first: history never costs the report
    for note in waiver_notes(result.waivers, sharded=result.shard is not None):
        stderr.print(f"[yellow]{escape(note)}[/]")
    previous = store.previous(result) if store and finish.since_last else None
    label = "this scan"
    if store and finish.record:
        scan_id = store.record(result, finish.retention)
        label = f"scan {scan_id}"
        stderr.print(f"recorded {label} in {escape(str(store.path))}"
                     + ("" if result.complete else " (marked partial)"))
    if finish.since_last and store and previous:
        changes = diff(store.load(previous.id), result,
                       old_label=f"scan {previous.id} ({previous.started})", new_label=label)
        print_diff(changes, Console())
    elif finish.since_last:
        Console().print("No earlier scan of this scope in history to compare with.")
    return exit_code(result, finish.fail_on, finish.threshold)


def _load_waiver_file(path: Path | None, registry: Registry) -> tuple[Waiver, ...]:
    return load_waivers(path, known_checks=set(registry.ids)) if path else ()


def _scan_and_report(inventory: Any, registry: Registry, only: list[str], finish: _Finish, *,
                     shard: Shard | None = None, waivers: Sequence[Waiver] = (),
                     scope: str = "") -> int:
    _interruptible()
    with _open_history(finish) as store:
        with _progress() as progress:
            result = run_scan(inventory, registry, only=only, observer=_ProgressObserver(progress),
                              shard=shard, waivers=waivers, scope=scope)
        return _conclude(result, finish, store)


@app.command()
@_guarded
def scan(
    config: Annotated[Path, typer.Option("--config", "-c", help="The inventory file.")] = Path(
        "hipaacheck.yaml"),
    only: Annotated[list[str] | None, typer.Option(
        help="Check id, id prefix (aws.rds) or family; repeatable.")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help=_FORMAT_HELP)] = "text,json,html,md",
    out: Annotated[Path, typer.Option(help="Folder for report files.")] = Path(
        "hipaacheck-report"),
    fail_on: FailOnOpt = FailOn.FAIL,
    severity_threshold: ThresholdOpt = Severity.LOW,
    waivers: WaiversOpt = None,
    shard: Annotated[str | None, typer.Option(
        envvar="HIPAACHECK_SHARD", help="K/N: scan shard K of N (1-based) of the targets; "
        "job/N takes K from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX.")] = None,
    history: HistoryOpt = None,
    no_history: NoHistoryOpt = False,
    since_last: SinceLastOpt = False,
    history_keep: KeepOpt = DEFAULT_KEEP,
    history_days: DaysOpt = None,
    scope: Annotated[str | None, typer.Option(
        envvar="HIPAACHECK_SCOPE", help="Name the job this scan belongs to in history "
        "(default: derived from the organization, the config file's path and --only).")] = None,
    assessor: Annotated[str | None, typer.Option(help="Assessor named on the cover.")] = None,
) -> None:
    """Scan the targets of the inventory and write the report."""
    from hipaacheck.sharding import parse_shard, scope_id

    _interruptible()
    finish = _Finish.build(_parse_formats(format), out, fail_on, severity_threshold, history,
                           no_history, since_last, history_keep, history_days)
    finish = dataclasses.replace(finish, options=ReportOptions(assessor=assessor))
    spec = parse_shard(shard) if shard else None
    inventory = load_inventory(config)
    registry = load_registry()
    scope = scope or scope_id(inventory.organization, str(config.resolve()), only or [])
    raise typer.Exit(_scan_and_report(inventory, registry, only or [], finish, shard=spec,
                                      waivers=_load_waiver_file(waivers, registry), scope=scope))


@app.command()
@_guarded
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the report and the lab's inventory.")] = Path(
        "hipaacheck-demo"),
    keep_running: Annotated[bool, typer.Option(
        help="Leave the lab running after the scan, until Ctrl-C.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)] = "text,json,html,md",
) -> None:
    """Start the built-in lab of real local services, scan it, and write the report."""
    from hipaacheck.lab.run import start_lab

    formats = _parse_formats(format)
    out = _prepare_out(out.resolve())
    workdir = Path(tempfile.mkdtemp(prefix="hipaacheck-lab-"))
    stderr.print("starting the lab: moto, PostgreSQL, TLS servers, Kubernetes API, log files")
    try:
        lab = start_lab(workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        os.environ.update(lab.env)
        config = lab.write_inventory(out / "hipaacheck.yaml")
        inventory = load_inventory(config)
        code = _scan_and_report(inventory, load_registry(), [], _Finish(formats, out))
        stderr.print(f"report: {escape(str(out / 'report.html'))} (also report.md, report.json)")
        if keep_running:
            env = lab.write_env(workdir / "lab.env")
            stderr.print(escape(f"lab running; scan it again from another shell with: set -a; "
                                f". {env}; set +a; hipaacheck scan -c {config}") +
                         "\n(the file holds the lab's generated passwords, owner-only, and goes "
                         "with the lab). Ctrl-C stops it.")
            signal.pause()
    except KeyboardInterrupt:
        code = 3
    finally:
        lab.stop()
        # The lab's keys, kubeconfig token and synthetic logs go with it.
        shutil.rmtree(workdir, ignore_errors=True)
    raise typer.Exit(code)


class _ReportGroup(TyperGroup):
    """`hipaacheck report FILE` renders; `report sign|verify|bundle|keygen` handle bundles."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # NOTE: `ctx` is typed Any: typer vendors its own click, whose Context is private.
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args.insert(0, "render")
        return super().resolve_command(ctx, args)


report_app = typer.Typer(cls=_ReportGroup, no_args_is_help=True,
                         help="Re-render saved results; build, sign and verify report bundles.")
app.add_typer(report_app, name="report")


@report_app.command("render")
@_guarded
def report_render(
    findings: Annotated[Path, typer.Argument(help="A JSON result written by `scan`.")],
    format: Annotated[str, typer.Option("--format", "-f", help="html, md, pdf, sarif, ...")] = "html",
    out: Annotated[Path, typer.Option(help="Folder for the report file.")] = Path(
        "hipaacheck-report"),
    assessor: Annotated[str | None, typer.Option(help="Assessor named on the cover.")] = None,
) -> None:
    """Re-render a saved JSON result without scanning again (also `report FILE`)."""
    formats = _parse_formats(format)
    result = _read_result(findings)
    _emit(result, formats, _prepare_out(out), ReportOptions(assessor=assessor))


@report_app.command("bundle")
@_guarded
def report_bundle(
    findings: Annotated[Path, typer.Argument(help="A JSON result written by `scan`.")],
    out: Annotated[Path, typer.Option(help="The bundle folder.")] = Path("hipaacheck-bundle"),
    format: Annotated[str, typer.Option("--format", "-f")] = "json,html,md",
    assessor: Annotated[str | None, typer.Option(help="Assessor named on the cover.")] = None,
) -> None:
    """Write report files, the JSON findings and a manifest of SHA-256 digests."""
    from hipaacheck.bundle import write_bundle

    formats = [f for f in _parse_formats(format) if f != "text"]
    manifest = write_bundle(_read_result(findings), out, formats, ReportOptions(assessor=assessor))
    stderr.print(f"wrote {escape(str(manifest))}")


@report_app.command("keygen")
@_guarded
def report_keygen(
    private_key: Annotated[Path, typer.Argument(help="Where to write the private key.")],
    public_key: Annotated[Path, typer.Argument(help="Where to write the public key.")],
) -> None:
    """Create an Ed25519 key pair for signing bundles (never overwrites a private key)."""
    from hipaacheck.bundle import write_key_pair

    write_key_pair(private_key, public_key)
    stderr.print(f"wrote {escape(str(private_key))} (owner-only) and {escape(str(public_key))}")


@report_app.command("sign")
@_guarded
def report_sign(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder.")],
    key: Annotated[Path, typer.Option(help="Ed25519 private key (PEM or OpenSSH).")],
) -> None:
    """Sign a bundle's manifest so a recipient can tell the report was not edited."""
    from hipaacheck.bundle import sign

    stderr.print(f"wrote {escape(str(sign(bundle, key)))}")


@report_app.command("verify")
@_guarded
def report_verify(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder.")],
    key: Annotated[Path | None, typer.Option(
        help="Ed25519 public key; without it only the digests are checked.")] = None,
) -> None:
    """Check every file of a bundle against its manifest, and the signature with --key."""
    from hipaacheck.bundle import verify

    outcome = verify(bundle, key)
    for problem in outcome.problems:
        stderr.print(f"[red]problem:[/] {escape(problem)}")
    state = "signature valid" if outcome.signed else "digests only, no signature checked"
    Console().print(f"{'OK' if outcome.ok else 'NOT OK'}: {outcome.files} files, {state}")
    raise typer.Exit(0 if outcome.ok else 1)


def _read_result(path: Path) -> ScanResult:
    """A saved JSON result; a usage error (exit 2) when it is not one."""
    try:
        return ScanResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable hipaacheck result "
                         f"({type(exc).__name__})") from None


def _resolve(ref: str, store: History | None) -> tuple[ScanResult, str, int | None]:
    """A scan named by a JSON file or a history id: its result, a label, and its id."""
    path = Path(ref)
    if path.is_file():
        return _read_result(path), path.name, None
    if ref.isdigit():
        if store is None:
            raise UsageError(f"{ref}: no scan history to look the id up in")
        record = store.get(int(ref))
        return store.load(record.id), f"scan {record.id} ({record.started})", record.id
    raise UsageError(f"{ref}: neither a JSON result file nor a scan id from `history list`")


def _pick_pair(old: str | None, new: str | None,
               store: History | None) -> tuple[tuple[ScanResult, str], tuple[ScanResult, str]]:
    """OLD and NEW, defaulting NEW to the latest scan of OLD's scope and OLD to the one before."""
    if old is not None and new is not None:
        older, newer = _resolve(old, store), _resolve(new, store)
        return older[:2], newer[:2]
    if store is None:
        raise UsageError("diff: name two JSON results, or record scans in history first")
    if old is None:
        latest = store.scans(limit=1)
        if not latest:
            raise UsageError(f"diff: no scans in {store.path}")
        newer = _resolve(str(latest[0].id), store)
        previous = store.previous(newer[0], before=latest[0].id)
        if previous is None:
            raise UsageError("diff: the latest scan is the only one of its scope and shard")
        return _resolve(str(previous.id), store)[:2], newer[:2]
    older = _resolve(old, store)
    latest_record = store.previous(older[0])
    if latest_record is None or latest_record.id == older[2] or (
            older[2] is None and latest_record.started == older[0].started):
        raise UsageError(f"diff: no scan of the same scope newer than {old}; name NEW")
    return older[:2], _resolve(str(latest_record.id), store)[:2]


class DiffFormat(str, Enum):
    """How `hipaacheck diff` prints."""

    TEXT = "text"
    JSON = "json"


@app.command("diff")
@_guarded
def diff_command(
    old: Annotated[str | None, typer.Argument(
        help="A scan id from `history list` or a JSON result (default: the scan before NEW).",
        show_default=False)] = None,
    new: Annotated[str | None, typer.Argument(
        help="A scan id or JSON result (default: the latest scan of OLD's scope).",
        show_default=False)] = None,
    history: HistoryOpt = None,
    format: Annotated[DiffFormat, typer.Option("--format", "-f")] = DiffFormat.TEXT,
) -> None:
    """Show what changed between two scans: by default, the last two of the same scope."""
    from hipaacheck.diff import diff, print_diff

    path = history or default_path()
    needs_store = old is None or new is None or not all(Path(r).is_file() for r in (old, new))
    store = History(path, create=False) if needs_store else None
    try:
        (older, old_label), (newer, new_label) = _pick_pair(old, new, store)
    finally:
        if store:
            store.close()
    changes = diff(older, newer, old_label=old_label, new_label=new_label)
    if format is DiffFormat.JSON:
        sys.stdout.write(json.dumps(changes.to_json(), indent=2) + "\n")
    else:
        print_diff(changes, Console())


@history_app.command("list")
@_guarded
def history_list(
    history: HistoryOpt = None,
    scope: Annotated[str | None, typer.Option(help="Only scans of this scope.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
) -> None:
    """List stored scans, newest first, with their scope, shard and counts."""
    with History(history or default_path(), create=False) as store:
        records = store.scans(scope=scope, limit=limit)
    table = Table("id", "started (UTC)", "scope", "shard", "state", "FAIL", "ERROR", "UNVER",
                  "WARN", "PASS", "version", box=None, header_style="bold")
    for r in records:
        when = r.started[:16].replace("T", " ")
        table.add_row(str(r.id), when, r.scope, r.shard or "-",
                      "complete" if r.complete else "[yellow]partial[/]",
                      *(str(r.counts.get(s, 0)) for s in ("FAIL", "ERROR", "UNVERIFIED", "WARN",
                                                          "PASS")), escape(r.tool_version))
    Console().print(table)


@history_app.command("show")
@_guarded
def history_show(
    scan_id: Annotated[int, typer.Argument(help="A scan id from `history list`.")],
    history: HistoryOpt = None,
) -> None:
    """Print a stored scan as its `hipaacheck.scan/1` JSON (re-render it with `report`)."""
    with History(history or default_path(), create=False) as store:
        result = store.load(scan_id)
    sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")


def _shard_sources(sources: Sequence[str]) -> list[tuple[str, ScanResult]]:
    """Shard results from files, folders of `*.json` files and `s3://bucket/prefix` URLs."""
    from hipaacheck.sharding import read_s3_documents

    loaded: list[tuple[str, ScanResult]] = []
    for source in sources:
        if source.startswith("s3://"):
            for name, doc in read_s3_documents(source):
                try:
                    loaded.append((name, ScanResult.from_json(doc)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise UsageError(f"{name}: not a hipaacheck result "
                                     f"({type(exc).__name__})") from None
            continue
        path = Path(source)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        loaded += [(str(f), _read_result(f)) for f in files]
    return loaded


@app.command()
@_guarded
def merge(
    shards: Annotated[list[str], typer.Argument(
        help="Shard results: JSON files, folders of them, or an s3://bucket/prefix.")],
    format: Annotated[str, typer.Option(
        "--format", "-f", help=_FORMAT_HELP)] = "text,json,html,md",
    out: Annotated[Path, typer.Option(help="Folder for report files.")] = Path(
        "hipaacheck-report"),
    fail_on: FailOnOpt = FailOn.FAIL,
    severity_threshold: ThresholdOpt = Severity.LOW,
    waivers: WaiversOpt = None,
    history: HistoryOpt = None,
    no_history: NoHistoryOpt = False,
    since_last: SinceLastOpt = False,
    history_keep: KeepOpt = DEFAULT_KEEP,
    history_days: DaysOpt = None,
) -> None:
    """Merge the results of `scan --shard K/N` into one result and report."""
    from hipaacheck.sharding import merge as merge_shards

    _interruptible()
    finish = _Finish.build(_parse_formats(format), out, fail_on, severity_threshold, history,
                           no_history, since_last, history_keep, history_days)
    loaded = _shard_sources(shards)
    outcome = merge_shards([result for _, result in loaded])
    result = outcome.result
    if waivers:
        known = set(load_registry().ids) | {m.id for m in result.checks}
        result = apply_waivers(result, load_waivers(waivers, known_checks=known),
                               datetime.now(UTC).date())
    stderr.print(f"merged {outcome.shards - len(outcome.missing_shards)} of {outcome.shards} "
                 "shards")
    if outcome.missing_shards:
        stderr.print(f"[bold yellow]missing shards:[/] "
                     f"{', '.join(f'{k}/{outcome.shards}' for k in outcome.missing_shards)}; "
                     f"targets not observed (UNVERIFIED): "
                     f"{escape(', '.join(outcome.missing_targets)) or 'none'}")
    if outcome.incomplete_shards:
        stderr.print("[bold yellow]shards that did not finish:[/] "
                     + ", ".join(f"{k}/{outcome.shards}" for k in outcome.incomplete_shards))
    with _open_history(finish) as store:
        raise typer.Exit(_conclude(result, finish, store))


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
    include_secrets: Annotated[bool, typer.Option(
        help="Kubernetes: also grant get on Secrets cluster-wide (better: a namespaced Role "
             "with resourceNames for the audit Secrets).")] = False,
) -> None:
    """Print the least-privilege read-only grant for the selected checks."""
    from hipaacheck import permissions as grants

    metas = load_registry().select(only or []).metas()
    if system is PermissionsFor.KUBERNETES:
        sys.stdout.write(grants.kubernetes_cluster_role(metas, include_secrets=include_secrets))
        needing = sorted(m.id for m in metas for op in m.operations
                         if op.system.value == "kubernetes" and op.action.endswith(" secrets"))
        if needing and not include_secrets:
            stderr.print(f"note: Secrets are left out; {', '.join(sorted(set(needing)))} will be "
                         "UNVERIFIED unless a Role grants get on the audit Secrets by name.")
        return
    writer = grants.aws_policy if system is PermissionsFor.AWS else grants.postgres_role_sql
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

