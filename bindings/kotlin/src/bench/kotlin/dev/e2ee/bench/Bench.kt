// The bindings' overhead benchmark (bindings/README.md, Measured): a 100-byte encrypt and
// decrypt through the Kotlin bindings, paired round by round with the same calls made in Rust
// (benchmarkRoundTripsInRust) on the same two devices in the same process, and the time from
// Client construction to the first message the relay confirms, against a real server.
//
// Arguments: rounds, calls per round and side, client starts (bindings/bench.sh passes them;
// the test suite runs it with tiny counts so it cannot rot).
package dev.e2ee.bench

import dev.e2ee.Address
import dev.e2ee.Client
import dev.e2ee.Device
import dev.e2ee.Event
import dev.e2ee.MessageStatus
import dev.e2ee.Received
import dev.e2ee.benchmarkRoundTripsInRust
import dev.e2ee.createPrimaryDevice
import dev.e2ee.prekeyBundle
import dev.e2ee.test.Server
import dev.e2ee.test.verify
import java.io.File
import java.nio.file.Files

private const val BODY_LEN = 100

/** Rounds before the measured ones, so the JIT has compiled the call path. */
private const val WARM_UP_ROUNDS = 3

private fun median(values: List<Double>): Double {
    val sorted = values.sorted()
    val mid = sorted.size / 2
    return if (sorted.size % 2 == 1) sorted[mid] else (sorted[mid - 1] + sorted[mid]) / 2
}

private fun micros(nanos: Double) = "%.1f µs".format(nanos / 1000)

/** Per-call times of one side in one round. */
private class Side(val encrypt: List<Double>, val decrypt: List<Double>)

private class Pairing(dir: File) {
    val ann = createPrimaryDevice(File(dir, "ann.db").path, ByteArray(32) { 1 }, "ann", 1u)
    val ben = createPrimaryDevice(File(dir, "ben.db").path, ByteArray(32) { 2 }, "ben", 1u)
    private val annAddress = Address("ann", 1u)
    private var relayId = 1uL
    private val body = ByteArray(BODY_LEN) { 0x61 }

    init {
        val upload = ben.device.generatePrekeys(1u)
        ann.device.learnUser("ben", ben.registration.accountKey, ben.registration.deviceList)
        ben.device.learnUser("ann", ann.registration.accountKey, ann.registration.deviceList)
        ann.device.addBundle(Address("ben", 1u), prekeyBundle(ben.registration, upload, 0u))
    }

    fun kotlin(calls: Int): Side {
        val encrypt = ArrayList<Double>(calls)
        val decrypt = ArrayList<Double>(calls)
        repeat(calls) {
            var start = System.nanoTime()
            val sent = ann.device.sendMessage("ben", body)
            encrypt.add((System.nanoTime() - start).toDouble())
            val ciphertext = sent.entry.envelopes.single().ciphertext
            start = System.nanoTime()
            val received = ben.device.receive(annAddress, relayId++, ciphertext)
            decrypt.add((System.nanoTime() - start).toDouble())
            verify(received is Received.Message) { "not a message: $received" }
            ann.device.acknowledged(sent.entry.msgId)
        }
        return Side(encrypt, decrypt)
    }

    /** Median time of a call that does almost nothing in Rust. */
    fun smallestCall(calls: Int): Double = median(
        (0 until calls * 10).map {
            val start = System.nanoTime()
            ann.device.address()
            (System.nanoTime() - start).toDouble()
        },
    )

    fun rust(calls: Int): Side {
        val times = benchmarkRoundTripsInRust(ann.device, ben.device, calls.toUInt(), BODY_LEN.toUInt(), relayId)
        relayId += calls.toULong()
        return Side(times.encryptNs.map { it.toDouble() }, times.decryptNs.map { it.toDouble() })
    }
}

private fun report(what: String, kotlin: List<List<Double>>, rust: List<List<Double>>) {
    val ratios = kotlin.indices.map { median(kotlin[it]) / median(rust[it]) }
    val k = median(kotlin.flatten())
    val r = median(rust.flatten())
    println(
        "$what: kotlin ${micros(k)}, rust ${micros(r)}, overhead ${micros(k - r)}; " +
            "ratio kotlin/rust per round median %.2f (range %.2f-%.2f)".format(median(ratios), ratios.min(), ratios.max()),
    )
}

/** Milliseconds from the constructor's call to the relay confirming the first message. */
private fun timeToFirstSent(construct: () -> Client): Double {
    val start = System.nanoTime()
    val client = construct()
    val id = client.send("bob", ByteArray(BODY_LEN) { 0x62 })
    while (true) {
        val event = client.nextEvent(30_000u) ?: error("no confirmation within 30 s")
        if (event is Event.StatusChanged && event.message.id == id && event.message.status >= MessageStatus.SENT) break
    }
    val millis = (System.nanoTime() - start) / 1e6
    client.shutdown()
    return millis
}

fun main(args: Array<String>) {
    val rounds = args.getOrNull(0)?.toInt() ?: 15
    val calls = args.getOrNull(1)?.toInt() ?: 200
    val starts = args.getOrNull(2)?.toInt() ?: 10
    val dir = Files.createTempDirectory("e2ee-kotlin-bench-").toFile()
    try {
        val pairing = Pairing(dir)
        repeat(WARM_UP_ROUNDS) { pairing.kotlin(calls); pairing.rust(calls) }
        val kotlin = ArrayList<Side>()
        val rust = ArrayList<Side>()
        for (round in 0 until rounds) {
            // Alternate which side goes first, so a drift in the machine's speed is shared.
            if (round % 2 == 0) {
                kotlin.add(pairing.kotlin(calls)); rust.add(pairing.rust(calls))
            } else {
                rust.add(pairing.rust(calls)); kotlin.add(pairing.kotlin(calls))
            }
        }
        println("kotlin bench: $rounds rounds x $calls calls per side, $BODY_LEN-byte body, median per call")
        report("encrypt (Device.sendMessage)", kotlin.map { it.encrypt }, rust.map { it.encrypt })
        report("decrypt (Device.receive)", kotlin.map { it.decrypt }, rust.map { it.decrypt })
        println("fixed cost of a call (Device.address, a small record back): ${micros(pairing.smallestCall(calls))}")
    } finally {
        dir.deleteRecursively()
    }
    Server().use { server ->
        Client.register(server.config("bob"), "bob").shutdown()
        val registered = (0 until starts).map { timeToFirstSent { Client.register(server.config("a$it"), "a$it") } }
        val reopened = (0 until starts).map { timeToFirstSent { Client.open(server.config("a$it")) } }
        println(
            "first message sent: Client.register %.1f ms (range %.1f-%.1f), Client.open %.1f ms (range %.1f-%.1f), %d starts each"
                .format(median(registered), registered.min(), registered.max(), median(reopened), reopened.min(), reopened.max(), starts),
        )
    }
}
