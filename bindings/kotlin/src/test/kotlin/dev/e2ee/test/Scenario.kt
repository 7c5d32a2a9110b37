// The binding scenario (the same as bindings/python/tests/test_scenario.py, so the two can be
// compared): through the generated Kotlin and the real library, against a real server.
package dev.e2ee.test

import dev.e2ee.Address
import dev.e2ee.Client
import dev.e2ee.Conversation
import dev.e2ee.Device
import dev.e2ee.E2eeException
import dev.e2ee.Event
import dev.e2ee.GroupEdit
import dev.e2ee.LinkRequest
import dev.e2ee.MessageRef
import dev.e2ee.MessageStatus
import dev.e2ee.NewDevice
import dev.e2ee.OutboxEntry
import dev.e2ee.Received
import dev.e2ee.createPrimaryDevice
import dev.e2ee.prekeyBundle
import java.io.File
import java.nio.file.Files
import java.util.concurrent.Callable
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

private fun text(bytes: ByteArray) = String(bytes, Charsets.UTF_8)

/** Waits until `events` shows our message `id` at `status` or later. */
private fun Events.expectStatus(id: ULong, status: MessageStatus) = expect("message $id $status") {
    (it as? Event.StatusChanged)?.message?.takeIf { m -> m.id == id && m.status >= status }
}

private fun Events.expectMessage(from: String) = expect("a message from $from") {
    (it as? Event.Message)?.message?.takeIf { m -> m.author.user == from }
}

