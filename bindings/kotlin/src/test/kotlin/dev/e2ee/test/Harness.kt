// What every Kotlin binding test needs: a real all-in-one server on a free loopback port, a
// temporary directory, store configurations, event queues and checks that fail loudly.
package dev.e2ee.test

import dev.e2ee.ClientConfig
import dev.e2ee.Client
import dev.e2ee.Event
import dev.e2ee.EventListener
import java.io.File
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

class CheckFailed(message: String) : AssertionError(message)

fun verify(condition: Boolean, what: () -> String) {
    if (!condition) throw CheckFailed(what())
}

/** The server binary `E2EE_SERVER_BIN` names, serving on a free port from a temporary dir. */
class Server : AutoCloseable {
    val dir: File = Files.createTempDirectory("e2ee-kotlin-").toFile()
    val url: String
    private val process: Process

    init {
        val port = ServerSocket(0).use { it.localPort }
        val bin = System.getenv("E2EE_SERVER_BIN") ?: error("E2EE_SERVER_BIN is not set")
        process = ProcessBuilder(
            bin, "--listen", "127.0.0.1:$port",
            "--keyserver-data-dir", dir.path, "--relay-data-dir", dir.path,
        ).redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .also { it.environment()["RUST_LOG"] = "warn" }
            .start()
        url = "http://127.0.0.1:$port"
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
        while (true) {
            try {
                Socket("127.0.0.1", port).close()
                break
            } catch (e: java.io.IOException) {
                verify(process.isAlive) { "the server exited with ${process.exitValue()}" }
                verify(System.nanoTime() < deadline) { "the server did not start" }
                Thread.sleep(50)
            }
        }
    }

    fun config(name: String, keyByte: Int = name.length): ClientConfig = ClientConfig(
        serverUrl = url,
        storePath = File(dir, "$name.db").path,
        storeKey = ByteArray(32) { keyByte.toByte() },
    )

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
        dir.deleteRecursively()
    }
}

/** A client whose events a listener puts in a queue, and waits that skip what they don't want. */
class Events(val client: Client) : EventListener {
    private val queue = LinkedBlockingQueue<Event>()

    init {
        client.setEventListener(this)
    }

    override fun onEvent(event: Event) {
        queue.put(event)
    }

    /** The first event `pick` accepts within `seconds`, skipping others. */
    fun <T> expect(what: String, seconds: Long = 30, pick: (Event) -> T?): T {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
        while (true) {
            val left = deadline - System.nanoTime()
            verify(left > 0) { "timed out waiting for $what" }
            val event = queue.poll(left, TimeUnit.NANOSECONDS) ?: continue
            pick(event)?.let { return it }
        }
    }
}

/** Runs the named cases in order, printing each; exits non-zero if one fails. */
fun runCases(vararg cases: Pair<String, () -> Unit>) {
    var failed = 0
    for ((name, case) in cases) {
        val start = System.nanoTime()
        try {
            case()
            println("ok   $name (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace()
        }
    }
    println(if (failed == 0) "kotlin: all ${cases.size} cases passed" else "kotlin: $failed of ${cases.size} failed")
    if (failed != 0) kotlin.system.exitProcess(1)
}
