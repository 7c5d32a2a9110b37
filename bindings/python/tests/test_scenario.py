"""The binding scenario (the same as the Kotlin suite's Scenario.kt, so the two can be
compared): through the generated Python and the real library, against a real server. The
cases run in order and share the users of one server."""

import concurrent.futures
import gc
import tempfile
from pathlib import Path

import pytest

import e2ee
from e2ee import Address, Conversation, E2eeError, Event, MessageStatus

from conftest import Events, at_least

def expect_status(events: Events, msg_id: int, status):
    """Waits until `events` shows our message `msg_id` at `status` or later."""
    return events.expect(
        f"message {msg_id} {status}",
        lambda e: e.message if isinstance(e, Event.STATUS_CHANGED)
        and e.message.id == msg_id and at_least(e.message.status, status) else None,
    )


def expect_message(events: Events, author: str):
    return events.expect(
        f"a message from {author}",
        lambda e: e.message if isinstance(e, Event.MESSAGE) and e.message.author.user == author else None,
    )


def expect_group_changed(events: Events, group_id: bytes):
    return events.expect(
        "the group changed",
        lambda e: e if isinstance(e, Event.GROUP_CHANGED) and e.group.id == group_id else None,
    )


class Users:
    def __init__(self, server):
        self.alice = Events(e2ee.Client.register(server.config("alice"), "alice"))
        self.bob = Events(e2ee.Client.register(server.config("bob"), "bob"))
        self.carol = None


@pytest.fixture(scope="module")
def users(server):
    u = Users(server)
    yield u
    u.alice.client.shutdown()
    if u.carol is not None:
        u.carol.client.shutdown()


def test_two_users_exchange_messages_both_ways_with_receipts(users):
    alice, bob = users.alice, users.bob
    msg_id = alice.client.send("bob", b"hello bob")
    got = expect_message(bob, "alice")
    assert got.body == b"hello bob" and got.id == msg_id
    assert got.conversation == Conversation.USER(user="alice")
    expect_status(alice, msg_id, MessageStatus.DELIVERED)
    bob.client.mark_read("alice", [got.id])
    expect_status(alice, msg_id, MessageStatus.READ)

    reply = bob.client.send("alice", b"hi alice")
    assert expect_message(alice, "bob").body == b"hi alice"
    expect_status(bob, reply, MessageStatus.DELIVERED)
    page = alice.client.messages("bob", None, 10)
    assert [m.body for m in page.messages] == [b"hello bob", b"hi alice"]
    assert alice.client.safety_number("bob").displayable == bob.client.safety_number("alice").displayable


def test_calls_from_several_threads_at_once(users):
    alice, bob = users.alice, users.bob
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        senders = [pool.submit(lambda t=t: [alice.client.send("bob", f"t{t}-{i}".encode()) for i in range(5)])
                   for t in range(4)]
        # Reads at the same time as the sends above finish and the receives below run.
        readers = [pool.submit(lambda: len(alice.client.conversations())) for _ in range(4)]
        ids = [i for f in senders for i in f.result(timeout=60)]
        assert all(r.result(timeout=60) >= 1 for r in readers)
    assert len(set(ids)) == 20
    bodies = {expect_message(bob, "alice").body for _ in range(20)}
    assert bodies == {f"t{t}-{i}".encode() for t in range(4) for i in range(5)}


def test_a_third_user_joins_a_group_and_group_messages_reach_every_member(users, server):
    alice, bob = users.alice, users.bob
    carol = users.carol = Events(e2ee.Client.register(server.config("carol"), "carol"))
    group_id = alice.client.create_group("friends", ["bob"])
    expect_group_changed(bob, group_id)
    info = alice.client.change_group(group_id, e2ee.GroupEdit.ADD(user="carol", admin=False))
    assert {m.user for m in info.members} == {"alice", "bob", "carol"}
    expect_group_changed(carol, group_id)
    sent = alice.client.send_group(group_id, b"hello group")
    for member in (bob, carol):
        m = expect_message(member, "alice")
        assert isinstance(m.conversation, Conversation.GROUP) and m.body == b"hello group"
    carol.client.send_group(group_id, b"carol here")
    assert expect_message(bob, "carol").body == b"carol here"
    expect_status(alice, sent, MessageStatus.DELIVERED)
    bob.client.mark_group_read(group_id, [e2ee.MessageRef(author="alice", id=sent)])
    page = carol.client.group_messages(group_id, None, 10)
    assert [m.body for m in page.messages] == [b"hello group", b"carol here"]


