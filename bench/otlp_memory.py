#!/usr/bin/env python3
"""Peak memory of `ward serve` while it is sent a crafted OTLP/JSON logs batch.

Usage: python3 bench/otlp_memory.py [--ward BINARY] [--cap BYTES] [ATTRIBUTE_MIB] [RECORDS]
       (defaults: target/release/ward built here, a 4 GiB address-space cap, 5 MiB, 1,000,000)
Needs: prlimit (util-linux), Linux /proc.

The batch is one resource whose one attribute is ATTRIBUTE_MIB of `x`, followed by RECORDS empty
log records (`{}`): under the 8 MiB body limit, but a converter that copies the resource's
attributes into every record's line would have to produce ATTRIBUTE_MIB × RECORDS. It is POSTed
to `/v1/logs/logs:checkout-web/otlp` as the `log-shipper` service, on a copy of the quickstart
served by BINARY under `prlimit --as=BYTES` (so that a server which would take all memory hits
the cap instead of the machine's limit). The server's VmHWM (peak resident set, from
/proc/PID/status) is read before the POST and every 20 ms during it; printed: the answer (or how
the server ended), the time, and VmHWM before and at its highest.
"""
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import free_port, wait_until_listening  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def crafted_batch(attribute_mib, records):
    head = ('{"resourceLogs":[{"resource":{"attributes":[{"key":"big","value":{"stringValue":"'
            + "x" * (attribute_mib << 20) + '"}}]},"scopeLogs":[{"logRecords":[').encode()
    return head + b",".join([b"{}"] * records) + b"]}]}]}"


def main():
    args = sys.argv[1:]
    binary = os.path.join(ROOT, "target", "release", "ward")
    cap = 4 << 30
    if "--ward" in args:
        at = args.index("--ward")
        binary = os.path.abspath(args[at + 1])
        del args[at : at + 2]
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ward"], cwd=ROOT, check=True)
    if "--cap" in args:
        at = args.index("--cap")
        cap = int(args[at + 1])
        del args[at : at + 2]
    attribute_mib = int(args[0]) if args else 5
    records = int(args[1]) if len(args) > 1 else 1_000_000
    body = crafted_batch(attribute_mib, records)

    work = tempfile.mkdtemp(prefix="ward-otlp-bench-")
    try:
        world = os.path.join(work, "quickstart")
        shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), world, ignore=shutil.ignore_patterns("data"))
        port = free_port()
        env = dict(os.environ, WARD_CONFIG=os.path.join(world, "ward.toml"), WARD_LISTEN=f"127.0.0.1:{port}",
                   WARD_URL=f"http://127.0.0.1:{port}", WARD_LOG="warn")
        log = open(os.path.join(work, "serve.log"), "w")
        # prlimit execs the server: the pid is the server's.
        server = subprocess.Popen(["prlimit", f"--as={cap}", "--", binary, "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log)
        wait_until_listening(port, server, lambda: f"{binary} serve did not start: {open(log.name).read()}")
        token = subprocess.run([binary, "admin", "token", "create", "log-shipper"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        before = vm_hwm_kib(server.pid)
        peak = [before]
        done = threading.Event()

        def watch():
            while not done.is_set():
                hwm = vm_hwm_kib(server.pid)
                if hwm is not None:
                    peak[0] = max(peak[0], hwm)
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            connection.request("POST", "/v1/logs/logs:checkout-web/otlp", body=body,
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            answer = f"HTTP {response.status}: {response.read()[:300].decode(errors='replace')}"
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            answer = f"no answer ({type(error).__name__}: {error})"
        elapsed = time.perf_counter() - started
        time.sleep(0.2)
        done.set()
        watcher.join()
        ended = server.poll()
        if ended is None:
            server.terminate()
            server.wait()
            state = "still serving"
        else:
            state = f"the server ended with {'signal ' + str(-ended) if ended < 0 else 'status ' + str(ended)}"
        log.close()
        last_words = [l for l in open(log.name).read().splitlines() if "alloc" in l or "memory" in l][-2:]
        print(f"binary {binary}, address-space cap {cap / (1 << 30):.1f} GiB")
        print(f"batch: {len(body) / (1 << 20):.2f} MiB, one {attribute_mib} MiB resource attribute, {records:,} empty records")
        print(f"  answer: {answer}")
        print(f"  {state}{'; ' + ' | '.join(last_words) if last_words else ''}")
        print(f"  time to the answer: {elapsed:.2f}s")
        print(f"  VmHWM before the POST: {before / 1024:.1f} MiB; highest seen: {peak[0] / 1024:.1f} MiB "
              f"(+{(peak[0] - before) / 1024:.1f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
