#!/usr/bin/env bash
# Compiles the generated Kotlin (from bindings/test.sh) with the Kotlin suites and the README's
# quickstart and runs them on the JVM through JNA against the real library and real servers.
# Needs: GEN (generated code dir), LIB_DIR (libe2ee_ffi.so), E2EE_SERVER_BIN, and the
# variables scripts/bindings-tools.sh prints.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$GEN/kotlin-build"
mkdir -p "$out"
"$here/../quickstart.sh" "$here/README.md" kotlin > "$out/Quickstart.kt"
[ -s "$out/Quickstart.kt" ] || { echo "kotlin: no quickstart in README.md" >&2; exit 1; }
classpath="$JNA_JAR:$KOTLIN_COROUTINES_JAR"
"$KOTLINC" -nowarn -classpath "$classpath" -d "$out/tests.jar" \
  "$GEN/kotlin/dev/e2ee/e2ee_ffi.kt" $(find "$here/src/test/kotlin" "$here/src/bench/kotlin" -name '*.kt') "$out/Quickstart.kt" 2>&1 \
  | grep -v '^warning: ' >&2 || true
[ -f "$out/tests.jar" ] || { echo "kotlin: compilation failed" >&2; exit 1; }
java=(java -Djna.library.path="$LIB_DIR" -cp "$out/tests.jar:$classpath:$KOTLIN_HOME/lib/kotlin-stdlib.jar")
"${java[@]}" dev.e2ee.test.ScenarioKt
# The benchmark (bindings/bench.sh runs it in earnest) with tiny counts, so it cannot rot.
"${java[@]}" dev.e2ee.bench.BenchKt 1 3 1 >/dev/null
output="$("$here/../with-server.sh" "${java[@]}" QuickstartKt)"
echo "$output"
[ "$output" = 'bob got "hello bob" from alice' ] || { echo "kotlin: the quickstart printed something else" >&2; exit 1; }
echo "kotlin: the README quickstart ran"