def test_a_linked_device_receives_sent_transcripts(users, server):
    alice = users.alice
    request = e2ee.LinkRequest(server.config("alice2"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        linked = pool.submit(alice.client.link_device, request.code(), 30_000)
        alice2 = Events(request.complete(30_000))
        address = linked.result(timeout=30)
    assert address == alice2.client.address() and address.user == "alice" and address.device != 1
    with pytest.raises(E2eeError.Closed):
        request.complete(1)
    # A message from alice goes to bob and, as a transcript, to alice's new device.
    msg_id = alice.client.send("bob", b"from alice's first device")
    transcript = alice2.expect(
        "a sent transcript",
        lambda e: e.message if isinstance(e, Event.MESSAGE) and e.message.outgoing and e.message.id == msg_id else None,
    )
    assert transcript.body == b"from alice's first device"
    assert transcript.conversation == Conversation.USER(user="bob")
    alice2.client.shutdown()


def test_a_wrong_store_key_raises_wrong_key(server):
    with pytest.raises(E2eeError.WrongKey):
        e2ee.Client.open(server.config("bob", key_byte=99))
    short = server.config("bob")
    short.store_key = bytes(5)
    with pytest.raises(E2eeError.InvalidStoreKey) as raised:
        e2ee.Client.open(short)
    assert raised.value.len == 5
    with pytest.raises(E2eeError.StoreMissing):
        e2ee.Client.open(server.config("nobody"))


def test_an_untrusted_identity_raises_untrusted_identity():
    # Mallory's device learns bob; then a second account claiming to be "bob" (a reinstall,
    # or a key server lying) must not be trusted silently.
    with tempfile.TemporaryDirectory(prefix="e2ee-python-identity-") as d:
        key = bytes([3]) * 32
        mallory = e2ee.create_primary_device(str(Path(d, "m.db")), key, "mallory", 1).device
        bob1 = e2ee.create_primary_device(str(Path(d, "b1.db")), key, "bob", 1).registration
        bob2 = e2ee.create_primary_device(str(Path(d, "b2.db")), key, "bob", 1).registration
        assert mallory.learn_user("bob", bob1.account_key, bob1.device_list) == [Address(user="bob", device=1)]
        with pytest.raises(E2eeError.UntrustedIdentity) as raised:
            mallory.learn_user("bob", bob2.account_key, bob2.device_list)
        assert raised.value.user == "bob"
        mallory.accept_account_change("bob", bob2.account_key, bob2.device_list)


def test_a_closed_client_raises_closed_and_reopened_on_its_store_carries_on(users, server):
    alice, bob = users.alice, users.bob
    before = len(bob.client.messages("alice", None, 100).messages)
    bob.client.shutdown()
    with pytest.raises(E2eeError.Closed):
        bob.client.send("alice", b"after close")
    msg_id = alice.client.send("bob", b"while bob was away")
    reopened = Events(e2ee.Client.open(server.config("bob")))
    got = expect_message(reopened, "alice")
    assert got.id == msg_id and got.body == b"while bob was away"
    assert len(reopened.client.messages("alice", None, 100).messages) == before + 1
    back = reopened.client.send("alice", b"back")
    assert expect_message(alice, "bob").body == b"back"
    expect_status(reopened, back, MessageStatus.DELIVERED)
    reopened.client.shutdown()


def test_a_device_without_networking_bytes_in_bytes_out():
    with tempfile.TemporaryDirectory(prefix="e2ee-python-device-") as d:
        a = e2ee.create_primary_device(str(Path(d, "a.db")), bytes([1]) * 32, "ann", 1)
        b = e2ee.create_primary_device(str(Path(d, "b.db")), bytes([2]) * 32, "ben", 1)
        upload = b.device.generate_prekeys(2)
        a.device.learn_user("ben", b.registration.account_key, b.registration.device_list)
        b.device.learn_user("ann", a.registration.account_key, a.registration.device_list)
        with pytest.raises(E2eeError.NeedsBundles) as raised:
            a.device.send_message("ben", b"x")
        assert raised.value.devices == ["ben.1"]
        a.device.add_bundle(Address(user="ben", device=1), e2ee.prekey_bundle(b.registration, upload, 0))
        sent = a.device.send_message("ben", b"offline hello")
        (envelope,) = sent.entry.envelopes
        ann = Address(user="ann", device=1)
        got = b.device.receive(ann, 1, envelope.ciphertext)
        assert isinstance(got, e2ee.Received.MESSAGE) and got.message.body == b"offline hello"
        assert b.device.receive(ann, 1, envelope.ciphertext) is None, "a redelivery is not new"
        with pytest.raises(E2eeError.Duplicate):
            b.device.receive(ann, 2, envelope.ciphertext)
        with pytest.raises(E2eeError):
            b.device.receive(ann, 3, envelope.ciphertext[:-1])
        assert a.device.acknowledged(sent.entry.msg_id).status == MessageStatus.SENT
        del a
        gc.collect()
        reopened = e2ee.Device.open(str(Path(d, "a.db")), bytes([1]) * 32)
        assert len(reopened.messages("ben", None, 10).messages) == 1


def test_a_group_among_devices_without_networking():
    with tempfile.TemporaryDirectory(prefix="e2ee-python-group-") as d:
        made = {name: e2ee.create_primary_device(str(Path(d, f"{name}.db")), bytes([i + 1]) * 32, name, 1)
                for i, name in enumerate(["ann", "ben", "cy"])}
        for name, new in made.items():
            for other, them in made.items():
                if name != other:
                    new.device.learn_user(other, them.registration.account_key, them.registration.device_list)
        ann = made["ann"].device
        for name in ["ben", "cy"]:
            upload = made[name].device.generate_prekeys(1)
            ann.add_bundle(Address(user=name, device=1), e2ee.prekey_bundle(made[name].registration, upload, 0))
        relay_ids = iter(range(1, 1_000))

        def deliver(entries):
            """The transport: every envelope to its device, then the entry acknowledged."""
            got = {}
            for entry in entries:
                for envelope in entry.envelopes:
                    received = made[envelope.to.user].device.receive(
                        Address(user="ann", device=1), next(relay_ids), envelope.ciphertext)
                    if received is not None:
                        got.setdefault(envelope.to.user, []).append(received)
                ann.acknowledged(entry.msg_id)
            return got

        def bodies(got):
            return [r.message.body for r in got or [] if isinstance(r, e2ee.Received.MESSAGE)]

        created = ann.create_group("trio", ["ben", "cy"])
        deliver(created.entries)
        at_ben = made["ben"].device.group(created.id)
        assert at_ben.name == "trio" and {m.user for m in at_ben.members} == {"ann", "ben", "cy"}
        first = deliver(ann.send_group_message(created.id, b"hi all").entries)
        assert bodies(first.get("ben")) == [b"hi all"] and bodies(first.get("cy")) == [b"hi all"]

        deliver(ann.change_group(created.id, e2ee.GroupEdit.REMOVE(user="cy")))
        assert all(m.user != "cy" for m in made["ben"].device.group(created.id).members)
        second = ann.send_group_message(created.id, b"just us")
        assert all(e.to.user != "cy" for entry in second.entries for e in entry.envelopes)
        assert bodies(deliver(second.entries).get("ben")) == [b"just us"]
        history = [m.body for m in made["ben"].device.group_messages(created.id, None, 10).messages]
        assert history == [b"hi all", b"just us"]
        with pytest.raises(E2eeError.UnknownGroup):
            ann.send_group_message(bytes(32), b"nowhere")
