"""What the benchmarks that serve ward share: a free port, and waiting for the server to listen."""
import socket
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port, process, failure, seconds=60):
    """Waits until something listens on `port`; raises RuntimeError(failure()) if `process`
    ends first or `seconds` pass."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError(failure())
            time.sleep(0.1)
