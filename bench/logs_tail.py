#!/usr/bin/env python3
"""`ward logs tail RESOURCE --lines 50` end to end over HTTP: its cost must not grow with the
resource's size.

Usage: python3 bench/logs_tail.py [BIG_MB] [ROUNDS] [--old WARD_BINARY COMMIT] [--keep-data]
       (defaults: 1000 MB, 5 rounds)
Needs: cargo, gzip.

Writes two rotated sets of a synthetic log (bench/redact.py's generator) under
/tmp/ward-tail-bench, ordered and dated as logrotate leaves them (x.log newest, then x.log.1,
x.log.2.gz, …):
- small: x.log (1 MB) + x.log.1 (4 MB) + x.log.2.gz + x.log.3.gz (2.5 MB each when unpacked),
  10 MB in all;
- big:   x.log (1 MB) + x.log.1 + x.log.2.gz … (BIG_MB / 10 each when unpacked), about BIG_MB.
Both x.log are the same bytes, so both tails print the same 50 lines.
For each set, serves a copy of the quickstart whose `logs:payments-api` reads it
(`[redaction] rules = "builtin"`), gives alice a grant, then times, in alternating rounds,
`ward logs tail logs:payments-api --lines 50` (a whole CLI process: HTTP, redaction, the read
recorded in the audit log) on the small and the big set. With --old, another ward binary (an
earlier version, built from COMMIT) is served with COMMIT's quickstart and timed the same way in
the same rounds, on the same files.
Prints medians and the ratios big/small (and old/new).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redact import ROOT, synthetic_log  # noqa: E402
from serving import free_port, wait_until_listening  # noqa: E402

WARD = os.path.join(ROOT, "target", "release", "ward")
DATA = "/tmp/ward-tail-bench"
MB = 1024 * 1024
TODAY = b"2026-11-21"
STAMP = re.compile(rb"^\S*?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)", re.M)


def write_set(directory, base, sizes):
    """x.log, x.log.1, x.log.2.gz, … of the given unpacked sizes (bytes), newest first: each
    file's lines dated one day before the previous file's, modification times to match."""
    os.makedirs(directory, exist_ok=True)
    now = time.time()
    for index, size in enumerate(sizes):
        name = "x.log" if index == 0 else f"x.log.{index}"
        body = base[:size]
        body = body[: body.rfind(b"\n") + 1]
        if index:
            body = body.replace(TODAY, f"2026-11-{21 - index:02d}".encode() if index < 21 else b"2026-10-01")
        path = os.path.join(directory, name)
        with open(path, "wb") as out:
            out.write(body)
        if index >= 2:
            subprocess.run(["gzip", "-6", "-f", path], check=True)
            path += ".gz"
        os.utime(path, (now - index * 86400, now - index * 86400))


def prepare_data(big_mb):
    marker = os.path.join(DATA, f"ready-{big_mb}")
    if os.path.exists(marker):
        return
    shutil.rmtree(DATA, ignore_errors=True)
    os.makedirs(DATA)
    chunk_mb = max(5, big_mb // 10)
    base_path = os.path.join(DATA, "base.log")
    synthetic_log(base_path, chunk_mb)
    with open(base_path, "rb") as f:
        base = f.read()
    os.remove(base_path)
    write_set(os.path.join(DATA, "small"), base, [1 * MB, 4 * MB, 5 * MB // 2, 5 * MB // 2])
    big_files = max(2, round((big_mb - 1) / chunk_mb) + 1)
    write_set(os.path.join(DATA, "big"), base, [1 * MB] + [chunk_mb * MB] * (big_files - 1))
    open(marker, "w").close()


def unpacked_mb(directory):
    total = 0
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(".gz"):
            out = subprocess.run(["gzip", "-l", "-q", path], capture_output=True, text=True, check=True).stdout
            total += int(out.split()[1])
        else:
            total += os.path.getsize(path)
    return total / 1e6


def copy_quickstart(dest, commit=None):
    """examples/quickstart as in the working tree, or as at `commit` (an older binary may not
    know a newer setting)."""
    if commit is None:
        shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), dest, ignore=shutil.ignore_patterns("data"))
        return
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "examples/quickstart"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "--strip-components=2", "-C", dest], input=archive, check=True)
    shutil.rmtree(os.path.join(dest, "data"), ignore_errors=True)


class World:
    """A copy of the quickstart served by `binary`, `logs:payments-api` reading `logs_dir`."""

    def __init__(self, work, name, binary, commit, logs_dir):
        self.binary = binary
        root = os.path.join(work, name)
        copy_quickstart(root, commit)
        config = os.path.join(root, "ward.toml")
        text = open(config).read()
        for quickstart, bench in [('sources = ["logs/payments-api/payments-api.log*"]', f'sources = ["{logs_dir}/x.log*"]'),
                                  ('rules = "standard"', 'rules = "builtin"')]:
            if quickstart not in text:
                raise RuntimeError(f"the quickstart's ward.toml no longer holds {quickstart!r}")
            text = text.replace(quickstart, bench)
        open(config, "w").write(text)
        port = free_port()
        self.env = dict(os.environ, WARD_CONFIG=config, WARD_LISTEN=f"127.0.0.1:{port}", WARD_URL=f"http://127.0.0.1:{port}")
        self.server = subprocess.Popen([binary, "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "serve.log"), "w"))
        wait_until_listening(port, self.server, lambda: f"{binary} serve did not start (see {root}/serve.log)")
        token = lambda user: self.run_ok(["admin", "token", "create", user]).decode().strip()
        self.alice, bob = token("alice"), token("bob")
        filed = self.run_ok(["request", "logs:payments-api", "--role", "read", "--for", "4h", "--reason", "bench", "-o", "json"], self.alice)
        self.run_ok(["approve", json.loads(filed)["id"]], bob)

    def run_ok(self, args, token=None):
        env = dict(self.env, WARD_TOKEN=token) if token else self.env
        return subprocess.run([self.binary] + args, env=env, capture_output=True, check=True).stdout

    def tail(self):
        """The time of one tail, why it failed (None when it printed its 50 lines), and the
        timestamps of the lines it printed."""
        started = time.perf_counter()
        done = subprocess.run([self.binary, "logs", "tail", "logs:payments-api", "--lines", "50"],
                              env=dict(self.env, WARD_TOKEN=self.alice), capture_output=True)
        elapsed = time.perf_counter() - started
        lines = done.stdout.count(b"\n")
        if done.returncode != 0 or lines != 50:
            return elapsed, f"exit {done.returncode}, {lines} lines: {done.stderr.decode(errors='replace').strip()[:200]}", None
        return elapsed, None, STAMP.findall(done.stdout)

    def stop(self):
        self.server.terminate()
        self.server.wait()


def main():
    args = sys.argv[1:]
    old = None
    if "--old" in args:
        at = args.index("--old")
        old = (os.path.abspath(args[at + 1]), args[at + 2])
        del args[at : at + 3]
    keep = "--keep-data" in args
    args = [a for a in args if a != "--keep-data"]
    big_mb = int(args[0]) if args else 1000
    rounds = int(args[1]) if len(args) > 1 else 5
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward"], cwd=ROOT, check=True)
    prepare_data(big_mb)
    binaries = {"new": (WARD, None)} if old is None else {"new": (WARD, None), "old": old}
    work = tempfile.mkdtemp(prefix="ward-tail-bench-")
    worlds = {}
    try:
        for version, (binary, commit) in binaries.items():
            for size in ["small", "big"]:
                worlds[(version, size)] = World(work, f"{version}-{size}", binary, commit, os.path.join(DATA, size))
        # The newest 50 lines are x.log's last 50 (the same file in both sets).
        with open(os.path.join(DATA, "small", "x.log"), "rb") as f:
            newest = STAMP.findall(f.read())[-50:]
        times = {key: [] for key in worlds}
        failures = {key: [] for key in worlds}
        for world in worlds.values():
            world.tail()  # warm-up: page cache, connections, first redaction of the rule set
        for _ in range(rounds):
            for key, world in worlds.items():
                elapsed, failure, stamps = world.tail()
                if failure:
                    failures[key].append(f"after {elapsed:.1f}s: {failure}")
                    continue
                times[key].append(elapsed)
                if stamps != newest:
                    failures[key].append(f"printed 50 lines, not the newest: from {stamps[0].decode()} to {stamps[-1].decode()}")
    finally:
        for world in worlds.values():
            world.stop()
        shutil.rmtree(work, ignore_errors=True)
    sizes = {size: unpacked_mb(os.path.join(DATA, size)) for size in ["small", "big"]}
    print(f"resources: small {sizes['small']:.0f} MB, big {sizes['big']:.0f} MB (unpacked); {rounds} rounds; 50 lines each")
    medians = {key: statistics.median(values) for key, values in times.items() if values}
    for (version, size), values in times.items():
        median = f"median {medians[(version, size)]:.3f}s" if values else "no run succeeded"
        print(f"  {version:3} {size:5} {median}  runs {[round(t, 3) for t in values]}")
        for failure in failures[(version, size)]:
            print(f"      {failure}")
    ratio = lambda a, b: f"{medians[a] / medians[b]:.2f}x" if a in medians and b in medians else "n/a"
    for version in binaries:
        pairs = [b / s for b, s in zip(times[(version, "big")], times[(version, "small")])]
        paired = f"; median of the rounds' ratios {statistics.median(pairs):.2f}x" if pairs else ""
        print(f"  {version}: big / small {ratio((version, 'big'), (version, 'small'))}{paired}")
    if old:
        for size in ["small", "big"]:
            print(f"  {size}: old / new {ratio(('old', size), ('new', size))}")
    if not keep:
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
