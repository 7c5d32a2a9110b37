#!/usr/bin/env bash
# The binding suites (scripts/test.sh runs this): builds the library and the server, generates
# Kotlin, Python and Swift from the built library with the workspace's own uniffi-bindgen
# (nothing generated is committed), then runs the Kotlin and Python suites and their README
# quickstarts against real servers they start, and checks the Swift generation.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/bindings-tools.sh)"

cargo build -q -p e2ee-ffi -p e2ee -p e2ee-uniffi-bindgen
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export LIB_DIR="$target/debug"
export E2EE_SERVER_BIN="$target/debug/e2ee"
export GEN="$target/bindings"
rm -rf "$GEN"
for language in kotlin python swift; do
  "$target/debug/uniffi-bindgen" generate "$LIB_DIR/libe2ee_ffi.so" --language "$language" \
    --no-format --out-dir "$GEN/$language" >/dev/null
done
# The Android flavour (bindings/kotlin/android): generated and checked, not compiled here.
"$target/debug/uniffi-bindgen" generate "$LIB_DIR/libe2ee_ffi.so" --language kotlin --no-format \
  --config bindings/kotlin/android/uniffi-android.toml --out-dir "$GEN/kotlin-android" >/dev/null
grep -q 'android.system.SystemCleaner' "$GEN/kotlin-android/dev/e2ee/e2ee_ffi.kt" \
  || { echo "android: the generated Kotlin does not use the Android cleaner" >&2; exit 1; }

bindings/kotlin/test.sh
bindings/python/test.sh
bindings/swift/check.sh
echo "bindings/test.sh: all binding suites passed"
