#!/usr/bin/env python3
"""`ward logs search` end to end over HTTP, next to ripgrep doing the same job.

Usage: python3 bench/logs_search.py [SIZE_MB] [ROUNDS]     (defaults: 1024 MB, 3 rounds)
Needs: cargo, rg (apt-get install ripgrep).

Writes a synthetic log of SIZE_MB (bench/redact.py's generator), serves a copy of the
quickstart with `logs:payments-api` reading it and `[redaction] rules = "builtin"`, gives alice a
grant, then times, in alternating rounds:
- ward: `ward logs search logs:payments-api PATTERN` (HTTP, redaction of every line, the pattern
  matched on the redacted text, the read recorded in the audit log);
- rg:   `rg PATTERN FILE | rg --passthru -r [REDACTED] -f bench/redact-rules.txt` (the pattern on
  the raw text, then redaction of the matching lines only).
Both print the same number of lines for the pattern used (it touches no redacted value).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redact import ROOT, RULES, synthetic_log  # noqa: E402

PATTERN = "took=899ms"
WARD = os.path.join(ROOT, "target", "release", "ward")


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="ward-logs-bench-")
    try:
        log = os.path.join(work, "big.log")
        synthetic_log(log, size_mb)
        world = os.path.join(work, "quickstart")
        shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), world, ignore=shutil.ignore_patterns("data"))
        config = os.path.join(world, "ward.toml")
        text = open(config).read()
        text = text.replace('sources = ["logs/payments-api/payments-api.log*"]', f'sources = ["{log}"]')
        text = text.replace('rules = "standard"', 'rules = "builtin"')
        open(config, "w").write(text)
        env = dict(os.environ, WARD_CONFIG=config, WARD_LISTEN="127.0.0.1:8599", WARD_URL="http://127.0.0.1:8599")
        server = subprocess.Popen([WARD, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            token = lambda user: subprocess.run([WARD, "admin", "token", "create", user], env=env, capture_output=True, text=True, check=True).stdout.strip()
            alice, bob = token("alice"), token("bob")
            filed = subprocess.run([WARD, "request", "logs:payments-api", "--role", "read", "--for", "4h", "--reason", "bench", "-o", "json"],
                                   env=dict(env, WARD_TOKEN=alice), capture_output=True, text=True, check=True).stdout
            request_id = __import__("json").loads(filed)["id"]
            subprocess.run([WARD, "approve", request_id], env=dict(env, WARD_TOKEN=bob), capture_output=True, check=True)
            ward_cmd = [WARD, "logs", "search", "logs:payments-api", PATTERN, "--limit", "100000"]
            rg_cmd = f"rg --no-config '{PATTERN}' '{log}' | rg --no-config --passthru -r '[REDACTED]' -f '{RULES}'"
            times = {"ward": [], "rg": []}
            counts = {}
            for _ in range(rounds):
                started = time.perf_counter()
                out = subprocess.run(ward_cmd, env=dict(env, WARD_TOKEN=alice), capture_output=True, check=True)
                times["ward"].append(time.perf_counter() - started)
                counts["ward"] = out.stdout.count(b"\n")
                started = time.perf_counter()
                out = subprocess.run(rg_cmd, shell=True, capture_output=True, check=True)
                times["rg"].append(time.perf_counter() - started)
                counts["rg"] = out.stdout.count(b"\n")
        finally:
            server.terminate()
            server.wait()
        size = os.path.getsize(log) / 1e6
        print(f"input: {size:.0f} MB, pattern {PATTERN!r}, {rounds} rounds")
        for name in times:
            median = statistics.median(times[name])
            print(f"  {name:4} median {median:.2f}s  {size / median:7.1f} MB/s  lines {counts[name]}  runs {[round(t, 2) for t in times[name]]}")
        print(f"  ward / rg time: {statistics.median(times['ward']) / statistics.median(times['rg']):.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
