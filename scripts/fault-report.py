#!/usr/bin/env python3
"""What users see when Satchel's session store fails under load, and whether any
acknowledged write is lost: a measured fault report, in Markdown.

    python3 scripts/fault-report.py                                  # redis, postgres, filesystem
    python3 scripts/fault-report.py redis --satchel /tmp/target-release/release/satchel
    python3 scripts/fault-report.py postgres --variants no-breaker --env SESSION_STORE_TIMEOUT=1s
    python3 scripts/fault-report.py redis postgres --out /tmp/faults.md --timeline

32 virtual users write as the shared benchmark's `write` scenario does: each has its own
keep-alive HTTP/1.1 connection and cookie jar, logs in once (`POST /login?uid=I`, I from
1) and then sends `POST /write` as soon as the previous answer came (closed loop); the
body of a successful write is the session's new counter `n`. A request gets 10 s
(`--timeout`); after a transport error the user waits 0.1 s and connects again. Every
request's start, end and outcome is recorded.

Scenarios (positional; default all three):

  redis       a private redis-server (a free port, 16395 when free; a temporary directory;
              --appendonly yes --appendfsync everysec --save ''). After --before s of load
              it is killed (SIGKILL); --down s later it starts again on the same directory
              and reloads its append-only file.
  postgres    a private PostgreSQL cluster (initdb in a temporary directory; a free port,
              15439 when free; its socket in that directory), run as the `postgres` user
              through `runuser` when this script runs as root (initdb refuses root), with
              the binaries of the newest /usr/lib/postgresql/*/bin. `pg_ctl stop -m
              immediate`, then `pg_ctl start` --down s later. SESSION_TYPE=sqlalchemy, a
              table of its own per run.
  filesystem  SESSION_TYPE=filesystem in a temporary directory (SESSION_FILE_THRESHOLD=100000,
              so pruning deletes nothing). `satchel serve` itself is killed (SIGKILL) and
              started again on the same port and directory (at once unless --down is
              given); afterwards `satchel sessions list` / `count` read the directory.

Variants (`--variants`, comma-separated; for redis and postgres the default is the first
two, for filesystem `default`):

  breaker     SESSION_STORE_FAILURE=unavailable, the breaker at its defaults
  no-breaker  SESSION_STORE_FAILURE=unavailable, SESSION_BREAKER_FAILURES=0 (no breaker)
  default     no failure setting: Satchel's defaults

`--env KEY=VALUE` (repeatable) adds a setting to every run (after the variant's). Satchel
always runs with RUST_LOG=warn and a fixed test SECRET_KEY.

After the load stops, each user sends one more `POST /write` (retried for up to 10 s while
the store recovers): its body minus 1 is the stored counter. A user's acknowledged writes
are all there when the stored counter is at least every `n` a 2xx write answered, and no
acknowledged `n` was answered again later (a store that went back and counted on would
hide a loss from the final counter alone). A lost session shows as a counter that starts
again at 1.

Each run prints a Markdown section (the settings; requests, ok, failed by kind; the
slowest, the median and the 99th percentile (nearest rank) of the failed responses'
durations; how many failed responses took longer than half the store timeout
(SESSION_STORE_TIMEOUT as given by `--env` or the variant, else Satchel's default 2s), and
how many of those sent after the run's first failure had been answered did, with the
slowest of them; how long the store was down, from the kill until
it accepts connections again: a PING answered PONG for Redis, `pg_isready` for
PostgreSQL, `GET /healthz` answered 200 by the restarted server for filesystem; the time
from its return to the first successful write; throughput before the fault and after
recovery; the users whose acknowledged writes are all there), then a table of every run (without
the throughput, which stays in the sections).
`--out FILE` writes the same Markdown to FILE; `--timeline` adds requests per second.

Needs redis-server (redis), PostgreSQL's initdb, pg_ctl and pg_isready (postgres), and a
release build of satchel (`--satchel PATH`, default target/release/satchel). Every child
process and temporary directory is removed at the end, on error and on Ctrl-C
(`--keep` keeps the directory, with the logs). Only 127.0.0.1 is contacted. The exit
status is 0 whatever the counts; 1 when a run could not be set up, 2 when a program is
missing, 130 on Ctrl-C.
"""
import argparse
import asyncio
import collections
import email.utils
import glob
import http.client
import json
import math
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "satchel-fault-report-test-key-0123456789abcdef"  # fixed, 46 bytes: tests only
SCENARIOS = ("redis", "postgres", "filesystem")
VARIANTS = {
    "breaker": ("SESSION_STORE_FAILURE=unavailable, the breaker at its defaults",
                {"SESSION_STORE_FAILURE": "unavailable"}),
    "no-breaker": ("SESSION_STORE_FAILURE=unavailable, no breaker",
                   {"SESSION_STORE_FAILURE": "unavailable", "SESSION_BREAKER_FAILURES": "0"}),
    "default": ("Satchel's default failure settings", {}),
}
DEFAULT_VARIANTS = {"redis": ("breaker", "no-breaker"), "postgres": ("breaker", "no-breaker"),
                    "filesystem": ("default",)}
DEFAULT_DOWN = {"redis": 3.0, "postgres": 3.0, "filesystem": 0.0}
PREFERRED_PORTS = {"redis": 16395, "postgres": 15439}
RECONNECT_PAUSE = 0.1  # seconds a user waits after a transport error before it reconnects
POLL = 0.02  # seconds between readiness probes of the store
VERIFY_FOR = 10.0  # seconds the final write of each user is retried
BACK_WITHIN = 60.0  # seconds the store gets to come back after its restart
DEFAULT_STORE_TIMEOUT = "2s"  # Satchel's default SESSION_STORE_TIMEOUT
DEFAULT_BREAKER = {"SESSION_BREAKER_FAILURES": "5", "SESSION_BREAKER_COOLDOWN": "1s"}  # Satchel's defaults
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+")