fun main() {
    Server().use { server ->
        val alice = Events(Client.register(server.config("alice"), "alice"))
        val bob = Events(Client.register(server.config("bob"), "bob"))
        var carol: Events? = null

        runCases(
            "two users exchange messages both ways, with receipts" to {
                val id = alice.client.send("bob", "hello bob".toByteArray())
                val got = bob.expectMessage("alice")
                verify(text(got.body) == "hello bob" && got.id == id) { "bob got $got" }
                verify(got.conversation == Conversation.User("alice")) { "${got.conversation}" }
                alice.expectStatus(id, MessageStatus.DELIVERED)
                bob.client.markRead("alice", listOf(got.id))
                alice.expectStatus(id, MessageStatus.READ)

                val reply = bob.client.send("alice", "hi alice".toByteArray())
                verify(text(alice.expectMessage("bob").body) == "hi alice") { "reply" }
                bob.expectStatus(reply, MessageStatus.DELIVERED)
                val page = alice.client.messages("bob", null, 10u)
                verify(page.messages.map { text(it.body) } == listOf("hello bob", "hi alice")) {
                    "alice's history: ${page.messages}"
                }
                verify(alice.client.safetyNumber("bob").displayable == bob.client.safetyNumber("alice").displayable) {
                    "safety numbers differ"
                }
            },
            "calls from several threads at once" to {
                val pool = Executors.newFixedThreadPool(4)
                val ids = (0 until 4).map { t ->
                    pool.submit(Callable { (0 until 5).map { i -> alice.client.send("bob", "t$t-$i".toByteArray()) } })
                }.flatMap { it.get(60, TimeUnit.SECONDS) }
                // Reads at the same time as the sends above finish and the receives below run.
                val readers = (0 until 4).map { pool.submit(Callable { alice.client.conversations().size }) }
                readers.forEach { verify(it.get(60, TimeUnit.SECONDS) >= 1) { "conversations" } }
                pool.shutdown()
                verify(ids.toSet().size == 20) { "ids not distinct: $ids" }
                val bodies = (0 until 20).map { text(bob.expectMessage("alice").body) }.toSet()
                verify(bodies == (0 until 4).flatMap { t -> (0 until 5).map { "t$t-$it" } }.toSet()) { "bob got $bodies" }
            },
            "a third user joins a group; group messages reach every member" to {
                val c = Events(Client.register(server.config("carol"), "carol"))
                carol = c
                val id = alice.client.createGroup("friends", listOf("bob"))
                bob.expect("bob added") { (it as? Event.GroupChanged)?.takeIf { e -> e.group.id.contentEquals(id) } }
                val info = alice.client.changeGroup(id, GroupEdit.Add("carol", false))
                verify(info.members.map { it.user }.toSet() == setOf("alice", "bob", "carol")) { "$info" }
                c.expect("carol added") { (it as? Event.GroupChanged)?.takeIf { e -> e.group.id.contentEquals(id) } }
                val sent = alice.client.sendGroup(id, "hello group".toByteArray())
                for (member in listOf(bob, c)) {
                    val m = member.expectMessage("alice")
                    verify(m.conversation is Conversation.Group && text(m.body) == "hello group") { "$m" }
                }
                c.client.sendGroup(id, "carol here".toByteArray())
                verify(text(bob.expectMessage("carol").body) == "carol here") { "bob missed carol" }
                alice.expectStatus(sent, MessageStatus.DELIVERED)
                bob.client.markGroupRead(id, listOf(MessageRef("alice", sent)))
                val page = c.client.groupMessages(id, null, 10u)
                verify(page.messages.map { text(it.body) } == listOf("hello group", "carol here")) { "${page.messages}" }
            },
            "a linked device receives sent transcripts" to {
                val request = LinkRequest(server.config("alice2"))
                val pool = Executors.newSingleThreadExecutor()
                val linked = pool.submit(Callable { alice.client.linkDevice(request.code(), 30_000u) })
                val alice2 = Events(request.complete(30_000u))
                val address = linked.get(30, TimeUnit.SECONDS)
                pool.shutdown()
                verify(address == alice2.client.address() && address.user == "alice" && address.device != 1u) { "$address" }
                try {
                    request.complete(1u)
                    throw CheckFailed("a second complete worked")
                } catch (e: E2eeException.Closed) {}
                // Bob learns the new device list when he next fetches it; a message from
                // alice goes to bob and, as a transcript, to alice's new device.
                val id = alice.client.send("bob", "from alice's first device".toByteArray())
                val transcript = alice2.expect("a sent transcript") {
                    (it as? Event.Message)?.message?.takeIf { m -> m.outgoing && m.id == id }
                }
                verify(text(transcript.body) == "from alice's first device") { "$transcript" }
                verify(transcript.conversation == Conversation.User("bob")) { "${transcript.conversation}" }
                alice2.client.shutdown()
            },
            "a wrong store key raises WrongKey" to {
                try {
                    Client.open(server.config("bob", keyByte = 99))
                    throw CheckFailed("opened with a wrong key")
                } catch (e: E2eeException.WrongKey) {}
                try {
                    Client.open(server.config("bob").copy(storeKey = ByteArray(5)))
                    throw CheckFailed("opened with a short key")
                } catch (e: E2eeException.InvalidStoreKey) {
                    verify(e.len == 5u) { "len ${e.len}" }
                }
                try {
                    Client.open(server.config("nobody"))
                    throw CheckFailed("opened a store that does not exist")
                } catch (e: E2eeException.StoreMissing) {}
            },
            "an untrusted identity raises UntrustedIdentity" to {
                // Mallory's device learns bob; then a second account claiming to be "bob"
                // (a reinstall, or a key server lying) must not be trusted silently.
                val dir = Files.createTempDirectory("e2ee-kotlin-identity-").toFile()
                try {
                    val key = ByteArray(32) { 3 }
                    val mallory = createPrimaryDevice(File(dir, "m.db").path, key, "mallory", 1u).device
                    val bob1 = createPrimaryDevice(File(dir, "b1.db").path, key, "bob", 1u).registration
                    val bob2 = createPrimaryDevice(File(dir, "b2.db").path, key, "bob", 1u).registration
                    verify(mallory.learnUser("bob", bob1.accountKey, bob1.deviceList) == listOf(Address("bob", 1u))) { "learn" }
                    try {
                        mallory.learnUser("bob", bob2.accountKey, bob2.deviceList)
                        throw CheckFailed("a new account key was trusted")
                    } catch (e: E2eeException.UntrustedIdentity) {
                        verify(e.user == "bob") { "user ${e.user}" }
                    }
                    mallory.acceptAccountChange("bob", bob2.accountKey, bob2.deviceList)
                } finally {
                    dir.deleteRecursively()
                }
            },
            "a closed client raises Closed; reopened on its store it carries on" to {
                val before = bob.client.messages("alice", null, 100u).messages.size
                bob.client.shutdown()
                try {
                    bob.client.send("alice", "after close".toByteArray())
                    throw CheckFailed("a closed client sent")
                } catch (e: E2eeException.Closed) {}
                val id = alice.client.send("bob", "while bob was away".toByteArray())
                val reopened = Events(Client.open(server.config("bob")))
                val got = reopened.expectMessage("alice")
                verify(got.id == id && text(got.body) == "while bob was away") { "$got" }
                verify(reopened.client.messages("alice", null, 100u).messages.size == before + 1) { "history lost" }
                val back = reopened.client.send("alice", "back".toByteArray())
                verify(text(alice.expectMessage("bob").body) == "back") { "alice missed bob" }
                reopened.expectStatus(back, MessageStatus.DELIVERED)
                reopened.client.shutdown()
            },
            "a device without networking: bytes in, bytes out" to {
                val dir = Files.createTempDirectory("e2ee-kotlin-device-").toFile()
                try {
                    val a = createPrimaryDevice(File(dir, "a.db").path, ByteArray(32) { 1 }, "ann", 1u)
                    val b = createPrimaryDevice(File(dir, "b.db").path, ByteArray(32) { 2 }, "ben", 1u)
                    val upload = b.device.generatePrekeys(2u)
                    a.device.learnUser("ben", b.registration.accountKey, b.registration.deviceList)
                    b.device.learnUser("ann", a.registration.accountKey, a.registration.deviceList)
                    try {
                        a.device.sendMessage("ben", "x".toByteArray())
                        throw CheckFailed("sent without a session")
                    } catch (e: E2eeException.NeedsBundles) {
                        verify(e.devices == listOf("ben.1")) { "${e.devices}" }
                    }
                    a.device.addBundle(Address("ben", 1u), prekeyBundle(b.registration, upload, 0u))
                    val sent = a.device.sendMessage("ben", "offline hello".toByteArray())
                    val envelope = sent.entry.envelopes.single()
                    val got = b.device.receive(Address("ann", 1u), 1u, envelope.ciphertext) as Received.Message
                    verify(text(got.message.body) == "offline hello") { "$got" }
                    verify(b.device.receive(Address("ann", 1u), 1u, envelope.ciphertext) == null) { "redelivery" }
                    try {
                        b.device.receive(Address("ann", 1u), 2u, envelope.ciphertext)
                        throw CheckFailed("a replay was accepted")
                    } catch (e: E2eeException.Duplicate) {}
                    try {
                        b.device.receive(Address("ann", 1u), 3u, envelope.ciphertext.copyOf(envelope.ciphertext.size - 1))
                        throw CheckFailed("a cut ciphertext was accepted")
                    } catch (e: E2eeException) {}
                    verify(a.device.acknowledged(sent.entry.msgId)?.status == MessageStatus.SENT) { "ack" }
                    a.device.destroy()
                    val reopened = Device.open(File(dir, "a.db").path, ByteArray(32) { 1 })
                    verify(reopened.messages("ben", null, 10u).messages.size == 1) { "history after reopen" }
                } finally {
                    dir.deleteRecursively()
                }
            },
            "a group among devices without networking" to {
                val dir = Files.createTempDirectory("e2ee-kotlin-group-").toFile()
                try {
                    val made: Map<String, NewDevice> = listOf("ann", "ben", "cy").mapIndexed { i, name ->
                        name to createPrimaryDevice(File(dir, "$name.db").path, ByteArray(32) { (i + 1).toByte() }, name, 1u)
                    }.toMap()
                    for ((name, new) in made) for ((other, them) in made) if (name != other) {
                        new.device.learnUser(other, them.registration.accountKey, them.registration.deviceList)
                    }
                    val ann = made.getValue("ann").device
                    for (name in listOf("ben", "cy")) {
                        val upload = made.getValue(name).device.generatePrekeys(1u)
                        ann.addBundle(Address(name, 1u), prekeyBundle(made.getValue(name).registration, upload, 0u))
                    }
                    var relayId = 1uL
                    // The transport: every envelope to its device, then the entry acknowledged.
                    fun deliver(entries: List<OutboxEntry>): Map<String, List<Received>> {
                        val got = HashMap<String, MutableList<Received>>()
                        for (entry in entries) {
                            for (envelope in entry.envelopes) {
                                val to = made.getValue(envelope.to.user).device
                                to.receive(Address("ann", 1u), relayId++, envelope.ciphertext)
                                    ?.let { got.getOrPut(envelope.to.user) { ArrayList() }.add(it) }
                            }
                            ann.acknowledged(entry.msgId)
                        }
                        return got
                    }
                    fun bodies(got: List<Received>?) = got.orEmpty().filterIsInstance<Received.Message>().map { text(it.message.body) }

                    val created = ann.createGroup("trio", listOf("ben", "cy"))
                    deliver(created.entries)
                    val atBen = made.getValue("ben").device.group(created.id)
                    verify(atBen.name == "trio" && atBen.members.map { it.user }.toSet() == setOf("ann", "ben", "cy")) { "$atBen" }
                    val first = deliver(ann.sendGroupMessage(created.id, "hi all".toByteArray()).entries)
                    verify(bodies(first["ben"]) == listOf("hi all") && bodies(first["cy"]) == listOf("hi all")) { "$first" }

                    deliver(ann.changeGroup(created.id, GroupEdit.Remove("cy")))
                    verify(made.getValue("ben").device.group(created.id).members.none { it.user == "cy" }) { "cy still in at ben" }
                    val second = ann.sendGroupMessage(created.id, "just us".toByteArray())
                    verify(second.entries.flatMap { it.envelopes }.none { it.to.user == "cy" }) { "cy still gets group messages" }
                    verify(bodies(deliver(second.entries)["ben"]) == listOf("just us")) { "ben missed the second message" }
                    val history = made.getValue("ben").device.groupMessages(created.id, null, 10u).messages.map { text(it.body) }
                    verify(history == listOf("hi all", "just us")) { "$history" }
                    try {
                        ann.sendGroupMessage(ByteArray(32), "nowhere".toByteArray())
                        throw CheckFailed("sent to a group that does not exist")
                    } catch (e: E2eeException.UnknownGroup) {}
                } finally {
                    dir.deleteRecursively()
                }
            },
        )
        alice.client.shutdown()
        carol?.client?.shutdown()
    }
}
