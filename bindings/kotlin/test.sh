#!/usr/bin/env bash
# Compiles the generated Kotlin (from bindings/test.sh) with the Kotlin suites and runs them on
# the JVM through JNA against the real library and a real server.
# Needs: GEN (generated code dir), LIB_DIR (libe2ee_ffi.so), E2EE_SERVER_BIN, and the
# variables scripts/bindings-tools.sh prints.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$GEN/kotlin-build"
mkdir -p "$out"
classpath="$JNA_JAR:$KOTLIN_COROUTINES_JAR"
"$KOTLINC" -nowarn -classpath "$classpath" -d "$out/tests.jar" \
  "$GEN/kotlin/dev/e2ee/e2ee_ffi.kt" $(find "$here/src/test/kotlin" -name '*.kt') "$@" 2>&1 \
  | grep -v '^warning: ' >&2 || true
[ -f "$out/tests.jar" ] || { echo "kotlin: compilation failed" >&2; exit 1; }
run() {
  java -Djna.library.path="$LIB_DIR" -cp "$out/tests.jar:$classpath:$KOTLIN_HOME/lib/kotlin-stdlib.jar" "$@"
}
run dev.e2ee.test.ScenarioKt
