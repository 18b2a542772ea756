#!/usr/bin/env python3
"""Races on one session, against `satchel serve`, on every store.

    python3 scripts/stress.py --bin target/release/satchel --cases counter,login-race --stores memory,redis --runs 20
    python3 scripts/stress.py --cases two-process-login --stores redis,postgres --attempts 6
    python3 scripts/stress.py --cases expiry
    python3 scripts/stress.py --framework both --json /tmp/stress.json | tee /tmp/stress.txt

Each race fires its requests at one instant: every connection is opened first (one
connection per request, `Connection: close`), the sending threads meet at a barrier, then
all send. Each run starts its own server with a fresh key prefix, table, collection, file
directory or SQLite file, so runs share no state; every server is stopped at the end, on
error and on Ctrl-C. Only 127.0.0.1 is contacted.

Cases (`--cases`, comma-separated; default all):

  counter            log in, then --writes concurrent POST /write on that cookie. Every
                     answered increment should be stored: final n == answers 200, and the
                     answered values all distinct.
  login-race         log in, then --sets concurrent POST /set/kI plus one POST /login (the
                     id rotation), all with the old cookie. Every acknowledged key should be
                     in a session afterwards, and no answer should hand back the old id.
  logout-race        the same with POST /logout: the old id must stay dead.
  clear-race         the same with POST /clear: once the clear emptied the session (its
                     answer removes the cookie), the old id must stay dead.
  two-process-login  two servers (axum and actix-web) on one shared store (every store but
                     memory), a fresh table per attempt on SQL; --burst cookieless requests at once, POST
                     /login?uid=I and POST /set/x alternating, half to each server. Any 500
                     is reported with the servers' distinct error lines.
  expiry             PERMANENT_SESSION_LIFETIME=2 with refresh on each request: log in, read
                     at 0.5 s, then read again 1.8 to 3.0 s after the last answer that set
                     the cookie. A session must never be served after the expiry its cookie
                     announced.

Columns (every count is summed over the runs):

  runs x req      runs (attempts) times the requests of each burst
  200s            answers 200; counter: "stored n" is the final n summed over the runs,
                  "lost" the increments answered 200 but not stored, "went back" the runs
                  whose final n is below an n already answered, "dup answers" the runs in
                  which two writes answered the same n
  sets 200        concurrent sets answered 200 ("acknowledged")
  kept            acknowledged sets whose key is afterwards in the browser's session: the
                  old id, or the id the login's answer gave
  stranded        acknowledged sets whose key is only in a stray session (below)
  lost            acknowledged sets whose key is in no session at all
  sets non-200    the sets' other statuses, as status:count (0: no answer)
  X status        the status of the one login, logout or clear, as status:count
  dead-id after   answers whose Set-Cookie names the old id (not a removal) and arrived after
                  the login/logout/clear answer: a browser would keep that dead id; "/ total"
                  counts them whenever they arrived
  old id alive    runs after which GET /dump with the old cookie still found data
  stray ids       sessions, with data, under ids that are neither the old nor the login's:
                  a set that found no session started one, and its answer named it
  new id given    runs whose login answer set a new id; "cookie removed": runs whose logout
                  answer removed the cookie; "clear emptied": runs whose clear answer removed
                  the cookie, and "alive though emptied" those of them after which the old id
                  still had data (must be 0)
  500s            answers 500, over every request of the burst
  other           every other status that is not 200, as status:count (0: no answer)
  200 without cookie, duplicate ids
                  two-process-login: answers 200 that set no cookie, and ids given twice
  served Xs       expiry: browsers still served X s after the last answer that set the
                  cookie, of those that ran (the lifetime is 2 s: only 1.8 s should be)
  refreshed 0.5s  expiry: browsers whose read at 0.5 s re-sent the cookie
  served past     expiry: reads served although sent after the expiry the last cookie
                  announced (its Expires, whose second was rounded down, plus 1 s, or its
                  receipt plus Max-Age, whichever is earlier); must be 0
  dropped early   expiry: reads answered 200 without the user although sent before the
                  cookie's Expires (the second, rounded down); must be 0

Under a table: runs whose set-up failed, and the servers' distinct error and warning
lines (two-process-login: those of attempts that answered a 500).

Stores (`--stores`; default all): memory, filesystem (a temporary directory), sqlite (a
temporary file), postgres, mariadb, redis, memcached, mongodb. The servers' addresses
default to those of `scripts/services.sh` and follow its SATCHEL_TEST_* variables when set.
Tables made on PostgreSQL and MariaDB are dropped at the end (psql, mariadb); Redis,
memcached and MongoDB entries expire on their own after --lifetime seconds (the emptied
MongoDB collections stay).

`--json FILE` writes every run's raw counts. The exit status is 0 whatever the counts; 1
when a server could not start (the other stores still run), 130 on Ctrl-C.
"""
import argparse
import atexit
import collections
import email.utils
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COOKIE = "session"
TIMEOUT = 15.0  # seconds: the most one request may take
ALL_STORES = ("memory", "filesystem", "sqlite", "postgres", "mariadb", "redis", "memcached", "mongodb")
SHARED_STORES = tuple(s for s in ALL_STORES if s != "memory")
EXPIRY_DELAYS = (1.8, 2.1, 2.3, 2.6, 3.0)
EXPIRY_LIFETIME = 2
SERVICES = {
    "redis": ("SATCHEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "memcached": ("SATCHEL_TEST_MEMCACHED", "127.0.0.1:11211,127.0.0.1:11212"),
    "mongodb": ("SATCHEL_TEST_MONGODB_URL", "mongodb://127.0.0.1:27018"),
    "postgres": ("SATCHEL_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
    "mariadb": ("SATCHEL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}


class HarnessError(Exception):
    """The harness cannot go on with a store (a server did not start)."""


class RunFailed(Exception):
    """One run's set-up failed (its log-in or a read answered badly): counted, not fatal."""


# --- HTTP ------------------------------------------------------------------------------------


class Cookie:
    """One `Set-Cookie` for the session cookie."""

    def __init__(self, header, received_wall):
        parts = [part.strip() for part in header.split(";")]
        name, _, self.value = parts[0].partition("=")
        self.name = name.strip()
        attributes = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            attributes[key.strip().lower()] = value.strip()
        max_age = attributes.get("max-age")
        self.removal = self.value == "" or max_age == "0"
        # Bounds of the expiry the server meant: HTTP dates drop the fraction of a second
        # (so Expires is at most 1 s early), and Max-Age is rounded up from the moment the
        # server wrote it (so the receipt plus Max-Age is not early).
        try:
            self.not_before = email.utils.parsedate_to_datetime(attributes["expires"]).timestamp()
        except (KeyError, TypeError, ValueError):
            self.not_before = None
        bounds = [self.not_before + 1.0] if self.not_before is not None else []
        if max_age is not None and max_age.isdigit():
            bounds.append(received_wall + int(max_age))
        self.deadline = min(bounds) if bounds else None


class Answer:
    """What one request got back; status 0 when no answer came."""

    def __init__(self, label, status=0, body="", cookies=(), sent_wall=0.0, error=""):
        self.label = label
        self.status = status
        self.body = body
        self.cookies = list(cookies)
        self.sent_wall = sent_wall
        self.arrived = time.monotonic()
        self.error = error

    def issued(self):
        """The id of the first cookie this answer set (not a removal), or None."""
        return next((c.value for c in self.cookies if not c.removal), None)

    def names(self, sid):
        """Whether this answer sets a cookie carrying `sid` (a removal does not count)."""
        return any(c.value == sid and not c.removal for c in self.cookies)

    def removes(self):
        return any(c.removal for c in self.cookies)


class Request:
    """One request on its own connection, opened before it is sent."""

    def __init__(self, port, method, path, cookie=None, label=None):
        self.method, self.path, self.cookie = method, path, cookie
        self.label = label or path
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.failure = ""

    def connect(self):
        try:
            self.conn.connect()
        except OSError as error:
            self.failure = f"connect: {error}"

    def send(self):
        if self.failure:
            return Answer(self.label, error=self.failure)
        headers = {"Connection": "close"}
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        sent_wall = time.time()
        try:
            self.conn.request(self.method, self.path, headers=headers)
            reply = self.conn.getresponse()
            body = reply.read().decode("utf-8", "replace")
            received = time.time()
            cookies = [Cookie(h, received) for h in reply.msg.get_all("Set-Cookie") or ()]
            cookies = [c for c in cookies if c.name == COOKIE]
            return Answer(self.label, reply.status, body, cookies, sent_wall)
        except (OSError, http.client.HTTPException) as error:
            return Answer(self.label, sent_wall=sent_wall, error=f"{type(error).__name__}: {error}")
        finally:
            self.conn.close()


def fire(requests):
    """Sends every request at one instant; answers in the order of `requests`."""
    for request in requests:
        request.connect()
    barrier = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def go(index, request):
        try:
            barrier.wait(timeout=TIMEOUT)
        except threading.BrokenBarrierError:
            pass
        answers[index] = request.send()

    threads = [threading.Thread(target=go, args=(i, r), daemon=True) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * TIMEOUT + 5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [a or Answer(r.label, error="no answer in time") for a, r in zip(answers, requests)]


def call(port, method, path, cookie=None):
    request = Request(port, method, path, cookie)
    request.connect()
    return request.send()


def login(port, uid=1):
    """Logs a new browser in; the answer, whose cookie names its session."""
    answer = call(port, "POST", f"/login?uid={uid}")
    if answer.status != 200 or not answer.issued():
        raise RunFailed(f"log-in answered {answer.status or answer.error}")
    return answer


def dump(port, sid):
    """The session `sid` names, as a dict ({} when there is none)."""
    answer = call(port, "GET", "/dump", sid)
    if answer.status != 200:
        raise RunFailed(f"GET /dump answered {answer.status or answer.error}")
    return json.loads(answer.body or "{}")


# --- servers ---------------------------------------------------------------------------------

LIVE = set()  # every server process not yet stopped


def stop_process(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    LIVE.discard(process)


def stop_all():
    for process in list(LIVE):
        stop_process(process)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ERROR_LINE = re.compile(r"ERROR|WARN|error|failed|panicked")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z\s+")


class Server:
    """One `satchel serve` on a free loopback port; stopped when the block ends."""

    def __init__(self, binary, env, framework, log_path):
        self.binary, self.env, self.framework, self.log_path = binary, env, framework, log_path
        self.port = None
        self.process = None

    def __enter__(self):
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--framework", self.framework],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        LIVE.add(self.process)
        try:
            self.wait_for_port()
        except BaseException:
            stop_process(self.process)
            raise
        return self

    def __exit__(self, *exc):
        stop_process(self.process)

    def wait_for_port(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"satchel serve ({self.framework}) exited {self.process.returncode}: "
                                   f"{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise HarnessError(f"satchel serve ({self.framework}) did not listen on {self.port} in 10 s: {self.tail()}")

    def tail(self):
        """The log from its first error line on (or its last three lines), on one line."""
        with open(self.log_path, errors="replace") as log:
            lines = [line.strip() for line in log if line.strip()]
        first = next((i for i, line in enumerate(lines) if line.lower().startswith("error")), len(lines) - 3)
        return " | ".join(lines[max(0, first):][:6])

    def error_lines(self):
        """The log's error and warning lines, without their timestamps."""
        with open(self.log_path, errors="replace") as log:
            return [TIMESTAMP.sub("", line.strip()) for line in log if ERROR_LINE.search(line)]


# --- stores and runs -------------------------------------------------------------------------


class Harness:
    """The settings, the scratch directory, and every namespace handed out (to clean up)."""

    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="satchel-stress-")
        self.serial = 0
        self.tables = collections.defaultdict(list)  # store -> tables made
        self.urls = {store: os.environ.get(var) or default for store, (var, default) in SERVICES.items()}
        self.start_failures = []
        self.base_env = {k: v for k, v in os.environ.items()
                         if not k.startswith("SESSION_") and k not in (
                             "PERMANENT_SESSION_LIFETIME", "SECRET_KEY", "SECRET_KEY_FALLBACKS",
                             "RUST_BACKTRACE")}
        self.base_env.update(TOKIO_WORKER_THREADS=str(args.workers), RUST_LOG=args.rust_log)

    def store_env(self, store, extra=None):
        """The environment of a server on `store` in a namespace of its own."""
        self.serial += 1
        tag = f"{os.getpid()}_{self.serial}"
        env = dict(self.base_env, SESSION_KEY_PREFIX=f"stress:{tag}:",
                   PERMANENT_SESSION_LIFETIME=str(self.args.lifetime))
        if store == "memory":
            env.update(SESSION_TYPE="memory")
        elif store == "filesystem":
            env.update(SESSION_TYPE="filesystem", SESSION_FILE_DIR=os.path.join(self.workdir, f"files_{tag}"))
        elif store == "sqlite":
            env.update(SESSION_TYPE="sqlalchemy", SESSION_SQL_URL=f"sqlite://{self.workdir}/sessions_{tag}.db")
        elif store in ("postgres", "mariadb"):
            table = f"stress_{tag}"
            self.tables[store].append(table)
            env.update(SESSION_TYPE="sqlalchemy", SESSION_SQL_URL=self.urls[store], SESSION_SQLALCHEMY_TABLE=table)
        elif store == "redis":
            env.update(SESSION_TYPE="redis", SESSION_REDIS=self.urls[store])
        elif store == "memcached":
            env.update(SESSION_TYPE="memcached", SESSION_MEMCACHED=self.urls[store])
        elif store == "mongodb":
            env.update(SESSION_TYPE="mongodb", SESSION_MONGODB=self.urls[store],
                       SESSION_MONGODB_COLLECT=f"stress_{tag}")
        env.update(extra or {})
        return env

    def server(self, env, framework):
        self.serial += 1
        return Server(self.args.bin, env, framework, os.path.join(self.workdir, f"serve_{self.serial}.log"))

    def runs(self, store, framework, run_once, count):
        """`count` runs of `run_once(port)`, each on a fresh server and namespace."""
        results, errors = [], collections.Counter()
        for _ in range(count):
            with self.server(self.store_env(store), framework) as server:
                try:
                    results.append(run_once(server.port))
                except RunFailed as failure:
                    results.append({"failed": str(failure)})
                errors.update(server.error_lines())
        return {"runs": results, "errors": dict(errors)}

    def cleanup(self):
        stop_all()
        if self.args.keep:
            print(f"kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.drop_tables()

    def drop_tables(self):
        for store, tables in self.tables.items():
            url = urllib.parse.urlsplit(self.urls[store])
            statement = "DROP TABLE IF EXISTS " + ", ".join(tables)
            if store == "postgres":
                command = ["psql", "-q", self.urls[store], "-c", statement]
            else:
                command = ["mariadb", "-h", url.hostname or "127.0.0.1", "-P", str(url.port or 3306),
                           "-u", url.username or "root", url.path.lstrip("/"), "-e", statement]
                if url.password:
                    command.insert(1, f"-p{urllib.parse.unquote(url.password)}")
            try:
                done = subprocess.run(command, capture_output=True, timeout=60).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                done = False
            if not done:
                print(f"{store}: could not drop {len(tables)} tables named stress_{os.getpid()}_*",
                      file=sys.stderr)


# --- the races -------------------------------------------------------------------------------


def statuses(answers):
    """The statuses that are not 200, as status -> count."""
    return dict(collections.Counter(str(a.status) for a in answers if a.status != 200))


def race_with_sets(port, sid, method, path, sets):
    """`sets` concurrent POST /set/kI and one other request, all with cookie `sid`."""
    requests = [Request(port, "POST", f"/set/k{i}", sid, label=f"k{i}") for i in range(sets)]
    requests.insert(sets // 2, Request(port, method, path, sid, label="other"))
    answers = fire(requests)
    other = next(a for a in answers if a.label == "other")
    return other, [a for a in answers if a.label != "other"]


def aftermath(port, old, new, other, sets):
    """What the race left: the sessions any answer named, and the fate of each acknowledged set."""
    ids = {old} | ({new} if new else set()) | {c.value for a in sets for c in a.cookies if not c.removal}
    sessions = {sid: dump(port, sid) for sid in ids}
    browser = set(sessions[old]) | set(sessions.get(new, ()))
    stray = set().union(*(data for sid, data in sessions.items() if sid not in (old, new)))
    acknowledged = [a.label for a in sets if a.status == 200]
    dead_id = [a for a in sets if a.names(old)]
    return {
        "sets": len(sets),
        "sets_ok": len(acknowledged),
        "sets_kept": sum(k in browser for k in acknowledged),
        "sets_stranded": sum(k in stray and k not in browser for k in acknowledged),
        "sets_lost": sum(k not in browser and k not in stray for k in acknowledged),
        "set_statuses": statuses(sets),
        "other_status": other.status,
        "dead_id_after": sum(a.arrived > other.arrived for a in dead_id),
        "dead_id_total": len(dead_id),
        "old_alive": bool(sessions[old]),
        "stray_ids": sum(1 for sid, data in sessions.items() if sid not in (old, new) and data),
        "500s": sum(a.status == 500 for a in sets + [other]),
    }


def counter_run(args):
    """One browser, --writes concurrent POST /write."""
    def run(port):
        sid = login(port).issued()
        answers = fire([Request(port, "POST", "/write", sid) for _ in range(args.writes)])
        values = [int(a.body) for a in answers if a.status == 200 and a.body.strip().isdigit()]
        final = dump(port, sid).get("n", 0)
        return {
            "requests": args.writes,
            "ok": sum(a.status == 200 for a in answers),
            "final_n": final,
            "max_answered": max(values, default=0),
            "went_backwards": final < max(values, default=0),
            "all_distinct": len(set(values)) == len(values),
            "statuses": statuses(answers),
            "500s": sum(a.status == 500 for a in answers),
        }
    return run


def login_race_run(args):
    def run(port):
        old = login(port).issued()
        other, sets = race_with_sets(port, old, "POST", "/login?uid=2", args.sets)
        new = other.issued() if other.status == 200 else None
        return aftermath(port, old, new, other, sets) | {"login_new_id": bool(new and new != old)}
    return run


def logout_race_run(args):
    def run(port):
        old = login(port).issued()
        other, sets = race_with_sets(port, old, "POST", "/logout", args.sets)
        return aftermath(port, old, None, other, sets) | {"logout_removed": other.removes()}
    return run


def clear_race_run(args):
    def run(port):
        old = login(port).issued()
        other, sets = race_with_sets(port, old, "POST", "/clear", args.sets)
        result = aftermath(port, old, None, other, sets)
        emptied = other.removes()
        return result | {"clear_emptied": emptied, "alive_after_emptied": emptied and result["old_alive"]}
    return run


def two_process_attempt(harness, store):
    """Two servers, axum and actix-web, on one fresh namespace of `store`; one burst."""
    env = harness.store_env(store)
    # One after the other: the second finds the table (or index) the first created.
    with harness.server(env, "axum") as axum, harness.server(env, "actix") as actix:
        ports = (axum.port, actix.port)
        requests = [Request(ports[(i // 2) % 2], "POST", f"/login?uid={i}" if i % 2 == 0 else "/set/x")
                    for i in range(harness.args.burst)]
        answers = fire(requests)
        ok = [a for a in answers if a.status == 200]
        ids = [a.issued() for a in ok if a.issued()]
        errors = collections.Counter(f"{server.framework}: {line}"
                                     for server in (axum, actix) for line in server.error_lines())
    return {
        "requests": len(answers),
        "ok": len(ok),
        "500s": sum(a.status == 500 for a in answers),
        "statuses": statuses(answers),
        "ok_without_cookie": len(ok) - len(ids),
        "duplicate_ids": len(ids) - len(set(ids)),
        "errors": dict(errors),
    }


def two_process_store(harness, store):
    attempts, errors = [], collections.Counter()
    for _ in range(harness.args.attempts):
        try:
            attempt = two_process_attempt(harness, store)
        except RunFailed as failure:
            attempt = {"failed": str(failure)}
        if attempt.get("500s"):
            errors.update(attempt["errors"])
        attempts.append(attempt)
    return {"runs": attempts, "errors": dict(errors)}


def expiry_browser(port, delay):
    """Log in, read at 0.5 s, read again `delay` s after the last answer that set the cookie."""
    first = login(port)
    last = first
    time.sleep(max(0.0, first.arrived + 0.5 - time.monotonic()))
    refresh = call(port, "GET", "/read", first.issued())
    if refresh.issued():
        last = refresh
    cookie = next(c for c in last.cookies if not c.removal)
    time.sleep(max(0.0, last.arrived + delay - time.monotonic()))
    read = call(port, "GET", "/read", cookie.value)
    served = read.status == 200 and read.body.strip() not in ("", "0")
    late = None if cookie.deadline is None else round(read.sent_wall - cookie.deadline, 3)
    return {
        "delay": delay,
        "refreshed": bool(refresh.issued()),
        "served": served,
        "sent_after_cookie_expiry_s": late,
        "served_past_cookie": served and late is not None and late > 0,
        "dropped_early": read.status == 200 and not served and cookie.not_before is not None
        and read.sent_wall < cookie.not_before,
        "statuses": statuses([refresh, read]),
        "500s": sum(a.status == 500 for a in (refresh, read)),
    }


def expiry_store(harness, store, framework):
    """One server with a 2 s lifetime; --expiry-browsers browsers per delay, all at once."""
    env = harness.store_env(store, {"PERMANENT_SESSION_LIFETIME": str(EXPIRY_LIFETIME),
                                    "SESSION_REFRESH_EACH_REQUEST": "true"})
    results = []

    def browse(port, delay):
        try:
            results.append(expiry_browser(port, delay))
        except RunFailed as failure:
            results.append({"delay": delay, "failed": str(failure)})

    with harness.server(env, framework) as server:
        threads = [threading.Thread(target=browse, args=(server.port, delay), daemon=True)
                   for delay in EXPIRY_DELAYS for _ in range(harness.args.expiry_browsers)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 0.5 + max(EXPIRY_DELAYS) + 3 * TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        errors = collections.Counter(server.error_lines())
    return {"runs": results, "errors": dict(errors)}


# --- tables ----------------------------------------------------------------------------------


def done(runs):
    """The runs whose set-up succeeded."""
    return [r for r in runs if "failed" not in r]


def total(runs, key):
    return sum(int(r.get(key) or 0) for r in runs)


def histogram(runs, *keys, leave_out=()):
    """The status histograms under `keys`, summed, as `status:count ...`."""
    counts = collections.Counter()
    for run in runs:
        for key in keys:
            counts.update({s: n for s, n in run.get(key, {}).items() if s not in leave_out})
    return " ".join(f"{status}:{n}" for status, n in sorted(counts.items())) or "-"


def shape(runs, requests):
    return f"{len(runs)}x{requests}"


def counter_row(runs):
    return [shape(runs, runs[0]["requests"] if runs else 0), total(runs, "ok"), total(runs, "final_n"),
            total(runs, "ok") - total(runs, "final_n"), total(runs, "went_backwards"),
            sum(not r["all_distinct"] for r in runs), total(runs, "500s"),
            histogram(runs, "statuses", leave_out=("500",))]


def race_row(extra):
    def row(runs):
        others = collections.Counter(str(r["other_status"]) for r in runs)
        return [shape(runs, runs[0]["sets"] + 1 if runs else 0), total(runs, "sets_ok"), total(runs, "sets_kept"),
                total(runs, "sets_stranded"), total(runs, "sets_lost"), histogram(runs, "set_statuses"),
                " ".join(f"{s}:{n}" for s, n in sorted(others.items())) or "-",
                f"{total(runs, 'dead_id_after')} / {total(runs, 'dead_id_total')}", total(runs, "old_alive"),
                total(runs, "stray_ids"), *[total(runs, key) for key in extra], total(runs, "500s")]
    return row


def race_columns(other, extra):
    return ["runs x req", "sets 200", "kept", "stranded", "lost", "sets non-200", f"{other} status",
            "dead-id after / total", "old id alive", "stray ids", *extra, "500s"]


def two_process_row(runs):
    return [shape(runs, runs[0]["requests"] if runs else 0), total(runs, "ok"), total(runs, "500s"),
            histogram(runs, "statuses", leave_out=("500",)), total(runs, "ok_without_cookie"),
            total(runs, "duplicate_ids")]


def expiry_row(runs):
    ran = [sum(r["delay"] == d for r in runs) for d in EXPIRY_DELAYS]
    served = [f"{sum(r['served'] for r in runs if r['delay'] == d)}/{n}" for d, n in zip(EXPIRY_DELAYS, ran)]
    return [shape(EXPIRY_DELAYS, max(ran)), *served, f"{total(runs, 'refreshed')}/{len(runs)}",
            total(runs, "served_past_cookie"), total(runs, "dropped_early"), total(runs, "500s"),
            histogram(runs, "statuses", leave_out=("500",))]


# Each case: how one store's results are made, the table's columns, and its row.
CASES = {
    "counter": (lambda h, store, fw: h.runs(store, fw, counter_run(h.args), h.args.runs),
                ["runs x req", "200s", "stored n", "lost", "went back", "dup answers", "500s", "other"],
                counter_row),
    "login-race": (lambda h, store, fw: h.runs(store, fw, login_race_run(h.args), h.args.runs),
                   race_columns("login", ["new id given"]), race_row(["login_new_id"])),
    "logout-race": (lambda h, store, fw: h.runs(store, fw, logout_race_run(h.args), h.args.runs),
                    race_columns("logout", ["cookie removed"]), race_row(["logout_removed"])),
    "clear-race": (lambda h, store, fw: h.runs(store, fw, clear_race_run(h.args), h.args.runs),
                   race_columns("clear", ["clear emptied", "alive though emptied"]),
                   race_row(["clear_emptied", "alive_after_emptied"])),
    "two-process-login": (lambda h, store, fw: two_process_store(h, store),
                          ["attempts x req", "200s", "500s", "other", "200 without cookie", "duplicate ids"],
                          two_process_row),
    "expiry": (expiry_store,
               ["delays x browsers", *[f"served {d}s" for d in EXPIRY_DELAYS], "refreshed 0.5s", "served past",
                "dropped early", "500s", "other"],
               expiry_row),
}


def print_table(title, columns, rows, notes=()):
    cells = [["store", *columns]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    print(f"\n{title}")
    for row in cells:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


def notes_for(label, record):
    """The lines under a table for one row: failed set-ups, then the servers' error lines."""
    notes = [f"{label}: {record['harness_error'][:300]}"] if "harness_error" in record else []
    failed = collections.Counter(r["failed"] for r in record.get("runs", []) if "failed" in r)
    if failed:
        notes.append(f"{label}: {sum(failed.values())} runs not counted: "
                     + "; ".join(f"{why} ({n})" for why, n in failed.most_common(3)))
    for line, n in collections.Counter(record.get("errors", {})).most_common(5):
        notes.append(f"{label}: {n}x {line[:220]}")
    return notes


# --- main ------------------------------------------------------------------------------------


def run_case(harness, case, stores, frameworks):
    """Runs one case on every store and prints its table; the raw results by row."""
    results_of, columns, row_of = CASES[case]
    if case == "two-process-login":
        stores, frameworks = [s for s in stores if s in SHARED_STORES], ["axum+actix"]
    rows, notes, results = [], [], {}
    for store in stores:
        for framework in frameworks:
            label = store if len(frameworks) == 1 else f"{store} ({framework})"
            started = time.monotonic()
            try:
                record = results_of(harness, store, framework)
                row = row_of(done(record["runs"]))
            except HarnessError as error:
                harness.start_failures.append(f"{case} {label}: {error}")
                record, row = {"harness_error": str(error), "runs": []}, ["could not start"]
            results[label] = record
            rows.append([label, *row])
            notes += notes_for(label, record)
            print(f"[{case}] {label}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    print_table(case, columns, rows, notes)
    return results


def comma_list(allowed):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
        return items
    return parse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/satchel"), help="the satchel binary")
    parser.add_argument("--cases", type=comma_list(tuple(CASES)), default=list(CASES),
                        help=f"comma-separated, of {','.join(CASES)} (default all)")
    parser.add_argument("--stores", type=comma_list(ALL_STORES), default=list(ALL_STORES),
                        help=f"comma-separated, of {','.join(ALL_STORES)} (default all)")
    parser.add_argument("--framework", choices=("axum", "actix", "both"), default="axum",
                        help="for every case but two-process-login, which always runs both")
    parser.add_argument("--runs", type=int, default=20, help="runs per store of the races (default 20)")
    parser.add_argument("--writes", type=int, default=30, help="concurrent writes in counter (default 30)")
    parser.add_argument("--sets", type=int, default=30, help="concurrent sets in the races (default 30)")
    parser.add_argument("--attempts", type=int, default=6, help="attempts of two-process-login (default 6)")
    parser.add_argument("--burst", type=int, default=48, help="requests per two-process-login attempt (default 48)")
    parser.add_argument("--expiry-browsers", type=int, default=3, help="browsers per delay in expiry (default 3)")
    parser.add_argument("--lifetime", type=int, default=3600,
                        help="PERMANENT_SESSION_LIFETIME of the races, seconds (default 3600)")
    parser.add_argument("--workers", type=int, default=2, help="TOKIO_WORKER_THREADS of each server (default 2)")
    parser.add_argument("--rust-log", default="warn", help="RUST_LOG of each server (default warn)")
    parser.add_argument("--json", metavar="FILE", help="write every run's raw counts here")
    parser.add_argument("--keep", action="store_true", help="keep the server logs, files and SQL tables")
    args = parser.parse_args()
    for name in ("runs", "writes", "sets", "attempts", "burst", "expiry_browsers", "workers", "lifetime"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more")
    return args


def main():
    args = parse_args()
    if not os.access(args.bin, os.X_OK):
        print(f"error: {args.bin} is not an executable satchel binary", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    atexit.register(stop_all)
    harness = Harness(args)
    frameworks = ["axum", "actix"] if args.framework == "both" else [args.framework]
    report = {"bin": os.path.abspath(args.bin), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "settings": {k: v for k, v in vars(args).items() if k != "json"}, "cases": {}}
    print(f"satchel stress: {args.bin}; {args.runs} runs, {args.writes} writes, {args.sets} sets, "
          f"{args.attempts} two-process attempts of {args.burst}; {args.workers} worker threads per server")
    try:
        for case in args.cases:
            report["cases"][case] = run_case(harness, case, args.stores, frameworks)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        harness.cleanup()
        if args.json:
            report["start_failures"] = harness.start_failures
            with open(args.json, "w") as out:
                json.dump(report, out, indent=1, sort_keys=True)
    for failure in harness.start_failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if harness.start_failures else 0


if __name__ == "__main__":
    sys.exit(main())