class Missing(Exception):
    """A program the requested scenarios need is not installed."""


class SetupFailed(Exception):
    """A run could not be set up (a server did not start): reported, not fatal."""


def clock():
    return time.perf_counter()


# --- child processes and temporary directories -------------------------------------------

LIVE = []  # closers of everything started and not yet stopped, in start order


def keep_alive(closer):
    LIVE.append(closer)
    return closer


def forget(closer):
    if closer in LIVE:
        LIVE.remove(closer)


def close_all():
    while LIVE:
        closer = LIVE.pop()
        try:
            closer()
        except Exception as error:  # keep closing the others
            print(f"fault-report: cleaning up: {error}", file=sys.stderr)


def port_is_free(port):
    """Nothing listens on it and it can be bound (as the servers bind: SO_REUSEADDR, so a
    port whose last connections linger in TIME_WAIT counts as free)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port(preferred=None):
    if preferred and port_is_free(preferred):
        return preferred
    for _ in range(20):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port_is_free(port):
            return port
    raise SetupFailed("no free port on 127.0.0.1")


def stop_process(process, grace=5.0):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def log_tail(path, lines=6):
    try:
        with open(path, errors="replace") as log:
            found = [ANSI.sub("", line).strip() for line in log if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(found[-lines:]) or "(empty log)"


def http_status(port, method, path, timeout=1.0):
    """The status of one request on a connection of its own; 0 when none came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        reply.read()
        return reply.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


class Satchel:
    """One `satchel serve` process on 127.0.0.1:port, its output in log_path."""

    def __init__(self, binary, framework, env, port, log_path):
        self.binary, self.framework, self.env, self.port, self.log_path = (
            binary, framework, env, port, log_path)
        self.process = None
        self.closer = None

    def spawn(self):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--framework", self.framework],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        process = self.process
        self.closer = keep_alive(lambda: stop_process(process))

    def start(self, within=30.0):
        """Spawns the server and waits until GET /healthz answers 200."""
        self.spawn()
        deadline = clock() + within
        while clock() < deadline:
            if self.process.poll() is not None:
                raise SetupFailed(f"satchel serve exited {self.process.returncode}: {log_tail(self.log_path)}")
            if http_status(self.port, "GET", "/healthz") == 200:
                return
            time.sleep(0.05)
        raise SetupFailed(f"satchel serve did not answer GET /healthz with 200 in {within:.0f} s: "
                          f"{log_tail(self.log_path)}")

    def healthy(self):
        return self.process.poll() is None and http_status(self.port, "GET", "/healthz") == 200

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)
        forget(self.closer)

    def stop(self):
        stop_process(self.process)
        forget(self.closer)


# --- the stores ----------------------------------------------------------------------------


class RedisStore:
    """A private redis-server with an append-only file, in a directory of its own."""

    name = "redis"

    def __init__(self, workdir):
        self.workdir = workdir
        self.dir = os.path.join(workdir, "redis")
        self.port = free_port(PREFERRED_PORTS["redis"])
        self.process = None
        self.closer = None
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                     "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                     "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]

    def describe(self):
        return (f"a private redis-server on 127.0.0.1:{self.port} "
                f"(`--appendonly yes --appendfsync everysec --save ''`)")

    def env(self, run_tag):
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": f"redis://127.0.0.1:{self.port}"}

    def spawn(self):
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        process = self.process
        self.closer = keep_alive(lambda: stop_process(process))

    def begin_run(self):
        """A fresh, empty redis-server: no append-only file of an earlier run."""
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.spawn()
        deadline = clock() + 30
        while clock() < deadline:
            if self.process.poll() is not None:
                raise SetupFailed(f"redis-server exited {self.process.returncode}: "
                                  f"{log_tail(os.path.join(self.dir, 'redis.log'))}")
            if self.ready():
                return
            time.sleep(0.05)
        raise SetupFailed("redis-server did not answer PING in 30 s")

    def ready(self):
        """Whether it accepts a connection and answers PING with PONG (not LOADING)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)
        forget(self.closer)

    def restart(self):
        self.spawn()

    def end_run(self):
        self.close()

    def close(self):
        if self.process is not None:
            stop_process(self.process)
            forget(self.closer)


def postgres_bin():
    """The directory of the newest PostgreSQL's initdb, pg_ctl and pg_isready."""
    def version(path):
        name = os.path.basename(os.path.dirname(path))
        return [int(part) for part in re.findall(r"\d+", name)] or [0]

    found = [os.path.dirname(path) for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=version)
    candidates = found[::-1]
    if shutil.which("initdb"):
        candidates.append(os.path.dirname(shutil.which("initdb")))
    for bin_dir in candidates:
        if all(os.access(os.path.join(bin_dir, program), os.X_OK) for program in ("initdb", "pg_ctl", "pg_isready")):
            return bin_dir
    raise Missing("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin with initdb, pg_ctl "
                  "and pg_isready (Debian: apt-get install postgresql)")


