"""Command line: `import` (headless import), `sandbox` (local API), and the GUI by default."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from app.failures_command import add_failures_parser, failures_command
from app.models.display_text import printable_path
from app.services.connection.auth import Secret, c4r_token_url, engage_token_url
from app.services.connection.connection_profiles import (
    CLIENT_ID_HELP,
    PROFILES,
    ConnectionSettings,
)
from app.services.connection.network import ProxyError, parse_proxy, plain_http_warning
from app.services.connection.secret_store import SecretStore, secret_name
from app.services.jobs.history import format_history, running_check
from app.services.jobs.job_plan import Repeat
from app.services.jobs.journal import (
    RESUMABLE,
    Journal,
    JournalBusy,
    JournalError,
    JournalTooNew,
)
from app.services.jobs.journal_writer import JOURNAL_WAIT_S
from app.services.pipeline.import_engine import (
    ImportEngine,
    retry_folder_strategy,
    source_options,
)
from app.services.pipeline.import_events import (
    ImportCounts,
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportState,
    ImportSummary,
    default_output_dir,
)
from app.services.results.cloud_folders import cloud_folder_note, cloud_sync_service
from app.services.results.result_writers import new_unique_file
from app.services.session.import_options import (
    ConnectionOptions,
    RunOptions,
    import_settings,
    token_provider,
)
from app.services.sources.file_search import find_customer_files, path_problem
from app.services.sources.mapping import MappingError
from app.services.sources.mapping_profiles import load_mapping
from app.services.sources.source_options import Assignment, OnExisting, SourceOptions
from app.services.sources.table_source import listed_columns
from app.services.sources.validation_pass import validate_files
from app.util.console import print_json, use_utf8_output
from app.util.csv_separator import parse_separator
from app.util.keep_awake import KeepAwake

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3
#: Seconds the import history may stay in use by another program (default 60).
HISTORY_WAIT_VARIABLE = "BULK_IMPORT_HISTORY_WAIT_S"


class UsageError(Exception):
    """Bad command-line input: exit status 2 with the message."""


def program_name(argv0: str | None = None) -> str:
    """How the user started us: `main.py` from source, the executable's name when packaged."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    if name.lower().endswith(".exe"):
        name = name[:-4]
    return name or "bulk-customer-import"


