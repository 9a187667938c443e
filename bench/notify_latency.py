#!/usr/bin/env python3
"""Event committed → (finding →) signed webhook received: how long a notification takes end to end.

Usage: python3 bench/notify_latency.py [EVENTS] [CLIENTS] [--postgres URL]
       (defaults: 3000 events, 4 clients filing at once)
Needs: cargo.

Serves a copy of the quickstart (release build, SQLite unless --postgres) with one `[[notify]]`
webhook sink for `request.created`, pointed at a receiver in this script (a threaded HTTP/1.1
server on loopback), for `request.created` and `finding.opened`. The receiver checks every
delivery's signature as the Standard Webhooks specification says (HMAC-SHA256 of
`{webhook-id}.{webhook-timestamp}.{body}`) and notes when it arrived. Clients file EVENTS
requests over HTTP (keep-alive, CLIENTS threads at once, as fast as ward takes them: a burst, the
worst case for a sink that delivers in order), then a paced run files requests at 50/s. Every
request's reason is generic, so each opens a `weak-justification` finding: the rules' consumer
reads the request, commits the finding, and the sink delivers `finding.opened`.

The latency of a notification is its arrival minus its event's `recorded_at` (ward's clock, taken
just before the commit's transaction: the commit itself is included); that of a finding, the
arrival of its `finding.opened` minus the `recorded_at` of the request that triggered it (event →
finding → webhook). Prints p50, p90, p99 and the maximum of each for each run, and checks that
every event arrived once per id, signed.
"""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import free_port, wait_until_listening  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARD = os.path.join(ROOT, "target", "release", "ward")


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    key = b""
    arrived = {}  # webhook-id -> (arrival time, recorded_at)
    bad = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        msg_id, stamp = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        expected = base64.b64encode(hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
        signed = f"v1,{expected}" in self.headers.get("webhook-signature", "").split(" ")
        event = json.loads(body)["data"]
        with self.lock:
            if not signed:
                self.bad.append(msg_id)
            self.arrived.setdefault(msg_id, (now, event))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def file_requests(port, token, count, pace=None):
    """Files `count` requests over one keep-alive connection; with `pace` (seconds), one per pace."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    # Generic words only: a weak justification, a finding per request.
    body = json.dumps({"resource": "logs:payments-api", "role": "read", "duration": "30m",
                       "reason": "need access to debug the issue"})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.time()
    for i in range(count):
        if pace:
            delay = started + i * pace - time.time()
            if delay > 0:
                time.sleep(delay)
        connection.request("POST", "/v1/requests", body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"filing answered {response.status}")
    connection.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def recorded_at(event):
    return datetime.fromisoformat(event["recorded_at"].replace("Z", "+00:00")).timestamp()


def requests_by_seq(port, token):
    """`recorded_at` of every request.created in the log, by seq."""
    times, after = {}, 0
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("GET", f"/v1/audit/events?type=request.created&after_seq={after}&limit=10000",
                           headers={"Authorization": f"Bearer {token}"})
        page = json.loads(connection.getresponse().read())
        connection.close()
        for event in page:
            times[event["seq"]] = recorded_at(event)
        if len(page) < 10000:
            return times
        after = page[-1]["seq"]


def report(label, latencies):
    ms = lambda s: f"{s * 1000:.0f} ms"
    print(f"  {label}: p50 {ms(statistics.median(latencies))}, p90 {ms(percentile(latencies, 90))}, "
          f"p99 {ms(percentile(latencies, 99))}, max {ms(max(latencies))}")


def run(label, port, tokens, auditor, total, pace=None):
    Receiver.arrived.clear()
    per_client = total // len(tokens)
    started = time.time()
    threads = [threading.Thread(target=file_requests, args=(port, token, per_client, pace)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    filed = time.time() - started
    expected = per_client * len(tokens)

    def delivered(kind):
        return [(arrived, event) for arrived, event in list(Receiver.arrived.values()) if event["type"] == kind]

    def weak(deliveries):
        return [(a, e) for a, e in deliveries if e["details"]["rule"] == "weak-justification"]

    deadline = time.time() + 60
    while (len(delivered("request.created")) < expected or len(weak(delivered("finding.opened"))) < expected) \
            and time.time() < deadline:
        time.sleep(0.05)
    notices = [arrived - recorded_at(event) for arrived, event in delivered("request.created")]
    triggers = requests_by_seq(port, auditor)
    findings = [arrived - triggers[event["details"]["seqs"][0]] for arrived, event in weak(delivered("finding.opened"))]
    ok = len(notices) == expected and len(findings) == expected
    print(f"{label}: {expected} requests filed in {filed:.1f}s ({expected / filed:.0f}/s); delivered "
          f"{len(notices)} request.created, {len(findings)} weak-justification finding.opened"
          + ("" if ok else " — SOME MISSING"))
    if notices:
        report("event → webhook", notices)
    if findings:
        report("event → finding → webhook", findings)
    return ok


def main():
    args = sys.argv[1:]
    database = None
    if "--postgres" in args:
        at = args.index("--postgres")
        database = args[at + 1]
        del args[at : at + 2]
    total = int(args[0]) if args else 3000
    clients = int(args[1]) if len(args) > 1 else 4
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward"], cwd=ROOT, check=True)

    secret = secrets.token_bytes(32)
    Receiver.key = secret
    receiver = Server(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    work = tempfile.mkdtemp(prefix="ward-notify-bench-")
    server = None
    try:
        world = os.path.join(work, "world")
        shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), world, ignore=shutil.ignore_patterns("data"))
        secret_file = os.path.join(world, "hook.secret")
        with open(secret_file, "w") as f:
            f.write("whsec_" + base64.b64encode(secret).decode() + "\n")
        os.chmod(secret_file, 0o600)
        with open(os.path.join(world, "ward.toml"), "a") as f:
            f.write(f'\n[[notify]]\nname = "bench"\nkind = "webhook"\nurl = "http://127.0.0.1:{receiver.server_address[1]}/hook"\n'
                    f'secret_file = "hook.secret"\nevents = ["request.created", "finding.opened"]\n')
        port = free_port()
        env = dict(os.environ, WARD_CONFIG=os.path.join(world, "ward.toml"), WARD_LISTEN=f"127.0.0.1:{port}",
                   WARD_DATA_DIR=os.path.join(work, "data"), WARD_MAX_PENDING_REQUESTS="10000", WARD_LOG="warn")
        if database:
            env["WARD_DATABASE_URL"] = database
        log = os.path.join(work, "serve.log")
        server = subprocess.Popen([WARD, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        wait_until_listening(port, server, lambda: f"ward serve did not start:\n{open(log).read()}")
        users = ["alice", "bob", "erin", "dave"]
        tokens = [subprocess.run([WARD, "admin", "token", "create", users[i % len(users)]], env=env, capture_output=True,
                                 check=True).stdout.decode().strip() for i in range(clients)]
        auditor = subprocess.run([WARD, "admin", "token", "create", "carol"], env=env, capture_output=True,
                                 check=True).stdout.decode().strip()
        print(f"ward {'on PostgreSQL' if database else 'on SQLite'}, one webhook sink; {clients} clients")
        file_requests(port, tokens[0], 20)  # warm-up
        time.sleep(1)
        ok = run("burst", port, tokens, auditor, total)
        ok &= run("paced at 50/s", port, tokens, auditor, min(total, 1000), pace=len(tokens) / 50)
        if Receiver.bad:
            print(f"  {len(Receiver.bad)} deliveries with a bad signature")
            ok = False
    finally:
        if server:
            server.terminate()
            server.wait()
        receiver.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
