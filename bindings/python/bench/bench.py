"""The bindings' overhead benchmark (bindings/README.md, Measured): a 100-byte encrypt and
decrypt through the Python bindings, paired round by round with the same calls made in Rust
(benchmark_round_trips_in_rust) on the same two devices in the same process, and the time from
Client construction to the first message the relay confirms, against a real server. The Kotlin
benchmark (bindings/kotlin/src/bench) makes the same measurements.

Usage: bench.py [ROUNDS [CALLS [STARTS]]] (bindings/bench.sh passes them; the test suite runs it
with tiny counts so it cannot rot)."""

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import e2ee  # noqa: E402
from conftest import Server, at_least  # noqa: E402

BODY_LEN = 100
WARM_UP_ROUNDS = 3


class Pairing:
    def __init__(self, directory: Path):
        self.ann = e2ee.create_primary_device(str(directory / "ann.db"), bytes([1]) * 32, "ann", 1)
        self.ben = e2ee.create_primary_device(str(directory / "ben.db"), bytes([2]) * 32, "ben", 1)
        self.ann_address = e2ee.Address(user="ann", device=1)
        self.relay_id = 1
        self.body = b"a" * BODY_LEN
        upload = self.ben.device.generate_prekeys(1)
        self.ann.device.learn_user("ben", self.ben.registration.account_key, self.ben.registration.device_list)
        self.ben.device.learn_user("ann", self.ann.registration.account_key, self.ann.registration.device_list)
        self.ann.device.add_bundle(e2ee.Address(user="ben", device=1),
                                   e2ee.prekey_bundle(self.ben.registration, upload, 0))

    def python(self, calls: int):
        encrypt, decrypt = [], []
        clock = time.perf_counter_ns
        ann, ben = self.ann.device, self.ben.device
        for _ in range(calls):
            start = clock()
            sent = ann.send_message("ben", self.body)
            encrypt.append(clock() - start)
            (envelope,) = sent.entry.envelopes
            start = clock()
            received = ben.receive(self.ann_address, self.relay_id, envelope.ciphertext)
            decrypt.append(clock() - start)
            self.relay_id += 1
            assert isinstance(received, e2ee.Received.MESSAGE), received
            ann.acknowledged(sent.entry.msg_id)
        return encrypt, decrypt

    def smallest_call(self, calls: int) -> float:
        """Median time of a call that does almost nothing in Rust."""
        clock, times = time.perf_counter_ns, []
        for _ in range(calls * 10):
            start = clock()
            self.ann.device.address()
            times.append(clock() - start)
        return statistics.median(times)

    def rust(self, calls: int):
        times = e2ee.benchmark_round_trips_in_rust(self.ann.device, self.ben.device, calls, BODY_LEN, self.relay_id)
        self.relay_id += calls
        return times.encrypt_ns, times.decrypt_ns


def micros(nanos: float) -> str:
    return f"{nanos / 1000:.1f} µs"


def report(what: str, python, rust):
    ratios = [statistics.median(p) / statistics.median(r) for p, r in zip(python, rust)]
    p = statistics.median(x for side in python for x in side)
    r = statistics.median(x for side in rust for x in side)
    print(f"{what}: python {micros(p)}, rust {micros(r)}, overhead {micros(p - r)}; "
          f"ratio python/rust per round median {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")


def time_to_first_sent(construct) -> float:
    """Milliseconds from the constructor's call to the relay confirming the first message."""
    start = time.perf_counter_ns()
    client = construct()
    msg_id = client.send("bob", b"b" * BODY_LEN)
    while True:
        event = client.next_event(30_000)
        assert event is not None, "no confirmation within 30 s"
        if isinstance(event, e2ee.Event.STATUS_CHANGED) and event.message.id == msg_id \
                and at_least(event.message.status, e2ee.MessageStatus.SENT):
            break
    millis = (time.perf_counter_ns() - start) / 1e6
    client.shutdown()
    return millis


def main():
    defaults = [15, 200, 10]
    given = [int(a) for a in sys.argv[1:4]]
    rounds, calls, starts = given + defaults[len(given):]
    directory = Path(tempfile.mkdtemp(prefix="e2ee-python-bench-"))
    try:
        pairing = Pairing(directory)
        for _ in range(WARM_UP_ROUNDS):
            pairing.python(calls)
            pairing.rust(calls)
        python, rust = [], []
        for round_ in range(rounds):
            # Alternate which side goes first, so a drift in the machine's speed is shared.
            if round_ % 2 == 0:
                python.append(pairing.python(calls))
                rust.append(pairing.rust(calls))
            else:
                rust.append(pairing.rust(calls))
                python.append(pairing.python(calls))
        print(f"python bench: {rounds} rounds x {calls} calls per side, {BODY_LEN}-byte body, median per call")
        report("encrypt (Device.send_message)", [p[0] for p in python], [r[0] for r in rust])
        report("decrypt (Device.receive)", [p[1] for p in python], [r[1] for r in rust])
        print(f"fixed cost of a call (Device.address, a small record back): {micros(pairing.smallest_call(calls))}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    server = Server()
    try:
        e2ee.Client.register(server.config("bob"), "bob").shutdown()
        registered = [time_to_first_sent(lambda i=i: e2ee.Client.register(server.config(f"a{i}"), f"a{i}"))
                      for i in range(starts)]
        reopened = [time_to_first_sent(lambda i=i: e2ee.Client.open(server.config(f"a{i}")))
                    for i in range(starts)]
        print(f"first message sent: Client.register {statistics.median(registered):.1f} ms "
              f"(range {min(registered):.1f}-{max(registered):.1f}), Client.open "
              f"{statistics.median(reopened):.1f} ms (range {min(reopened):.1f}-{max(reopened):.1f}), "
              f"{starts} starts each")
    finally:
        server.close()


if __name__ == "__main__":
    main()