class _VersionAction(argparse.Action):
    """`--version`: loads the metadata and Qt only when asked, not on every start."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from app.version import version_text

        sys.stdout.write(version_text() + "\n")
        sys.stdout.flush()
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Bulk Customer Import: upload customer files to the Customer Profile API. "
                    "Without a command, the desktop app opens.")
    parser.add_argument("--demo", action="store_true",
                        help="open the app on the built-in sandbox API with sample customers")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the app's version and the Qt and Python it runs on")
    commands = parser.add_subparsers(dest="command")

    imp = commands.add_parser("import", help="import customer files without the GUI",
                              description="Import customer files (JSON, JSON Lines, CSV or "
                                          "Excel; files or folders) to the Customer Profile "
                                          "API.")
    imp.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
    imp.add_argument("--url", help="the customers endpoint; households go to the sibling "
                     "/households (with --resume: the job's, unless given)")
    imp.add_argument("--resume", metavar="JOB|last",
                     help="resume an interrupted or cancelled job of the results folder "
                     "(its files and connection; secrets from the options, the environment "
                     "or the keychain)")
    imp.add_argument("--force", action="store_true",
                     help="send every customer, even those an earlier job imported already")
    imp.add_argument("--no-history", action="store_true",
                     help="do not keep this import in the results folder's history (it "
                     "cannot be resumed, and sends even what earlier imports brought in)")
    imp.add_argument("--households-url", help="override the households endpoint")
    imp.add_argument("--auth", choices=("token", "c4r", "engage"), default="token",
                     help="token (default), C4R password grant, or Engage Keycloak grant")
    imp.add_argument("--token", help="bearer token (or set BULK_IMPORT_TOKEN)")
    imp.add_argument("--token-url", help="token endpoint (derived from --url and --tenant "
                     "when omitted)")
    imp.add_argument("--tenant", help="tenant (derived from a C4R --url when omitted)")
    imp.add_argument("--username", help="user for the password grants")
    imp.add_argument("--password", help="password (or set BULK_IMPORT_PASSWORD; asked for "
                     "when missing on a terminal)")
    imp.add_argument("--client-id", default=None,
                     help="OAuth client id, needed with --auth c4r and engage (your "
                     "administrator has it: Keycloak lists it under the realm's Clients)")
    imp.add_argument("--client-secret", help="C4R client secret (or BULK_IMPORT_CLIENT_SECRET)")
    imp.add_argument("--passport", help="GK-Passport header value (or BULK_IMPORT_PASSPORT)")
    imp.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                     help="extra request header (repeatable)")
    imp.add_argument("--mapping", metavar="NAME_OR_FILE",
                     help="how spreadsheet columns become customer fields: a saved mapping "
                     "profile or a mapping file (docs/mapping.md); default: from the header")
    imp.add_argument("--sheet", metavar="NAME",
                     help="the sheet of an Excel workbook (default: the first with data)")
    imp.add_argument("--dry-run", action="store_true",
                     help="read, map and check every row and write the error report; send "
                     "nothing (exit 0 when every row is valid, 1 otherwise)")
    imp.add_argument("--on-existing", choices=[s.value for s in OnExisting], default=None,
                     help="a customer the service already has: create (a failure, the "
                     "default), skip (counted as skipped) or update (sent again as UPDATE); "
                     "a retry folder keeps its import's choice")
    imp.add_argument("--assign", metavar="MODE:PATH=VALUE",
                     help="set PATH on every customer sent: single:PATH=VALUE, "
                     "round-robin:PATH=V1,V2,V3 or column:PATH=COLUMN (a column of a "
                     "spreadsheet, a path in a JSON entry)")
    imp.add_argument("--batch-size", type=_positive_int, default=50)
    imp.add_argument("--concurrency", type=_positive_int, default=5)
    imp.add_argument("--retries", type=_non_negative_int, default=5,
                     help="retries per batch for 429/5xx/timeouts (default 5)")
    imp.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    imp.add_argument("--output-dir", type=Path,
                     help=f"where result files go (default {default_output_dir()})")
    imp.add_argument("--no-single-files", action="store_true",
                     help="do not write one file per failed customer")
    imp.add_argument("--insecure", action="store_true",
                     help="do not verify TLS certificates (unsafe; a warning on every run)")
    imp.add_argument("--proxy", type=_proxy_address, metavar="URL",
                     help="send through this proxy (http://[user:password@]host:port); "
                     "default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY, else the system's settings")
    imp.add_argument("--delimiter", type=_csv_delimiter, metavar="';'|','|tab",
                     help="what separates the cells of the error report (a CSV file); "
                     "default: this computer's list separator, which Excel expects (';' "
                     "where numbers are written with a decimal comma)")
    imp.add_argument("--json", action="store_true",
                     help="print a JSON summary on stdout at the end")
    imp.add_argument("-v", "--verbose", action="store_true", help="log each failing batch")

    history = commands.add_parser("history", help="list the import jobs of a results folder",
                                  description="The import jobs of a results folder, newest "
                                              "first.")
    history.add_argument("--output-dir", type=Path,
                         help=f"the results folder (default {default_output_dir()})")
    history.add_argument("--json", action="store_true", help="print a JSON list of jobs")

    add_failures_parser(commands, _csv_delimiter)

    from app.services.sandbox.sandbox_server import add_sandbox_arguments

    sandbox = commands.add_parser("sandbox", help="run the local sandbox Customer Profile API",
                                  description="A local stand-in for the Customer Profile API.")
    add_sandbox_arguments(sandbox)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _csv_delimiter(text: str) -> str:
    try:
        return parse_separator(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _proxy_address(text: str) -> str:
    try:
        parse_proxy(text)
    except ProxyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def connection_options(args: argparse.Namespace) -> ConnectionOptions:
    """The connection the options ask for (secrets also from the environment, a password
    asked for on a terminal); raises UsageError when something is missing."""
    env = os.environ
    common: dict[str, Any] = {
        "customers_url": args.url, "households_url": args.households_url or "",
        "auth_mode": args.auth, "client_id": args.client_id or "",
        "tenant": args.tenant or "", "headers": _headers(args),
        "passport": Secret(args.passport or env.get("BULK_IMPORT_PASSPORT") or ""),
        "proxy": Secret(args.proxy or ""), "verify_tls": not args.insecure}
    if args.auth == "token":
        token = args.token or env.get("BULK_IMPORT_TOKEN")
        if not token:
            raise UsageError("a token is needed: --token or the BULK_IMPORT_TOKEN variable "
                             "(or use --auth c4r/engage)")
        return ConnectionOptions(token=Secret(token), username=args.username or "",
                                 token_url=args.token_url or "", **common)
    username = args.username or env.get("BULK_IMPORT_USERNAME")
    if not username:
        raise UsageError(f"--auth {args.auth} needs --username")
    password = args.password or env.get("BULK_IMPORT_PASSWORD")
    if not password and sys.stdin.isatty():
        password = getpass.getpass(f"Password for {username}: ")
    if not password:
        raise UsageError("a password is needed: --password or BULK_IMPORT_PASSWORD")
    parts = urlsplit(args.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    tenant = args.tenant or _tenant_from_url(args.url)
    token_url = args.token_url
    if not token_url:
        if not tenant:
            raise UsageError("--tenant (or --token-url) is needed to find the token service")
        token_url = (c4r_token_url(origin, tenant) if args.auth == "c4r"
                     else engage_token_url(origin, tenant))
    if not args.client_id:
        raise UsageError(f"--auth {args.auth} needs --client-id: {CLIENT_ID_HELP}")
    secret = args.client_secret or env.get("BULK_IMPORT_CLIENT_SECRET")
    if args.auth == "c4r" and not secret:
        raise UsageError("--auth c4r needs --client-secret (or BULK_IMPORT_CLIENT_SECRET)")
    return ConnectionOptions(username=username, password=Secret(password),
                             token_url=token_url,
                             client_secret=Secret(secret if args.auth == "c4r" and secret
                                                  else ""), **common)


def _tenant_from_url(url: str) -> str | None:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if "tenants" in parts:
        index = parts.index("tenants")
        if index + 1 < len(parts):
            return parts[index + 1]
    return None


def _headers(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """--header NAME: VALUE, in order (a name given twice: the last value)."""
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header must look like 'Name: value', not {item!r}")
        headers[name.strip()] = value.strip()
    return tuple(headers.items())


def run_options(args: argparse.Namespace, on_existing: str = "") -> RunOptions:
    """How the import runs, from the options (`on_existing` "": the default)."""
    return RunOptions(batch_size=args.batch_size, concurrency=args.concurrency,
                      max_retries=args.retries, timeout_s=args.timeout,
                      output_dir=args.output_dir or default_output_dir(),
                      on_existing=on_existing or OnExisting.CREATE.value,
                      write_single_failures=not args.no_single_files,
                      keep_history=not args.no_history, journal_wait_s=history_wait_s())


def on_existing_choice(args: argparse.Namespace) -> str:
    """--on-existing, else the strategy of the import whose retry files are imported."""
    return args.on_existing or retry_folder_strategy(args.paths or []) or ""


def source_options_of(args: argparse.Namespace) -> SourceOptions:
    """--mapping, --sheet and --assign: how the files are read. Raises UsageError with a
    message for the user."""
    try:
        mapping = load_mapping(args.mapping).to_dict() if args.mapping else None
        assignment = Assignment.parse(args.assign).to_dict() if args.assign else {}
    except MappingError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--mapping {args.mapping}: {exc.strerror or exc}") from None
    return SourceOptions(mapping=mapping, sheet=args.sheet or None, assignment=assignment)


def command_line_settings(args: argparse.Namespace, resume_job: int | None = None
                          ) -> tuple[ImportSettings, ConnectionOptions, RunOptions]:
    """What the import runs with, built from the options as the window builds it from its
    tabs; raises UsageError."""
    connection = connection_options(args)
    if resume_job is not None:
        # a resumed job reads its files as it did the first time (its settings are kept)
        run, sources = run_options(args), SourceOptions()
    else:
        run, sources = run_options(args, on_existing_choice(args)), source_options_of(args)
    settings = import_settings(connection, run, sources)
    settings.csv_delimiter = getattr(args, "delimiter", None)  # None: the system's
    return settings, connection, run


class TerminalProgress(ImportListener):
    """Progress on stderr: a live bar on a terminal, a plain line every few seconds otherwise.

    Notes are printed as they come; when the import pauses itself (a full disk, the import
    history unavailable) there is nobody to free space and press Resume: `on_pause(reason)`
    is called, which stops the import.
    """

    PLAIN_INTERVAL_S = 5.0

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last_plain = -self.PLAIN_INTERVAL_S
        self._bar_shown = False
        self.on_pause: Callable[[str], None] | None = None

    def progress(self, p: ImportProgress) -> None:
        line = format_progress(p)
        if self.live:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
            self._bar_shown = True
        elif p.elapsed_s - self._last_plain >= self.PLAIN_INTERVAL_S \
                or p.state == ImportState.FINISHED:
            self._last_plain = p.elapsed_s
            self.stream.write(line + "\n")
            self.stream.flush()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self._bar_shown = False

    def problem(self, message: str) -> None:
        self._clear_bar()

    def note(self, message: str) -> None:
        self._clear_bar()
        self.stream.write(f"note: {message}\n")
        self.stream.flush()

    def paused(self, reason: str) -> None:
        self._clear_bar()
        self.stream.write(f"error: {reason}\nStopping: the customers not sent stay in the "
                          "import history; resume the job (import --resume last) once this "
                          "is fixed.\n")
        self.stream.flush()
        if self.on_pause is not None:
            self.on_pause(reason)

    def finished(self, summary: ImportSummary) -> None:
        if self.live:
            self.stream.write("\n")
        self.stream.write(format_summary(summary) + "\n")
        self.stream.flush()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def format_progress(p: ImportProgress) -> str:
    width = 24
    filled = int(p.fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    total = f"/{p.expected_total:,}" if p.expected_total else ""
    state = "" if p.state in (ImportState.RUNNING, ImportState.FINISHED) else f" [{p.state}]"
    at_once = (f"  {p.concurrency}/{p.concurrency_ceiling} at once"
               if p.concurrency and p.state in (ImportState.RUNNING, ImportState.PAUSED,
                                                ImportState.STOPPING) else "")
    return (f"[{bar}] {p.fraction * 100:5.1f}%  {p.done:,}{total} done  "
            f"ok {p.succeeded:,}  failed {p.failed:,}  {p.rate:,.0f}/s{at_once}  "
            f"ETA {_duration(p.eta_s)}{state}")


def format_summary(s: ImportSummary) -> str:
    lines = [f"Read {s.total:,} customers in {s.duration_s:.1f} s: {s.succeeded:,} imported, "
             f"{s.failed:,} failed."]
    if s.updated or s.on_existing == "update":
        lines.append(f"Existing customers updated: {s.updated:,}")
    if s.skipped_existing or s.on_existing == "skip":
        lines.append(f"Existing customers skipped: {s.skipped_existing:,}")
    if s.failed_by_result:
        lines.append("Failed by result: " + ", ".join(
            f"{k} {v:,}" for k, v in s.failed_by_result.most_common()))
    if s.error_report:
        lines.append(f"Error report ({s.invalid:,} rows refused before sending): "
                     f"{s.error_report}")
    if s.fatal_error:
        lines.append(f"Stopped: {s.fatal_error}")
    elif s.refused and s.error:
        lines.append(f"Not started: {s.error}")
    elif s.error:
        lines.append(f"Stopped: {s.error}. What was not sent is kept in the import history: "
                     "resume the job (import --resume last) once that is fixed.")
    elif s.cancelled:
        lines.append("Cancelled: the customers not sent are in the retry files.")
    for problem in s.problems:
        lines.append(f"Not read: {problem}")
    for skipped in s.skipped_files:
        lines.append(f"Skipped: {skipped}")
    for note in s.notes:
        lines.append(f"Note: {note}")
    if s.retry_dir:
        lines.append(f"Retry files: {s.retry_dir}" if s.result_files_complete else
                     f"Retry files (incomplete: some could not be written): {s.retry_dir}")
    if s.failed_file:
        lines.append(f"Failure records: {s.failed_file}")
    for error in s.write_errors:
        lines.append(f"Write error: {error}")
    if not s.result_files_complete:
        lines.append("The result files are incomplete; every outcome is in the import "
                     "history: resuming the job, or retrying its open failures from the "
                     "History tab, writes them once there is room.")
    return "\n".join(lines)


async def run_import(args: argparse.Namespace, resume_job: int | None = None
                     ) -> ImportSummary:
    settings, connection, run = command_line_settings(args, resume_job)
    auth = token_provider(connection, run)
    if settings.proxy:  # also one taken from the keychain for a resumed job
        try:
            parse_proxy(settings.proxy)
        except ProxyError as exc:
            raise UsageError(str(exc)) from None
    _note_network(settings, auth.token_url)
    listener = TerminalProgress()
    engine = ImportEngine(args.paths, settings, auth,
                          listener=listener, resume_job=resume_job,
                          repeat=Repeat.ALL if args.force else Repeat.REST)
    listener.on_pause = engine.cancel  # no one to press Resume: stop, exit status 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # First Ctrl+C stops cleanly (unsent customers go to the retry files).
        try:
            loop.add_signal_handler(sig, engine.cancel, "interrupted by the user")
        except (NotImplementedError, RuntimeError):  # Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(
                engine.cancel, "interrupted by the user"))
    return await engine.run()


def history_wait_s() -> float:
    """How long the import history may stay in use by another program before the import
    pauses (as it starts: gives up); from BULK_IMPORT_HISTORY_WAIT_S, else 60 s."""
    try:
        value = float(os.environ.get(HISTORY_WAIT_VARIABLE, ""))
    except ValueError:
        return JOURNAL_WAIT_S
    return value if value >= 0 else JOURNAL_WAIT_S


def refuse(args: argparse.Namespace, message: str, output_dir: Path | None = None) -> int:
    """Exit before or instead of an import: `error: message` on stderr and, with --json, the
    summary object all the same, its `error` saying why. Exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json(ImportSummary(error=message, output_dir=output_dir,
                                  dry_run=bool(getattr(args, "dry_run", False))).to_json())
    return EXIT_USAGE


