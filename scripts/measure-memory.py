#!/usr/bin/env python3
"""Resident memory of `satchel serve` on the memory store with N live sessions.

    scripts/measure-memory.py [N] [CAPACITY]     # defaults: 100000 sessions, capacity 100000

Starts target/release/satchel (build it first), logs N users in over keep-alive
connections (each login is the bench contract's POST /login: five keys), and prints the
server's resident memory (VmRSS) before and after, per session, and what the store holds.
"""
import http.client
import os
import subprocess
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
CAPACITY = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
PORT = 18177
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def login_many(start, count):
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    for uid in range(start, start + count):
        conn.request("POST", f"/login?uid={uid}")
        reply = conn.getresponse()
        reply.read()
        if reply.status != 200 or not reply.getheader("set-cookie"):
            raise RuntimeError(f"login {uid}: {reply.status}")


def main():
    env = dict(os.environ, SESSION_TYPE="memory", SESSION_MEMORY_CAPACITY=str(CAPACITY),
               TOKIO_WORKER_THREADS="2")
    server = subprocess.Popen(
        [os.path.join(ROOT, "target/release/satchel"), "serve", "--bind", f"127.0.0.1:{PORT}"],
        env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT).request("GET", "/none")
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.3)
        before = rss_kib(server.pid)
        started = time.time()
        threads = [threading.Thread(target=login_many, args=(i * (N // 4), N // 4)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        time.sleep(0.5)
        after = rss_kib(server.pid)
        sessions = min(N - N % 4, CAPACITY)
        print(f"sessions created: {N - N % 4} in {elapsed:.1f} s; store capacity {CAPACITY}")
        print(f"VmRSS before: {before / 1024:.1f} MiB, after: {after / 1024:.1f} MiB, "
              f"growth: {(after - before) / 1024:.1f} MiB = {(after - before) * 1024 / sessions:.0f} bytes/session")
    finally:
        server.terminate()
        server.wait()


main()
