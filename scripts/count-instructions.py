#!/usr/bin/env python3
"""Instructions per request of bench-contract servers, counted by callgrind.

    scripts/count-instructions.py [N]          # default: 2000 requests per scenario
    ONLY=satchel scripts/count-instructions.py # only the servers whose label contains "satchel"
    SCENARIOS=login,read scripts/...           # only these scenarios (none, read, write, login)
    SATCHEL=/path/to/satchel scripts/...       # count another build of satchel
    SATCHEL_ARGS="--metrics-bind 127.0.0.1:18999" scripts/...  # more `satchel serve` arguments
    ONLY=satchel_redis COUNT_REDIS=redis+cluster://127.0.0.1:7101 scripts/...  # another Redis

Runs each server under `valgrind --tool=callgrind`, logs one user in, sends 300 requests
of the scenario, zeroes the counters (`callgrind_control -z`), sends N more on one
keep-alive connection (after a log-in), dumps (`callgrind_control -d`) and prints the
server's user-space instructions divided by the requests of that window. The counts do
not depend on what else the machine is doing, unlike req/s.

Needs valgrind, target/release/satchel (`cargo build --release -p satchel-cli`), the
shared bench's peers built in $CARGO_TARGET_DIR (default /tmp/benchtarget; the bench's
run.sh builds them) and Redis on 127.0.0.1:6379 (db 3, as the bench uses).
"""
import glob
import http.client
import os
import shlex
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
PORT = 18998
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(os.environ.get("CARGO_TARGET_DIR", "/tmp/benchtarget"), "release")
SATCHEL = os.environ.get("SATCHEL", os.path.join(ROOT, "target", "release", "satchel"))
WORK = tempfile.mkdtemp(prefix="satchel-callgrind.")
REDIS = os.environ.get("COUNT_REDIS", "redis://127.0.0.1:6379/3")
SERVE = [SATCHEL, "serve", "--bind", f"127.0.0.1:{PORT}", *shlex.split(os.environ.get("SATCHEL_ARGS", ""))]
SERVERS = [
    ("plain", {"WORKERS": "2"}, [f"{PEERS}/plain", str(PORT)]),
    ("tower_mem", {"WORKERS": "2"}, [f"{PEERS}/tower_mem", str(PORT)]),
    ("satchel_mem", {"SESSION_TYPE": "memory"}, SERVE),
    ("tower_redis", {"WORKERS": "2", "REDIS_URL": REDIS}, [f"{PEERS}/tower_redis", str(PORT)]),
    ("satchel_redis", {"SESSION_TYPE": "redis", "SESSION_REDIS": REDIS}, SERVE),
    (
        "tower_sqlite",
        {"WORKERS": "2", "SQLITE_PATH": f"{WORK}/tower.db"},
        [f"{PEERS}/tower_sqlite", str(PORT)],
    ),
    (
        "satchel_sqlite",
        {"SESSION_TYPE": "sql", "SESSION_SQL_URL": f"sqlite://{WORK}/satchel.db?mode=rwc"},
        SERVE,
    ),
]
SCENARIOS = {
    "none": ("GET", "/none"),
    "read": ("GET", "/read"),
    "write": ("POST", "/write"),
    # A fresh browser logging in, each time as another user.
    "login": ("POST", "/login?uid={n}"),
}


class Client:
    """One keep-alive connection with a cookie jar."""

    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
        self.jar = {}

    def send(self, method, path):
        headers = {}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        self.conn.request(method, path, headers=headers)
        reply = self.conn.getresponse()
        body = reply.read()
        if reply.status >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status} {body!r}")
        for name, value in reply.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookie = rest.split(";", 1)[0]
                if cookie and "Max-Age=0" not in value:
                    self.jar[key] = cookie
                else:
                    self.jar.pop(key, None)

    def run(self, scenario, count):
        self.send("POST", "/login?uid=7")
        method, path = SCENARIOS[scenario]
        for n in range(count):
            if "{n}" in path:
                self.jar.clear()
            self.send(method, path.format(n=n))


def wait_until_up():
    for _ in range(600):
        try:
            Client().send("GET", "/none")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def count(label, env, command, scenario):
    out = f"{WORK}/{label}-{scenario}.out"
    # As in the benchmark: no access line per request (RUST_LOG in the environment wins).
    env = dict({"RUST_LOG": "warn"}, **os.environ, TOKIO_WORKER_THREADS="2", **env)
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up()
        Client().run(scenario, 300)
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True)
        Client().run(scenario, N)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    (dump,) = glob.glob(f"{out}.*")
    with open(dump) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("summary:"))
    return total // (N + 1)


def main():
    wanted = os.environ.get("SCENARIOS", "none,read,write,login").split(",")
    scenarios = [s for s in SCENARIOS if s in wanted]
    print("| server | " + " | ".join(scenarios) + " |")
    print("| --- |" + " ---: |" * len(scenarios))
    only = os.environ.get("ONLY", "")
    for label, env, command in SERVERS:
        if only not in label:
            continue
        cells = [f"{count(label, env, command, s):,}" for s in scenarios]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