def import_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(message)s", stream=sys.stderr)
    if args.resume:
        return resume_command(args)
    if not args.paths:
        return refuse(args, "name the files or folders to import (or --resume a job)")
    if args.dry_run:
        return dry_run_command(args)
    if not args.url:
        return refuse(args, "--url is needed (the customers endpoint)")
    unusable = [(path, path_problem(path)) for path in args.paths]
    if all(problem for _path, problem in unusable):
        for path, problem in unusable[:-1]:
            print(f"error: {printable_path(path)}: {problem}", file=sys.stderr)
        path, problem = unusable[-1]
        return refuse(args, f"{printable_path(path)}: {problem}")
    return _run_and_report(args)


def _run_and_report(args: argparse.Namespace, resume_job: int | None = None) -> int:
    output_dir = args.output_dir or default_output_dir()
    _note_cloud_folder(output_dir, args.no_single_files)
    try:
        with KeepAwake():  # no idle sleep while it runs (this thread holds and releases)
            summary = asyncio.run(run_import(args, resume_job))
    except UsageError as exc:
        return refuse(args, str(exc), output_dir)
    except (OSError, sqlite3.Error) as exc:  # a folder or the history that fails us
        return refuse(args, f"{exc}", output_dir)
    if args.json:
        print_json(summary.to_json())
    return summary.exit_code


