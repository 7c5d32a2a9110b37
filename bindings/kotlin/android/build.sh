#!/usr/bin/env bash
# On a build host with the Android NDK: builds libe2ee_ffi.so in release for the four Android
# ABIs into e2ee/src/main/jniLibs/<abi>/ and generates the Android flavour of the Kotlin
# bindings into e2ee/src/main/kotlin/, so that `e2ee/` is a Gradle library module an app
# includes. Untested here: these machines have no NDK (CI generates the Android Kotlin only).
# Needs: rustup, `cargo install cargo-ndk`, ANDROID_NDK_HOME pointing at an NDK (r26 or newer).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../../.."
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the NDK}"
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
# 16 KiB page alignment, required for Android 15+ devices.
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 \
  -o "$here/e2ee/src/main/jniLibs" build --release -p e2ee-ffi --lib
cargo build --release -p e2ee-uniffi-bindgen
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
"$target_dir/release/uniffi-bindgen" generate "$here/e2ee/src/main/jniLibs/arm64-v8a/libe2ee_ffi.so" \
  --language kotlin --config "$here/uniffi-android.toml" --out-dir "$here/e2ee/src/main/kotlin"
echo "built $here/e2ee (jniLibs for 4 ABIs + generated Kotlin): include it as a Gradle module"