def as_postgres():
    """The prefix that runs a PostgreSQL program as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("runuser"):
        raise Missing("running as root, PostgreSQL needs `runuser` to start as the postgres user")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Missing("running as root, PostgreSQL needs a `postgres` user to run as (initdb refuses root)")
    return ["runuser", "-u", "postgres", "--"]


class PostgresStore:
    """A private PostgreSQL cluster in a temporary directory; one table per run."""

    name = "postgres"

    def __init__(self, workdir):
        self.bin = postgres_bin()
        self.prefix = as_postgres()
        self.dir = os.path.join(workdir, "postgres")
        os.makedirs(self.dir)
        if self.prefix:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "log")
        self.port = free_port(PREFERRED_PORTS["postgres"])
        self.running = False
        self.closer = None
        self.version = ""
        self.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync"], "initdb")
        with open(os.path.join(self.data, "PG_VERSION")) as version:
            self.version = version.read().strip()

    def run(self, argv, what, timeout=120):
        try:
            done = subprocess.run(self.prefix + argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise SetupFailed(f"{what} took over {timeout} s")
        if done.returncode != 0:
            output = " | ".join(line for line in (done.stdout + done.stderr).splitlines() if line.strip())
            raise SetupFailed(f"{what} failed ({done.returncode}): {output[-600:]} | log: {log_tail(self.log)}")

    def describe(self):
        return (f"a private PostgreSQL {self.version} cluster on 127.0.0.1:{self.port} "
                f"(initdb in a temporary directory, its default settings)")

    def env(self, run_tag):
        return {"SESSION_TYPE": "sqlalchemy",
                "SESSION_SQL_URL": f"postgres://postgres@127.0.0.1:{self.port}/postgres",
                "SESSION_SQLALCHEMY_TABLE": f"fault_{run_tag}"}

    def pg_ctl(self, *args, what, timeout=120):
        self.run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "60", *args], what, timeout)

    def start(self):
        if not self.closer:
            self.closer = keep_alive(self.close)
        self.pg_ctl("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "-l", self.log,
                    "start", what="pg_ctl start")
        self.running = True

    def ready(self):
        try:
            return subprocess.run([os.path.join(self.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                                   str(self.port), "-t", "1"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def kill(self):
        self.pg_ctl("-m", "immediate", "stop", what="pg_ctl stop -m immediate")
        self.running = False

    def restart(self):
        self.start()

    def begin_run(self):
        if not self.running or not self.ready():
            self.start()

    def end_run(self):
        pass

    def close(self):
        if self.closer:
            forget(self.closer)
            self.closer = None
        if not os.path.exists(os.path.join(self.data, "postmaster.pid")):
            return
        try:
            self.pg_ctl("-m", "immediate", "stop", what="pg_ctl stop", timeout=30)
        except SetupFailed:
            # The postmaster's pid is the file's first line; SIGQUIT is an immediate stop.
            try:
                with open(os.path.join(self.data, "postmaster.pid")) as pid_file:
                    os.kill(int(pid_file.readline()), signal.SIGQUIT)
            except (OSError, ValueError):
                pass
        self.running = False


class FilesystemStore:
    """A session directory; the fault is `satchel serve` killed and started again."""

    name = "filesystem"

    def __init__(self, workdir):
        self.workdir = workdir
        self.dir = None
        self.server = None  # set by the run: what the fault kills

    def describe(self):
        return "a session directory in a temporary directory; the fault kills `satchel serve` itself"

    def env(self, run_tag):
        self.dir = os.path.join(self.workdir, f"sessions_{run_tag}")
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": self.dir, "SESSION_FILE_THRESHOLD": "100000"}

    def begin_run(self):
        pass

    def end_run(self):
        pass

    def ready(self):
        return self.server.healthy()

    def kill(self):
        self.server.kill9()

    def restart(self):
        self.server.spawn()

    def close(self):
        pass


# --- HTTP/1.1 over asyncio streams ---------------------------------------------------------


class ProtocolError(Exception):
    pass


async def read_response(reader):
    """(status, [(name, value)], body) of one response; keep-alive aware."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        if not 100 <= status < 200:
            break
    fields = {name: value for name, value in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            chunks.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(chunks)
    elif "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    elif status in (204, 304):
        body = b""
    else:
        body = await reader.read()
        fields["connection"] = "close"
    return status, headers, body, fields.get("connection", "").lower() == "close"


class Client:
    """One user: a keep-alive connection (opened again when it breaks) and a cookie jar."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None
        self.jar = {}
        self.connects = 0

    def close(self):
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    def keep_cookies(self, headers):
        for name, value in headers:
            if name != "set-cookie":
                continue
            parts = [part.strip() for part in value.split(";")]
            key, _, cookie = parts[0].partition("=")
            attributes = {}
            for part in parts[1:]:
                attr, _, attr_value = part.partition("=")
                attributes[attr.strip().lower()] = attr_value.strip()
            max_age = attributes.get("max-age", "")
            removed = cookie == "" or (max_age.lstrip("-").isdigit() and int(max_age) <= 0)
            if "expires" in attributes and not max_age and not removed:
                try:
                    removed = email.utils.parsedate_to_datetime(attributes["expires"]).timestamp() <= time.time()
                except (TypeError, ValueError):
                    pass
            if removed:
                self.jar.pop(key.strip(), None)
            else:
                self.jar[key.strip()] = cookie

    async def exchange(self, method, path):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.connects += 1
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Length: 0\r\n"
        if self.jar:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.jar.items()) + "\r\n"
        self.writer.write((head + "\r\n").encode("latin-1"))
        await self.writer.drain()
        status, headers, body, close = await read_response(self.reader)
        self.keep_cookies(headers)
        if close:
            self.close()
        return status, body

    async def request(self, method, path, timeout):
        """(kind, status, body): kind is "http" (an answer), "timeout" or "transport"."""
        try:
            status, body = await asyncio.wait_for(self.exchange(method, path), timeout)
            return "http", status, body
        except asyncio.TimeoutError:
            self.close()
            return "timeout", 0, b""
        except ConnectionRefusedError:
            self.close()
            return "refused", 0, b""
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError,
                ValueError):
            self.close()
            return "transport", 0, b""


def counter(body):
    try:
        return int(body.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None


# --- one run -------------------------------------------------------------------------------


class Record:
    __slots__ = ("uid", "start", "end", "kind", "status", "n")

    def __init__(self, uid, start, end, kind, status, n):
        self.uid, self.start, self.end, self.kind, self.status, self.n = uid, start, end, kind, status, n

    @property
    def ok(self):
        return self.kind == "http" and 200 <= self.status < 300 and self.n is not None

    def failure(self):
        """The failure's label: "HTTP 503", "transport error", ...; None when ok."""
        if self.ok:
            return None
        if self.kind == "http":
            return f"HTTP {self.status}" if not 200 <= self.status < 300 else "2xx without a counter"
        return {"timeout": "timeout", "refused": "transport error (connection refused)"}.get(
            self.kind, "transport error")


class Load:
    """The users' closed loops of POST /write, every request recorded."""

    def __init__(self, port, users, timeout):
        self.timeout = timeout
        self.clients = {uid: Client(port) for uid in range(1, users + 1)}
        self.records = []
        self.stopping = False
        self.t0 = 0.0
        self.cpu = 0.0  # seconds of this process's CPU during the load

    async def login(self, uid):
        client = self.clients[uid]
        last = ""
        for _ in range(5):
            kind, status, _ = await client.request("POST", f"/login?uid={uid}", self.timeout)
            if kind == "http" and 200 <= status < 300 and client.jar:
                return
            last = f"HTTP {status}" if kind == "http" else kind
            await asyncio.sleep(0.2)
        raise SetupFailed(f"user {uid} could not log in ({last})")

    async def user(self, uid):
        client = self.clients[uid]
        while not self.stopping:
            start = clock() - self.t0
            kind, status, body = await client.request("POST", "/write", self.timeout)
            end = clock() - self.t0
            self.records.append(Record(uid, start, end, kind, status, counter(body) if kind == "http" else None))
            if kind in ("transport", "refused") and not self.stopping:
                await asyncio.sleep(RECONNECT_PAUSE)

    async def final_write(self, uid):
        """The stored counter (the body of one more write, minus 1), or (None, why)."""
        client = self.clients[uid]
        deadline = clock() + VERIFY_FOR
        while True:
            kind, status, body = await client.request("POST", "/write", self.timeout)
            n = counter(body) if kind == "http" else None
            if kind == "http" and 200 <= status < 300 and n is not None:
                return n - 1, ""
            why = f"HTTP {status}" if kind == "http" else kind
            if clock() >= deadline:
                return None, why
            await asyncio.sleep(0.25)


async def wait_until(probe, since, within):
    """The clock() at which `probe` first held, polled every POLL s; None after `within` s."""
    while True:
        if await asyncio.to_thread(probe):
            return clock()
        if clock() - since > within:
            return None
        await asyncio.sleep(POLL)


async def drive(store, port, args, down):
    """Logs the users in, loads, breaks the store, brings it back, loads, verifies."""
    load = Load(port, args.users, args.timeout)
    await asyncio.gather(*(load.login(uid) for uid in load.clients))
    events = {}
    load.t0 = clock()
    tasks = [asyncio.create_task(load.user(uid)) for uid in load.clients]
    restart_error = None
    cpu = time.process_time()
    try:
        await asyncio.sleep(args.before)
        events["kill"] = clock() - load.t0
        await asyncio.to_thread(store.kill)
        events["killed"] = clock() - load.t0
        await asyncio.sleep(max(0.0, events["kill"] + down - (clock() - load.t0)))
        events["restart"] = clock() - load.t0
        restarting = asyncio.create_task(asyncio.to_thread(store.restart))
        back = await wait_until(store.ready, clock(), BACK_WITHIN)
        try:
            await restarting
        except SetupFailed as error:
            restart_error = str(error)
        if back is not None:
            events["back"] = back - load.t0
            await asyncio.sleep(args.after)
    finally:
        load.stopping = True
        events["stop"] = clock() - load.t0
        load.cpu = time.process_time() - cpu
        await asyncio.gather(*tasks, return_exceptions=True)
    stored = {}
    if "back" in events:
        finals = await asyncio.gather(*(load.final_write(uid) for uid in load.clients))
        stored = dict(zip(load.clients, finals))
    for client in load.clients.values():
        client.close()
    return load, events, stored, restart_error


def satchel_env(store_env, variant_env, extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SESSION_") and k not in (
               "PERMANENT_SESSION_LIFETIME", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "RUST_LOG", "RUST_BACKTRACE")}
    shown = dict(store_env)
    shown.update(variant_env)
    shown.update(extra)
    env.update(shown)
    env.update(RUST_LOG="warn", SECRET_KEY=SECRET_KEY, NO_COLOR="1")
    return env, shown