def dry_run_command(args: argparse.Namespace) -> int:
    """`import --dry-run`: read, map and check everything, write the error report, send
    nothing."""
    output_dir = args.output_dir or default_output_dir()
    try:
        settings = import_settings(ConnectionOptions(),
                                   run_options(args, on_existing_choice(args)),
                                   source_options_of(args))
    except UsageError as exc:
        return refuse(args, str(exc), output_dir)
    started = time.monotonic()
    search = find_customer_files(args.paths)
    options = source_options(settings, search.files)  # read as an import would
    report = output_dir / f"error_report_{datetime.now():%Y%m%d_%H%M%S}_dry_run.csv"
    try:
        report = new_unique_file(output_dir, report.stem, ".csv")
        result = validate_files(search.files, options, report_path=report,
                                delimiter=args.delimiter)
        if result.error_report is None:
            report.unlink()  # every row valid: no report
    except OSError as exc:
        return refuse(args, f"the error report {report} could not be written "
                      f"({exc.strerror or exc})", output_dir)
    counts = ImportCounts(read=result.rows, invalid=result.invalid, failed=result.invalid,
                          failed_by_result=Counter({"INVALID": result.invalid}
                                                   if result.invalid else {}))
    summary = ImportSummary(counts=counts, dry_run=True,
                            output_dir=output_dir, error_report=result.error_report,
                            files=[str(f) for f in search.files],
                            skipped_files=[str(s) for s in search.skipped],
                            problems=[str(p) for p in [*search.problems, *result.problems]],
                            notes=search.link_notes(),
                            duration_s=time.monotonic() - started)
    for path, columns in result.unmapped_columns.items():
        summary.notes.append(f"{printable_path(Path(path).name)}: columns not imported: "
                             f"{listed_columns(columns)}")
    print(format_dry_run(summary, result.valid), file=sys.stderr)
    if args.json:
        print_json(summary.to_json())
    return summary.exit_code


