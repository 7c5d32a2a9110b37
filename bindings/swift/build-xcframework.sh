#!/usr/bin/env bash
# On a Mac with Xcode and rustup: builds the SDK's static library for iOS devices, the iOS
# simulator (Apple silicon and Intel) and macOS in release, generates the Swift bindings from
# it with the workspace's own uniffi-bindgen, and packs E2EEFFI.xcframework and
# Sources/E2EE/E2EE.swift beside Package.swift. Untested: no Mac runs this project's CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
  cargo build --release -p e2ee-ffi --lib --target "$t"
done
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
lib=libe2ee_ffi.a

cargo build --release -p e2ee-uniffi-bindgen
generated="$target_dir/swift-generated"
rm -rf "$generated" && mkdir -p "$generated/include"
"$target_dir/release/uniffi-bindgen" generate "$target_dir/aarch64-apple-ios/release/$lib" \
  --language swift --out-dir "$generated"
mv "$generated/E2EEFFI.h" "$generated/include/"
# Xcode looks for module.modulemap inside the framework's headers.
mv "$generated/E2EEFFI.modulemap" "$generated/include/module.modulemap"

# One fat simulator library (both architectures), as xcodebuild wants one per platform.
sim="$target_dir/ios-simulator-universal"
mkdir -p "$sim"
lipo -create "$target_dir/aarch64-apple-ios-sim/release/$lib" \
  "$target_dir/x86_64-apple-ios/release/$lib" -output "$sim/$lib"

rm -rf "$here/E2EEFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target_dir/aarch64-apple-ios/release/$lib" -headers "$generated/include" \
  -library "$sim/$lib" -headers "$generated/include" \
  -library "$target_dir/aarch64-apple-darwin/release/$lib" -headers "$generated/include" \
  -output "$here/E2EEFFI.xcframework"
mkdir -p "$here/Sources/E2EE"
cp "$generated/E2EE.swift" "$here/Sources/E2EE/E2EE.swift"
echo "built $here/E2EEFFI.xcframework and Sources/E2EE/E2EE.swift; add the package in Xcode"
