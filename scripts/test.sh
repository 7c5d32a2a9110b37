#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run calls this): formatting, lints on every
# target, every test (unit, property, integration, whole-stack, each benchmark once in test
# mode), doc tests, docs, a build of the fuzz targets, and the Kotlin, Python and Swift binding
# suites (bindings/test.sh). Nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
cargo test --workspace --doc
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
cargo build --manifest-path fuzz/Cargo.toml
bindings/test.sh
echo "scripts/test.sh: all checks passed"