def format_dry_run(s: ImportSummary, valid: int) -> str:
    lines = [f"Checked {s.total:,} rows in {s.duration_s:.1f} s (nothing sent): {valid:,} "
             f"valid, {s.invalid:,} invalid."]
    lines += [f"Not read: {problem}" for problem in s.problems]
    lines += [f"Skipped: {skipped}" for skipped in s.skipped_files]
    lines += [f"Note: {note}" for note in s.notes]
    if s.error_report:
        lines.append(f"Error report: {s.error_report}")
    return "\n".join(lines)


def resume_command(args: argparse.Namespace) -> int:
    """`import --resume JOB|last`: the job's files and connection; secrets as for import."""
    kept = [option for option, value in (
        ("--mapping", args.mapping), ("--sheet", args.sheet), ("--assign", args.assign),
        ("--on-existing", args.on_existing), ("--dry-run", args.dry_run)) if value]
    output_dir = args.output_dir or default_output_dir()
    if kept:
        return refuse(args, f"{', '.join(kept)} cannot be used with --resume: a job goes on "
                      "with the mappings, sheets, assignment and strategy it started with",
                      output_dir)
    try:
        journal = Journal.open(output_dir, create=False, busy_timeout_s=history_wait_s())
    except JournalBusy as exc:
        return refuse(args, str(exc), output_dir)
    except JournalError as exc:
        return refuse(args, f"nothing to resume in {output_dir}: {exc}", output_dir)
    try:
        is_alive = running_check(output_dir)
        if args.resume == "last":
            candidates = [j for j in journal.jobs(is_alive) if j.state in RESUMABLE]
            if not candidates:
                return refuse(args, f"no interrupted or cancelled job in {output_dir}",
                              output_dir)
            job = candidates[0]
        else:
            try:
                job = journal.job(int(args.resume.lstrip("#")), is_alive)
            except ValueError:
                return refuse(args, f"--resume takes a job number or 'last', not "
                              f"{args.resume!r}", output_dir)
    except JournalError as exc:
        return refuse(args, str(exc), output_dir)
    except sqlite3.Error as exc:
        return refuse(args, f"the import history in {output_dir} cannot be read ({exc})",
                      output_dir)
    finally:
        journal.close()
    if job.state not in RESUMABLE:
        return refuse(args, f"job #{job.id} is {job.state.label}: only an interrupted or "
                      "cancelled job can be resumed", output_dir)
    apply_job_settings(args, job.settings)
    args.output_dir = output_dir
    print(f"Resuming job #{job.id} ({job.state.label}, started "
          f"{job.started.replace('T', ' ')})", file=sys.stderr)
    return _run_and_report(args, resume_job=job.id)


