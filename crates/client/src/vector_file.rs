//! The one way this crate's vector tests keep a JSON file in `vectors/` in step with the code:
//! `E2EE_REGENERATE_VECTORS=1 cargo test -p e2ee-client vectors` rewrites it; otherwise the
//! file must equal what the code generates now.

#![allow(clippy::unwrap_used, clippy::panic)]

use serde_json::Value;

/// Checks (or, when asked, rewrites) the file at `path` against `generated`; returns the
/// stored vectors, for the test to recompute from the spec's formulas.
pub(crate) fn matches_file(path: &str, generated: &Value) -> Value {
    let text = format!("{}\n", serde_json::to_string_pretty(generated).unwrap());
    if std::env::var_os("E2EE_REGENERATE_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; regenerate with E2EE_REGENERATE_VECTORS=1 cargo test -p e2ee-client vectors")
    });
    assert_eq!(stored, text, "{path} drifted from the code");
    serde_json::from_str(&stored).unwrap()
}

/// A vector field holding hex.
pub(crate) fn hex_field(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}
