//! How public keys show in `Debug` output: a short hex prefix, enough to tell keys apart in
//! logs without printing them whole. (Secrets never show at all.)

/// First four bytes in hex, then `..`.
pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + ".."
}