def apply_job_settings(args: argparse.Namespace, settings: dict[str, object]) -> None:
    """Fill what the command line left out with what the job was run with."""
    connection = settings.get("connection")
    connection = connection if isinstance(connection, dict) else {}
    defaults = build_parser().parse_args(["import", "--url", "x"])
    if not args.url:
        args.url = str(settings.get("customers_url") or "")
    if not args.households_url and settings.get("households_url"):
        args.households_url = str(settings["households_url"])
    for name, key in (("batch_size", "batch_size"), ("concurrency", "concurrency"),
                      ("retries", "max_retries"), ("timeout", "timeout_s")):
        if getattr(args, name) == getattr(defaults, name) and settings.get(key) is not None:
            setattr(args, name, type(getattr(defaults, name))(settings[key]))
    mode = connection.get("auth") or connection.get("auth_mode")
    if args.auth == "token" and mode in ("c4r", "engage"):
        args.auth = mode
    for name in ("username", "tenant", "token_url"):
        if not getattr(args, name, None) and connection.get(name):
            setattr(args, name, str(connection[name]))
    if connection.get("client_id") and args.client_id == defaults.client_id:
        args.client_id = str(connection["client_id"])
    if connection.get("profile") in PROFILES:  # a job of the window: its keychain entries
        fill_secrets_from_keychain(args, ConnectionSettings.from_dict(connection))


