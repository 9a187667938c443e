#!/usr/bin/env python3
"""`ward logs search` end to end over HTTP, next to ripgrep doing the same job.

Usage: python3 bench/logs_search.py [SIZE_MB] [ROUNDS] [RULES] [OTHER_WARD]
       (defaults: 1024 MB, 3 rounds, the `standard` rule set, no other ward)
Needs: cargo, rg (apt-get install ripgrep).

Writes a synthetic log of SIZE_MB (bench/redact.py's generator), serves a copy of the
quickstart with `logs:payments-api` reading it and `[redaction] rules = RULES` (`standard`, the
default, or `builtin`), gives alice a grant, then times, in alternating rounds, for a selective
pattern (`took=899ms`) and one whose literal is on every line (`request_id=\\w{14}zz `, so
that every chunk is redacted, the prefilter's worst case):
- ward: `ward logs search logs:payments-api PATTERN` (HTTP; the pattern matched on the redacted
  text; only the lines that may match redacted, with the lines around them the rules reach; the
  read recorded in the audit log);
- rg:   `rg PATTERN FILE | rg --passthru -r [REDACTED] -f bench/redact-rules.txt` (the pattern on
  the raw text, then redaction of the matching lines only);
- with OTHER_WARD (another build of ward, e.g. one from before a change): the same search through
  it, served on the same data, in the same rounds.
ward and rg print the same number of lines for the selective pattern (it touches no redacted value).
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

# A selective pattern; and one whose literal (`request_id=`) is on every line, so that every chunk
# is redacted, though few lines match: the prefilter's worst case.
PATTERNS = ["took=899ms", "request_id=\\w{14}zz "]
WARD = os.path.join(ROOT, "target", "release", "ward")


def serve(binary, config, port):
    env = dict(os.environ, WARD_CONFIG=config, WARD_LISTEN=f"127.0.0.1:{port}", WARD_URL=f"http://127.0.0.1:{port}")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    token = lambda user: subprocess.run([binary, "admin", "token", "create", user], env=env, capture_output=True, text=True, check=True).stdout.strip()
    alice, bob = token("alice"), token("bob")
    filed = subprocess.run([binary, "request", "logs:payments-api", "--role", "read", "--for", "4h", "--reason", "bench", "-o", "json"],
                           env=dict(env, WARD_TOKEN=alice), capture_output=True, text=True, check=True).stdout
    request_id = __import__("json").loads(filed)["id"]
    subprocess.run([binary, "approve", request_id], env=dict(env, WARD_TOKEN=bob), capture_output=True, check=True)
    return server, dict(env, WARD_TOKEN=alice)


def world(work, log, rules, name):
    world = os.path.join(work, name)
    shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), world, ignore=shutil.ignore_patterns("data"))
    config = os.path.join(world, "ward.toml")
    text = open(config).read()
    text = text.replace('sources = ["logs/payments-api/payments-api.log*"]', f'sources = ["{log}"]')
    text = text.replace('rules = "standard"', f'rules = "{rules}"')
    open(config, "w").write(text)
    return config


def timed(command, **kwargs):
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, check=True, **kwargs)
    return time.perf_counter() - started, out.stdout.count(b"\n")


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rules = sys.argv[3] if len(sys.argv) > 3 else "standard"
    other = sys.argv[4] if len(sys.argv) > 4 else None
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="ward-logs-bench-")
    servers = []
    try:
        log = os.path.join(work, "big.log")
        synthetic_log(log, size_mb)
        wards = {"ward": (WARD, 8599)}
        if other:
            wards["other"] = (other, 8598)
        envs = {}
        for name, (binary, port) in wards.items():
            server, env = serve(binary, world(work, log, rules, name), port)
            servers.append(server)
            envs[name] = env
        size = os.path.getsize(log) / 1e6
        print(f"input: {size:.0f} MB, rules {rules}, {rounds} rounds")
        for pattern in PATTERNS:
            times = {name: [] for name in [*wards, "rg"]}
            counts = {}
            for _ in range(rounds):
                for name, (binary, _) in wards.items():
                    command = [binary, "logs", "search", "logs:payments-api", pattern, "--limit", "100000"]
                    took, counts[name] = timed(command, env=envs[name])
                    times[name].append(took)
                rg = f"rg --no-config '{pattern}' '{log}' | head -100000 | rg --no-config --passthru -r '[REDACTED]' -f '{RULES}'"
                took, counts["rg"] = timed(rg, shell=True)
                times["rg"].append(took)
            print(f"pattern {pattern!r}")
            for name in times:
                median = statistics.median(times[name])
                print(f"  {name:5} median {median:.2f}s  {size / median:7.1f} MB/s  lines {counts[name]}  runs {[round(t, 2) for t in times[name]]}")
            for name in wards:
                print(f"  {name} / rg time: {statistics.median(times[name]) / statistics.median(times['rg']):.2f}x")
            if other:
                print(f"  ward / other time: {statistics.median(times['ward']) / statistics.median(times['other']):.2f}x")
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
