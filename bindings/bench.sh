#!/usr/bin/env bash
# The bindings' measurements (bindings/README.md, Measured), from a release build: per-call
# overhead of a 100-byte encrypt and decrypt from Kotlin and from Python against the same calls
# in Rust in the same process (paired round by round), the time from Client construction to
# the first message the relay confirms, and the size of the stripped release library.
# Usage: bindings/bench.sh [ROUNDS [CALLS [STARTS]]]   (defaults 15 200 10)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/bindings-tools.sh)"
args=("${1:-15}" "${2:-200}" "${3:-10}")

cargo build --release -q -p e2ee-ffi -p e2ee -p e2ee-uniffi-bindgen
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export LIB_DIR="$target/release"
export E2EE_SERVER_BIN="$target/release/e2ee"
export GEN="$target/bindings-release"
rm -rf "$GEN"
for language in kotlin python; do
  "$target/release/uniffi-bindgen" generate "$LIB_DIR/libe2ee_ffi.so" --language "$language" \
    --no-format --out-dir "$GEN/$language" >/dev/null
done

stripped="$GEN/libe2ee_ffi.stripped.so"
strip --strip-all -o "$stripped" "$LIB_DIR/libe2ee_ffi.so"
echo "release library: $(stat -c %s "$LIB_DIR/libe2ee_ffi.so") bytes, stripped $(stat -c %s "$stripped") bytes" \
  "($(numfmt --to=iec-i --suffix=B "$(stat -c %s "$stripped")"), x86_64 Linux)"

classpath="$JNA_JAR:$KOTLIN_COROUTINES_JAR"
"$KOTLINC" -nowarn -classpath "$classpath" -d "$GEN/bench.jar" "$GEN/kotlin/dev/e2ee/e2ee_ffi.kt" \
  bindings/kotlin/src/test/kotlin/dev/e2ee/test/Harness.kt \
  $(find bindings/kotlin/src/bench/kotlin -name '*.kt') 2>&1 | grep -v '^warning: ' >&2 || true
[ -f "$GEN/bench.jar" ] || { echo "bench: the Kotlin benchmark did not compile" >&2; exit 1; }
java -Djna.library.path="$LIB_DIR" -cp "$GEN/bench.jar:$classpath:$KOTLIN_HOME/lib/kotlin-stdlib.jar" \
  dev.e2ee.bench.BenchKt "${args[@]}"

# The package built as `pip install ./bindings/python` builds it: release profile.
export PATH="$PYTHON_VENV/bin:$PATH"
pip install -q --no-build-isolation --disable-pip-version-check \
  --force-reinstall --no-deps bindings/python
python bindings/python/bench/bench.py "${args[@]}"