def fill_secrets_from_keychain(args: argparse.Namespace, settings: ConnectionSettings) -> None:
    store = SecretStore()
    user = settings.username.strip()
    lookups = (("token", "token", ""), ("password", "password", user),
               ("client_secret", "client_secret", ""), ("passport", "passport", ""),
               ("proxy", "proxy", ""))
    for name, field, username in lookups:
        if not getattr(args, name, None):
            value = store.get(secret_name(settings.profile, field, username))
            if value:
                setattr(args, name, value)


def history_command(args: argparse.Namespace) -> int:
    """`history`: the jobs of a results folder, newest first."""
    output_dir = args.output_dir or default_output_dir()
    try:
        journal = Journal.open(output_dir, create=False, busy_timeout_s=history_wait_s())
    except (JournalTooNew, JournalBusy) as exc:
        return _history_error(args, str(exc))
    except JournalError:
        jobs = []
    else:
        try:
            jobs = journal.jobs(running_check(output_dir))
        except sqlite3.Error as exc:
            return _history_error(args, f"the import history in {output_dir} cannot be read "
                                  f"({exc})")
        finally:
            journal.close()
    if args.json:
        print_json([job.to_json() for job in jobs])
        return EXIT_OK
    if not jobs:
        print(f"No import jobs in {output_dir}")
        return EXIT_OK
    print(format_history(jobs))
    return EXIT_OK


def _note_network(settings: ImportSettings, token_url: str | None) -> None:
    """Warnings about the way to the service, on stderr (stdout may be the --json summary)."""
    if not settings.verify_tls:
        print("warning: --insecure: TLS certificates are not verified, so anyone on the way "
              "to the service can read the customers and the credentials", file=sys.stderr)
    # the password goes to the token URL, the token and the customers to the customers URL
    warnings = {plain_http_warning(url, sends_secret=True)
                for url in (settings.customers_url, token_url) if url}
    for warning in sorted(w for w in warnings if w):
        print(f"warning: {warning}", file=sys.stderr)


def _history_error(args: argparse.Namespace, message: str) -> int:
    """`history` could not read the jobs: with --json an object whose `error` says why."""
    print(f"error: {message}", file=sys.stderr)
    if args.json:
        print_json({"error": message, "jobs": []})
    return EXIT_USAGE


def _note_cloud_folder(folder: Path, no_single_files: bool) -> None:
    """Say so on stderr (stdout may be the --json summary) when a sync client uploads results."""
    service = cloud_sync_service(folder)
    if service:
        print(f"note: {cloud_folder_note(folder, service)}", file=sys.stderr)
        if not no_single_files:
            print("note: --no-single-files writes no file per failed customer.",
                  file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # before anything is printed (usage, --version, the summary): a redirected stdout and
    # stderr write UTF-8 even where the code page is cp1252 (Windows), so names such as
    # Łódź or Čapek neither stop the program nor reach a script as other bytes
    use_utf8_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "import":
        return import_command(args)
    if args.command == "history":
        return history_command(args)
    if args.command == "failures":
        return failures_command(args)
    if args.command == "sandbox":
        from app.services.sandbox.sandbox_server import run_sandbox

        return run_sandbox(args)
    from app.views.app_main import run_gui

    return run_gui(demo=args.demo)
