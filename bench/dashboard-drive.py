#!/usr/bin/env python3
"""Time the dashboard's pages and the REST API's domain routes of one `stsward serve`, for bench/dashboard.

Waits for GET /api/v1/health, logs in through POST /login (form fields user, password) and
keeps the session cookie, then requests each page sequentially on one keep-alive connection:
a warm-up of WARMUP requests, then REQUESTS timed ones (from sending the request to the last
byte of the body). Every answer must be 200, else it exits 1 naming the page and the status.
Prints p50, p95 (nearest rank) and max in ms per page, and appends them to RESULTS (TSV).

Usage: dashboard-drive.py --base URL --token T --user U --password-file F --domain D
                          --requests N --store NAME --results FILE [--pid PID] [--warmup N]
       dashboard-drive.py --table FILE      (the table of every store's results)
"""

import argparse
import http.client
import math
import os
import sys
import time
import urllib.parse

GOAL_MS = 200.0  # issue 9: p95 under 200 ms for both pages on both stores
TIMEOUT = 60.0   # seconds, any one request
HEALTH_DEADLINE = 120.0


def fail(msg):
    print(f"dashboard-drive: {msg}", file=sys.stderr)
    sys.exit(1)


def percentile(sorted_ms, p):
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http" or not u.hostname or not u.port:
            fail(f"--base: expected http://HOST:PORT, got {base!r}")
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, headers=None, body=None):
        """One request on the kept connection (reopened once if the server closed it)."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheaders(), data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def wait_health(client, pid):
    deadline = time.monotonic() + HEALTH_DEADLINE
    last = "no answer"
    while time.monotonic() < deadline:
        if pid and not os.path.exists(f"/proc/{pid}"):
            fail(f"stsward serve (pid {pid}) exited before it answered /api/v1/health")
        try:
            status, _, body = client.request("GET", "/api/v1/health")
            if status == 200:
                return
            last = f"{status} {body[:100]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    fail(f"/api/v1/health did not answer 200 within {HEALTH_DEADLINE:.0f} s: {last}")


def login(client, user, password):
    body = urllib.parse.urlencode({"user": user, "password": password})
    status, headers, data = client.request(
        "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    if status != 303:
        fail(f"POST /login: expected 303, got {status}: {data[:200]!r}")
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0].strip()
            if pair.split("=", 1)[0] in ("stsward_session", "__Host-stsward_session"):
                return pair
    fail("POST /login: no session cookie in the answer")


def time_page(client, label, path, headers, warmup, requests):
    def one():
        t0 = time.perf_counter()
        status, _, data = client.request("GET", path, headers)
        ms = (time.perf_counter() - t0) * 1000.0
        if status != 200:
            fail(f"{label}: GET {path} answered {status}, not 200: {data[:200]!r}")
        return ms, len(data)

    for _ in range(warmup):
        one()
    samples = []
    size = 0
    for _ in range(requests):
        ms, size = one()
        samples.append(ms)
    samples.sort()
    return percentile(samples, 50), percentile(samples, 95), samples[-1], size


def drive(args):
    with open(args.password_file, encoding="utf-8") as f:
        password = f.readline().rstrip("\n")
    client = Client(args.base)
    wait_health(client, args.pid)
    cookie = login(client, args.user, password)
    web = {"Cookie": cookie}
    api = {"Authorization": f"Bearer {args.token}"}
    d = urllib.parse.quote(args.domain, safe="")
    pages = [
        ("overview  GET /", "/", web),
        ("domain    GET /domains/D", f"/domains/{d}", web),
        ("api       GET /api/v1/domains", "/api/v1/domains", api),
        ("api       GET /api/v1/domains/D", f"/api/v1/domains/{d}", api),
        ("api       GET /api/v1/domains/D/readiness", f"/api/v1/domains/{d}/readiness", api),
    ]
    print(f"{args.store}: D = {args.domain}")
    print(f"{'':42} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'bytes':>9}")
    with open(args.results, "a", encoding="utf-8") as out:
        for label, path, headers in pages:
            p50, p95, worst, size = time_page(
                client, label, path, headers, args.warmup, args.requests)
            print(f"{label:42} {p50:9.1f} {p95:9.1f} {worst:9.1f} {size:9d}", flush=True)
            out.write(f"{args.store}\t{label}\t{p50:.1f}\t{p95:.1f}\t{worst:.1f}\n")


def table(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                fail(f"{path}: a line without 5 fields: {line!r}")
            rows.append(parts)
    if not rows:
        fail(f"{path}: no results")
    print(f"{'store':12} {'page':42} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  goal p95 < {GOAL_MS:.0f} ms")
    for store, label, p50, p95, worst in rows:
        met = "met" if float(p95) < GOAL_MS else "NOT met"
        print(f"{store:12} {label:42} {float(p50):9.1f} {float(p95):9.1f} {float(worst):9.1f}  {met}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table")
    ap.add_argument("--base")
    ap.add_argument("--token")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    ap.add_argument("--domain")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--store")
    ap.add_argument("--results")
    ap.add_argument("--pid", type=int)
    args = ap.parse_args()
    if args.table:
        table(args.table)
        return
    for name in ("base", "token", "user", "password_file", "domain", "store", "results"):
        if not getattr(args, name):
            fail(f"--{name.replace('_', '-')} is required")
    if args.requests < 1 or args.warmup < 0:
        fail("--requests must be at least 1 and --warmup at least 0")
    drive(args)


if __name__ == "__main__":
    main()
