"""What every Python binding test needs: a real all-in-one server on a free loopback port, a
temporary directory, store configurations and event queues (the Kotlin suite's Harness.kt)."""

import os
import queue
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest

import e2ee


STATUS_ORDER = [e2ee.MessageStatus.PENDING, e2ee.MessageStatus.SENT,
                e2ee.MessageStatus.DELIVERED, e2ee.MessageStatus.READ]


def at_least(status, wanted) -> bool:
    """Whether a message at `status` has reached `wanted` (statuses only move forward)."""
    return STATUS_ORDER.index(status) >= STATUS_ORDER.index(wanted)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The server binary `E2EE_SERVER_BIN` names, serving on a free port from a temporary dir."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="e2ee-python-"))
        port = free_port()
        binary = os.environ["E2EE_SERVER_BIN"]
        self.process = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{port}",
             "--keyserver-data-dir", str(self.dir), "--relay-data-dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert self.process.poll() is None, f"the server exited with {self.process.returncode}"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)

    def config(self, name: str, key_byte: Optional[int] = None) -> e2ee.ClientConfig:
        key = len(name) if key_byte is None else key_byte
        return e2ee.ClientConfig(
            server_url=self.url,
            store_path=str(self.dir / f"{name}.db"),
            store_key=bytes([key]) * 32,
        )

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Events(e2ee.EventListener):
    """A client whose events a listener puts in a queue, and waits that skip what they don't want."""

    def __init__(self, client: e2ee.Client):
        self.client = client
        self.queue: queue.Queue = queue.Queue()
        client.set_event_listener(self)

    def on_event(self, event):
        self.queue.put(event)

    def expect(self, what: str, pick, seconds: float = 30):
        """The first event `pick` accepts (returns not None for) within `seconds`, skipping others."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}"
            try:
                event = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            picked = pick(event)
            if picked is not None:
                return picked


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.close()
