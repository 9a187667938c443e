#!/usr/bin/env python3
"""Streaming redaction, side by side: ward's engine vs ripgrep and sed on the same rules.

Usage: python3 bench/redact.py [SIZE_MB] [ROUNDS]      (defaults: 100 MB, 3 rounds)
Needs: cargo, rg (apt-get install ripgrep), GNU sed.

1. Writes a synthetic debug log of SIZE_MB (seeded, so every run sees the same bytes).
2. Runs, in alternating rounds, each on one core and from the page cache:
   - ward: crates/ward-redact/examples/redact.rs --rules bench/redact-rules.txt --fixed [REDACTED]
   - rg --passthru -r [REDACTED] -f bench/redact-rules.txt
   - sed -E with one s/…/[REDACTED]/g per rule (the order keeps them from interacting)
   and checks the three outputs are byte-identical.
3. Runs ward with gitleaks' whole rule set (and with ward's standard set: built-in + gitleaks +
   Nosey Parker) and keyed pseudonyms, for MB/s: on one core, and on every core of the machine
   (`--threads N`: chunks redacted side by side, the output in order).
Prints medians and ratios.
"""
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "bench", "redact-rules.txt")
WARD = os.path.join(ROOT, "target", "release", "examples", "redact")
FIXED = "[REDACTED]"


def synthetic_log(path, size_mb, seed=1):
    rng = random.Random(seed)
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    word = lambda n: "".join(rng.choice(alnum) for _ in range(n))
    services = ["payments-api", "checkout-web", "ledger", "auth", "search"]
    paths = ["/v1/charges", "/v1/refunds", "/v1/customers", "/healthz", "/v1/orders/42/items"]
    extras = [
        lambda: f"user={word(6).lower()}.{word(5).lower()}@example.com",
        lambda: "card=" + " ".join(str(rng.randint(1000, 9999)) for _ in range(4)),
        lambda: f"token=eyJ{word(20)}.eyJ{word(30)}.{word(43)}",
        lambda: f"authorization=\"Bearer {word(32)}\"",
        lambda: "aws_key=AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        lambda: f"db=postgres://{word(5).lower()}:{word(12)}@db{rng.randint(1, 9)}:5432/pay",
        lambda: f"client_ip={rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        lambda: f"phone=+{rng.randint(1, 99)} {rng.randint(10, 999)} {rng.randint(100000, 99999999)}",
    ]
    target = size_mb * 1024 * 1024
    written = 0
    with open(path, "w") as out:
        second = 0
        while written < target:
            second += 1
            fields = [
                f"2026-11-21T10:{(second // 60) % 60:02d}:{second % 60:02d}.{rng.randint(0, 999):03d}Z",
                rng.choice(["DEBUG", "INFO", "WARN"]),
                rng.choice(services),
                f"request_id={word(16).lower()}",
                f"method={rng.choice(['GET', 'POST'])} path={rng.choice(paths)} status={rng.choice([200, 201, 400, 404, 500])}",
            ]
            if rng.random() < 0.6:
                for extra in rng.sample(extras, rng.randint(1, 3)):
                    fields.append(extra())
            fields.append(f"took={rng.randint(1, 900)}ms")
            line = " ".join(fields) + "\n"
            out.write(line)
            written += len(line)


def run(command, stdin_path, stdout_path):
    with open(stdin_path, "rb") as stdin, open(stdout_path, "wb") as stdout:
        started = time.perf_counter()
        subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward-redact", "--example", "redact"], cwd=ROOT, check=True)
    work = "/tmp/ward-redact-bench"
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, f"synthetic-{size_mb}mb.log")
    if not os.path.exists(log) or os.path.getsize(log) < size_mb * 1024 * 1024:
        synthetic_log(log, size_mb)
    size = os.path.getsize(log) / 1e6
    patterns = [p for p in open(RULES).read().splitlines() if p.strip()]
    # URL passwords before e-mail addresses: sed applies its expressions one after another.
    sed_order = [5, 0, 1, 2, 3, 4, 6, 7]
    sed = ["sed", "-E"]
    for i in sed_order:
        sed += ["-e", "s/" + patterns[i].replace("/", "\\/") + "/" + FIXED.replace("[", "\\[").replace("]", "\\]") + "/g"]
    tools = {
        "ward": ["taskset", "-c", "0", WARD, "--rules", RULES, "--fixed", FIXED],
        "rg": ["taskset", "-c", "0", "rg", "--no-config", "--passthru", "--no-line-number", "--color", "never", "-r", FIXED, "-f", RULES],
        "sed": ["taskset", "-c", "0"] + sed,
    }
    times = {name: [] for name in tools}
    for _ in range(rounds):
        for name, command in tools.items():
            times[name].append(run(command, log, os.path.join(work, f"out-{name}")))
    digests = {name: sha256(os.path.join(work, f"out-{name}")) for name in tools}
    print(f"input: {size:.1f} MB, {rounds} rounds, one core each")
    for name in tools:
        median = statistics.median(times[name])
        print(f"  {name:5} median {median:.3f}s  {size / median:8.1f} MB/s  runs {[round(t, 3) for t in times[name]]}")
    ward = statistics.median(times["ward"])
    print(f"  ward / rg throughput:  {statistics.median(times['rg']) / ward:.2f}x")
    print(f"  ward / sed throughput: {statistics.median(times['sed']) / ward:.2f}x")
    print(f"  outputs byte-identical: {len(set(digests.values())) == 1} {digests}")
    cores = os.cpu_count() or 1
    for rules in ["gitleaks", "standard"]:
        one = [run(["taskset", "-c", "0", WARD, "--rules", rules], log, os.path.join(work, f"out-{rules}-1")) for _ in range(rounds)]
        every = [run([WARD, "--rules", rules, "--threads", str(cores)], log, os.path.join(work, f"out-{rules}-n")) for _ in range(rounds)]
        same = sha256(os.path.join(work, f"out-{rules}-1")) == sha256(os.path.join(work, f"out-{rules}-n"))
        for label, runs in [("1 core", one), (f"{cores} cores", every)]:
            median = statistics.median(runs)
            print(f"  ward --rules {rules} ({label}): median {median:.3f}s  {size / median:.1f} MB/s  runs {[round(t, 3) for t in runs]}")
        print(f"  ward --rules {rules}: same output on 1 and {cores} threads: {same}")


if __name__ == "__main__":
    main()