FAILURE_KEYS = ("SESSION_STORE_FAILURE", "SESSION_BREAKER_FAILURES", "SESSION_BREAKER_COOLDOWN",
                "SESSION_STORE_TIMEOUT")


def settings_in_force(binary, env):
    """The failure settings as `satchel config` prints them (defaults included)."""
    try:
        done = subprocess.run([binary, "config"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r'^(SESSION_[A-Z_]+)\s*=\s*"?([^"#]*?)"?\s*(#.*)?$', line.strip())
        if match and match.group(1) in FAILURE_KEYS:
            found[match.group(1)] = match.group(2).strip()
    return {key: found[key] for key in FAILURE_KEYS if key in found}


def read_sessions_dir(binary, env, directory):
    """What `satchel sessions` reads from a filesystem store, and what the directory holds."""
    names = os.listdir(directory) if os.path.isdir(directory) else []
    files = [n for n in names if not n.startswith(".") and os.path.isfile(os.path.join(directory, n))]
    temps = [n for n in names if n.startswith(".tmp-")]
    found = {"files": len(files), "temps": len(temps)}
    for what, argv in (("count", ["sessions", "count", "--json"]), ("list", ["sessions", "list", "--json"])):
        try:
            done = subprocess.run([binary, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=120)
            found[what] = (done.returncode, done.stdout, ANSI.sub("", done.stderr).strip())
        except (OSError, subprocess.TimeoutExpired) as error:
            found[what] = (None, "", str(error))
    return found


def run_once(scenario, store, variant, args, workdir, serial):
    down = args.down if args.down is not None else DEFAULT_DOWN[scenario]
    tag = f"{serial}_{variant.replace('-', '_')}"
    label, variant_env = VARIANTS[variant]
    env, shown = satchel_env(store.env(tag), variant_env, args.env)
    port = free_port()
    log_path = os.path.join(workdir, f"satchel_{tag}.log")
    server = Satchel(args.satchel, args.framework, env, port, log_path)
    in_force = settings_in_force(args.satchel, env)
    store.begin_run()
    try:
        server.start()
        if isinstance(store, FilesystemStore):
            store.server = server
        load, events, stored, restart_error = asyncio.run(drive(store, port, args, down))
        sessions = None
        if isinstance(store, FilesystemStore):
            server.stop()
            sessions = read_sessions_dir(args.satchel, env, store.dir)
    finally:
        server.stop()
        store.end_run()
    return {
        "scenario": scenario, "variant": variant, "label": label, "shown": shown, "down": down,
        "store": store.describe(), "load": load, "events": events, "stored": stored,
        "restart_error": restart_error, "sessions": sessions, "log": log_path, "users": args.users,
        "client_cpu": load.cpu, "in_force": in_force,
    }


# --- the report ----------------------------------------------------------------------------


def ms(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds * 1000:.0f} ms"


def secs(value):
    return "—" if value is None else f"{value:.2f} s"


def rate(count, span):
    return f"{count / span:.0f} req/s" if span and span > 0 else "—"


def parse_duration(text):
    """Seconds of a duration such as `2s`, `500ms`, `1m`, `1m30s` or plain seconds (`2`,
    `1.5`); None when it is none of these."""
    text = (text or "").strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not DURATION.fullmatch(text):
        return None
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in DURATION_PART.findall(text))


def setting(result, key, default):
    """A setting as given to the run (`--env`, the variant), else as `satchel config`
    printed it, else `default`."""
    return result["shown"].get(key) or result["in_force"].get(key) or default


def percentile(values, fraction):
    """The nearest-rank percentile of `values` (fraction 0.99 for the 99th); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def opt_ms(seconds):
    return "—" if seconds is None else ms(seconds)


def check_users(load, stored):
    """Per user: acknowledged writes, missing ones, and whether the session was lost."""
    by_user = collections.defaultdict(list)
    for record in load.records:
        if record.ok:
            by_user[record.uid].append(record)
    users = {}
    for uid in load.clients:
        acked = sorted(by_user[uid], key=lambda r: r.start)
        missing, previous, highest, lost_session = 0, 0, 0, False
        for record in acked:
            if record.n <= previous:
                missing += previous - record.n + 1
                lost_session |= record.n == 1
            previous = record.n
            highest = max(highest, record.n)
        final, why = stored.get(uid, (None, "not verified: the store did not come back"))
        if final is not None and final < previous:
            missing += previous - final
            lost_session |= final == 0
        users[uid] = {"acked": len(acked), "highest": highest, "stored": final, "missing": missing,
                      "lost_session": lost_session, "why": why,
                      "all_there": final is not None and missing == 0 and final >= highest}
    return users


def summarize(result):
    load, events = result["load"], result["events"]
    records = load.records
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    kill, stop = events["kill"], events["stop"]
    back = events.get("back")
    before = [r for r in ok if r.end <= kill]
    first_ok = min((r.end for r in ok if back is not None and r.end >= back), default=None)
    after = [r for r in ok if first_ok is not None and r.end >= first_ok]
    users = check_users(load, result["stored"])
    timeout_text = setting(result, "SESSION_STORE_TIMEOUT", DEFAULT_STORE_TIMEOUT)
    timeout = parse_duration(timeout_text)
    durations = [r.end - r.start for r in failed]
    first_failure = min((r.end for r in failed), default=None)
    sent_after = [r.end - r.start for r in failed if first_failure is not None and r.start > first_failure]
    half = None if timeout is None else timeout / 2
    gaps = []
    for uid in load.clients:
        ends = sorted(r.end for r in ok if r.uid == uid)
        marks = [0.0] + ends + [stop]
        gaps.append(max(b - a for a, b in zip(marks, marks[1:])))
    return {
        "requests": len(records), "ok": len(ok), "failed": failed,
        "kinds": collections.Counter(r.failure() for r in failed),
        "slowest_failed": max((r.end - r.start for r in failed), default=None),
        "median_failed": statistics.median(durations) if failed else None,
        "p99_failed": percentile(durations, 0.99),
        "timeout_text": timeout_text, "timeout": timeout,
        "over_half": None if half is None else sum(1 for d in durations if d > half),
        "first_failure": first_failure,
        "sent_after_first": len(sent_after),
        "slow_after_first": None if half is None else sum(1 for d in sent_after if d > half),
        "slowest_after_first": max(sent_after, default=None),
        "down": None if back is None else back - kill,
        "back_to_ok": None if first_ok is None else first_ok - back,
        "ok_while_down": sum(1 for r in ok if r.start >= events["killed"] and r.end < events["restart"]),
        "before_rate": rate(len(before), kill),
        "after_rate": rate(len(after), None if first_ok is None else stop - first_ok),
        "users": users,
        "all_there": sum(1 for u in users.values() if u["all_there"]),
        "acked": sum(u["acked"] for u in users.values()),
        "missing": sum(u["missing"] for u in users.values()),
        "lost_sessions": sum(1 for u in users.values() if u["lost_session"]),
        "unverified": sum(1 for u in users.values() if u["stored"] is None),
        "users_failed": len({r.uid for r in failed}),
        "longest_gap": max(gaps) if gaps else None,
        "connects": sum(c.connects for c in load.clients.values()),
    }


def log_lines(path):
    """(count, [(count, line)]) of satchel's warning and error lines, most frequent first."""
    lines = collections.Counter()
    try:
        with open(path, errors="replace") as log:
            for line in log:
                line = TIMESTAMP.sub("", ANSI.sub("", line).strip())
                if re.search(r"\b(WARN|ERROR)\b|panicked", line):
                    lines[line[:240]] += 1
    except OSError:
        pass
    return sum(lines.values()), lines.most_common(3)


def section(result, summary, args):
    scenario, variant, events = result["scenario"], result["variant"], result["events"]
    settings = ", ".join(f"`{k}={v}`" if k != "SESSION_FILE_DIR" else f"`{k}=<a temporary directory>`"
                         for k, v in result["shown"].items())
    out = [f"### {scenario}, {variant}", ""]
    out.append(f"{result['label']}. Store: {result['store']}. Satchel: `satchel serve --framework "
               f"{args.framework}`, {settings}, `RUST_LOG=warn`, a fixed test `SECRET_KEY`.")
    if result["in_force"]:
        out.append("In force (`satchel config`): " + ", ".join(
            f"`{key}={value}`" for key, value in result["in_force"].items()) + ".")
    out.append("")
    fault = {"redis": "redis-server killed (SIGKILL)", "postgres": "`pg_ctl stop -m immediate`",
             "filesystem": "`satchel serve` killed (SIGKILL)"}[scenario]
    restart = {"redis": "started again on the same directory", "postgres": "`pg_ctl start`",
               "filesystem": "started again on the same port and directory"}[scenario]
    out.append(f"Load: {result['users']} users, closed loop of `POST /write`, {args.timeout:g} s client "
               f"timeout. {fault} at {events['kill']:.2f} s; {restart} at {events['restart']:.2f} s; "
               f"load stopped at {events['stop']:.2f} s. After a transport error a user waits "
               f"{RECONNECT_PAUSE:g} s, then connects again.")
    out.append("")
    if result["restart_error"]:
        out += [f"**The restart failed:** {result['restart_error']}", ""]
    if "back" not in events:
        out += [f"**The store did not come back within {BACK_WITHIN:.0f} s of its restart;** "
                f"nothing was verified.", ""]
    failed = summary["failed"]
    half_text = half_timeout_text(summary)
    kinds = ", ".join(f"{kind} × {count}" for kind, count in sorted(summary["kinds"].items())) or "none"
    rows = [
        ("requests (`POST /write`)", f"{summary['requests']}"),
        ("ok (2xx)", f"{summary['ok']}"),
        ("failed", f"{len(failed)} ({kinds})"),
        ("users who saw a failure", f"{summary['users_failed']} of {result['users']}"),
        ("slowest failed response", opt_ms(summary["slowest_failed"])),
        ("median failed response", opt_ms(summary["median_failed"])),
        ("p99 failed (99th percentile of the failed responses' durations)", opt_ms(summary["p99_failed"])),
        ("store timeout in force (`SESSION_STORE_TIMEOUT`)", f"`{summary['timeout_text']}`"),
        (f"failed > ½ timeout (longer than {half_text})", count_text(summary["over_half"])),
        ("first failure answered at", secs(summary["first_failure"])),
        ("failed responses sent after the first failure was answered", f"{summary['sent_after_first']}"),
        (f"slow after first failure: of those, longer than {half_text}",
         count_text(summary["slow_after_first"])),
        ("slowest failed response sent after the first failure was answered",
         opt_ms(summary["slowest_after_first"])),
        ("store down (kill → accepts connections again)", secs(summary["down"])),
        ("store back → first successful write", secs(summary["back_to_ok"])),
        ("longest a user went without a successful write", secs(summary["longest_gap"])),
        ("writes sent after the kill and answered 2xx before the restart", f"{summary['ok_while_down']}"),
        ("throughput before the fault", summary["before_rate"]),
        ("throughput after recovery (first successful write → end)", summary["after_rate"]),
        ("users whose acknowledged writes are all there", f"{summary['all_there']} of {result['users']}"),
        ("acknowledged writes", f"{summary['acked']}"),
        ("acknowledged writes missing", f"{summary['missing']}"),
        ("sessions lost (counter started again at 1)", f"{summary['lost_sessions']}"),
    ]
    if summary["unverified"]:
        rows.append(("users not verified (no final write succeeded)", f"{summary['unverified']}"))
    rows.append(("TCP connects (one per user at the start)", f"{summary['connects']}"))
    rows.append(("the load generator's CPU during the load (100% = one core)",
                 f"{100 * result['client_cpu'] / max(events['stop'], 1e-9):.0f}%"))
    out += ["| measure | value |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]
    out.append("")
    out += [slow_failures_note(result, summary), ""]
    by_kind = collections.defaultdict(list)
    for record in failed:
        by_kind[record.failure()].append(record.end - record.start)
    if by_kind:
        out += ["| failure | count | median | slowest |", "|---|---:|---:|---:|"]
        for kind, times in sorted(by_kind.items()):
            out.append(f"| {kind} | {len(times)} | {ms(statistics.median(times))} | {ms(max(times))} |")
        out.append("")
    bad = [(uid, u) for uid, u in result_users(summary) if not u["all_there"]]
    if bad:
        out.append("Users whose acknowledged writes are not all there:")
        out.append("")
        out += ["| user | acknowledged writes | highest n answered | stored n | missing | session lost |",
                "|---:|---:|---:|---:|---:|---|"]
        for uid, u in bad[:40]:
            stored = u["stored"] if u["stored"] is not None else f"— ({u['why']})"
            out.append(f"| {uid} | {u['acked']} | {u['highest']} | {stored} | {u['missing']} | "
                       f"{'yes' if u['lost_session'] else 'no'} |")
        if len(bad) > 40:
            out.append(f"| … {len(bad) - 40} more | | | | | |")
        out.append("")
    if result["sessions"] is not None:
        out += sessions_lines(result["sessions"], result["users"])
    count, common = log_lines(result["log"])
    if count:
        out.append(f"satchel's log: {count} warning and error lines; the most frequent:")
        out.append("")
        out += [f"- {n} × `{line.replace(chr(96), chr(39))}`" for line, n in common]
        out.append("")
    else:
        out += ["satchel's log: no warning or error lines.", ""]
    if args.timeline:
        out += timeline(result)
    return "\n".join(out)


def half_timeout_text(summary):
    return "½ timeout (unreadable timeout)" if summary["timeout"] is None else ms(summary["timeout"] / 2)


def count_text(count):
    return "—" if count is None else f"{count}"


def slow_failures_note(result, summary):
    """One line on the failed responses' durations against the store timeout."""
    failed = len(summary["failed"])
    timeout = summary["timeout_text"]
    if summary["timeout"] is None:
        return (f"SESSION_STORE_TIMEOUT `{timeout}` could not be read as a duration, so the failed responses "
                f"are not compared with it.")
    half = ms(summary["timeout"] / 2)
    if result["scenario"] == "filesystem":
        return (f"The filesystem store is not a networked store, so SESSION_STORE_TIMEOUT (`{timeout}`) does "
                f"not bound it: the failures here come from `satchel serve` itself being killed. "
                f"{count_text(summary['over_half'])} of {failed} failed responses took longer than {half} "
                f"(half of it); {count_text(summary['slow_after_first'])} of the "
                f"{summary['sent_after_first']} failed requests sent after the first failure was answered did.")
    failures = setting(result, "SESSION_BREAKER_FAILURES", DEFAULT_BREAKER["SESSION_BREAKER_FAILURES"])
    cooldown = setting(result, "SESSION_BREAKER_COOLDOWN", DEFAULT_BREAKER["SESSION_BREAKER_COOLDOWN"])
    if failures.strip() == "0":
        breaker = ("Without a breaker (`SESSION_BREAKER_FAILURES=0`), every request waits for the store, "
                   "up to the timeout.")
    else:
        breaker = (f"With the breaker (`SESSION_BREAKER_FAILURES={failures}`, `SESSION_BREAKER_COOLDOWN="
                   f"{cooldown}`), requests sent once it is open are answered at once, except one probe per "
                   f"cool-down that tries the store.")
    if summary["first_failure"] is None:
        after = "No request failed."
    elif not summary["sent_after_first"]:
        after = (f"No failed request was sent after the first failure was answered "
                 f"(at {summary['first_failure']:.2f} s).")
    else:
        after = (f"Of the {summary['sent_after_first']} failed requests sent after the first failure was "
                 f"answered (at {summary['first_failure']:.2f} s), {summary['slow_after_first']} took longer "
                 f"than {half}" + ("" if summary["slowest_after_first"] is None else
                                   f"; the slowest took {ms(summary['slowest_after_first'])}") + ".")
    return (f"Requests in flight when the store died wait for the store, its own retries included, up to "
            f"SESSION_STORE_TIMEOUT (`{timeout}`), before any failure is known: {summary['over_half']} of "
            f"{failed} failed responses took longer than {half} (half of it). {breaker} {after}")


def result_users(summary):
    return sorted(summary["users"].items())


def sessions_lines(found, users):
    out = []
    rc, stdout, stderr = found["list"]
    listed, owners = None, set()
    if rc == 0:
        try:
            entries = json.loads(stdout or "[]")
            listed = len(entries)
            owners = {e.get("user") for e in entries if e.get("user")}
        except ValueError:
            pass
    count_rc, count_out, count_err = found["count"]
    counted = None
    if count_rc == 0:
        try:
            counted = json.loads(count_out or "{}").get("count")
        except (ValueError, AttributeError):
            pass
    out.append(f"Session directory after the restart: {found['files']} files (each user's session and "
               f"user index: {2 * users} expected), {found['temps']} temporary files left by the kill.")
    out.append("")
    out += ["| `satchel sessions` | exit | sessions read | error output |", "|---|---:|---:|---|"]
    out.append(f"| `count --json` | {count_rc} | {'—' if counted is None else counted} | "
               f"{(count_err or 'none')[:300]} |")
    out.append(f"| `list --json` | {rc} | {'—' if listed is None else listed} | {(stderr or 'none')[:300]} |")
    out.append("")
    if listed is not None:
        expected = {str(uid) for uid in range(1, users + 1)}
        unread = found["files"] - listed - users
        out.append(f"Users with a session in the listing: {len(owners & expected)} of {users}; files neither "
                   f"read as a session nor a user's index: {max(0, unread)}.")
        out.append("")
    return out


def timeline(result):
    load, events = result["load"], result["events"]
    seconds = int(events["stop"]) + 1
    ok = [0] * seconds
    failed = [0] * seconds
    for record in load.records:
        second = min(int(record.end), seconds - 1)
        if record.ok:
            ok[second] += 1
        else:
            failed[second] += 1
    marks = collections.defaultdict(list)
    for name, text in (("kill", "fault"), ("restart", "restart"), ("back", "store back"), ("stop", "load stops")):
        if name in events:
            marks[min(int(events[name]), seconds - 1)].append(f"{text} at {events[name]:.2f} s")
    out = ["| second | ok | failed | event |", "|---:|---:|---:|---|"]
    for second in range(seconds):
        out.append(f"| {second} | {ok[second]} | {failed[second]} | {', '.join(marks[second])} |")
    return out + [""]


def overview(rows):
    """A table of every run; the throughput before and after is in each run's section."""
    out = ["### Every run", "",
           "| run | store timeout | requests | ok | failed | median failed | p99 failed | slowest failed "
           "| failed > ½ timeout | slow after first failure (slowest) | store down | back → first ok "
           "| acknowledged writes all there | missing |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result, summary in rows:
        slow_after = count_text(summary["slow_after_first"])
        if summary["slowest_after_first"] is not None:
            slow_after += f" ({ms(summary['slowest_after_first'])})"
        out.append(
            f"| {result['scenario']}, {result['variant']} | `{summary['timeout_text']}` | {summary['requests']} | "
            f"{summary['ok']} | {len(summary['failed'])} | {opt_ms(summary['median_failed'])} | "
            f"{opt_ms(summary['p99_failed'])} | {opt_ms(summary['slowest_failed'])} | "
            f"{count_text(summary['over_half'])} | {slow_after} | {secs(summary['down'])} | "
            f"{secs(summary['back_to_ok'])} | {summary['all_there']} of {result['users']} users | "
            f"{summary['missing']} |")
    out += ["", "Failed > ½ timeout: failed responses that took longer than half the store timeout. Slow after "
                "first failure: of the failed requests sent after the run's first failure was answered, those "
                "that took longer than half the store timeout (in brackets the slowest failed request sent "
                "then). Throughput before the fault and after recovery: in each run's section."]
    return "\n".join(out + [""])


# --- main ----------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description="A measured fault report of Satchel's session stores under a write load.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"{', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--satchel", default=os.path.join(ROOT, "target", "release", "satchel"),
                        help="the satchel binary (default: target/release/satchel)")
    parser.add_argument("--variants", help=f"comma-separated: {', '.join(VARIANTS)} (default: breaker,no-breaker "
                                           "for redis and postgres, default for filesystem)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="one more setting for satchel (repeatable)")
    parser.add_argument("--users", type=int, default=32, help="virtual users (default 32)")
    parser.add_argument("--before", type=float, default=2.0, help="seconds of load before the fault (default 2)")
    parser.add_argument("--down", type=float, default=None,
                        help="seconds from the kill to the restart (default 3; filesystem: 0)")
    parser.add_argument("--after", type=float, default=5.0,
                        help="seconds of load after the store is back (default 5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout of a request (default 10 s)")
    parser.add_argument("--framework", choices=("axum", "actix"), default="axum")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--timeline", action="store_true", help="add requests per second to each section")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r}: choose from {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    if args.variants:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        for variant in args.variants:
            if variant not in VARIANTS:
                parser.error(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
    extra = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env wants KEY=VALUE, not {item!r}")
        if key in ("RUST_LOG", "SECRET_KEY"):
            parser.error(f"--env {key}: satchel always runs with RUST_LOG=warn and a fixed test SECRET_KEY")
        extra[key] = value
    args.env = extra
    if args.users < 1:
        parser.error("--users must be at least 1")
    args.satchel = os.path.abspath(args.satchel)
    return args


def check_programs(args):
    if not (os.path.isfile(args.satchel) and os.access(args.satchel, os.X_OK)):
        raise Missing(f"no satchel binary at {args.satchel} (build it: cargo build --release -p satchel-cli, "
                      f"or give --satchel PATH)")
    if "redis" in args.scenarios and not shutil.which("redis-server"):
        raise Missing("redis-server is not installed (Debian: apt-get install redis-server)")
    if "postgres" in args.scenarios:
        postgres_bin()
        as_postgres()


def on_sigterm(signum, frame):
    """SIGTERM stops the report as Ctrl-C does (asyncio then cancels the load in order)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


def main():
    args = parse_args()
    try:
        check_programs(args)
    except Missing as error:
        print(f"fault-report: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = tempfile.mkdtemp(prefix="satchel-fault.")
    os.chmod(workdir, 0o755)  # the postgres user reaches its directory inside
    if not args.keep:
        keep_alive(lambda: shutil.rmtree(workdir, ignore_errors=True))
    sections, rows, status, serial = [], [], 0, 0
    print(f"## Fault report: {', '.join(args.scenarios)}\n", flush=True)
    try:
        for scenario in args.scenarios:
            variants = args.variants or DEFAULT_VARIANTS[scenario]
            store = None
            try:
                store = {"redis": RedisStore, "postgres": PostgresStore, "filesystem": FilesystemStore}[scenario](workdir)
                for variant in variants:
                    serial += 1
                    print(f"fault-report: {scenario}, {variant} …", file=sys.stderr, flush=True)
                    try:
                        result = run_once(scenario, store, variant, args, workdir, serial)
                    except SetupFailed as error:
                        text = f"### {scenario}, {variant}\n\n**Could not run:** {error}\n"
                        print(text, flush=True)
                        sections.append(text)
                        status = 1
                        continue
                    summary = summarize(result)
                    text = section(result, summary, args)
                    print(text, flush=True)
                    sections.append(text)
                    rows.append((result, summary))
            except SetupFailed as error:
                text = f"### {scenario}\n\n**Could not set up:** {error}\n"
                print(text, flush=True)
                sections.append(text)
                status = 1
            finally:
                if store is not None:
                    store.close()
        if rows:
            text = overview(rows)
            print(text, flush=True)
            sections.append(text)
    except KeyboardInterrupt:
        print("fault-report: interrupted; stopping every server", file=sys.stderr)
        status = 130
    finally:
        close_all()
        if args.keep:
            print(f"fault-report: logs kept in {workdir}", file=sys.stderr)
        if args.out:
            with open(args.out, "w") as out:
                out.write(f"## Fault report: {', '.join(args.scenarios)}\n\n" + "\n".join(sections))
    return status


if __name__ == "__main__":
    sys.exit(main())
