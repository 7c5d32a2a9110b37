#![no_main]
//! The attachment stream decoder never panics on any blob, any claimed size and any cutting
//! into pieces, and releases nothing from a blob it was not sealed for: with a fixed key, a
//! blob the fuzzer makes up decrypts only if it is this key's encryption of its output.
use e2ee_core::media::{MediaDecryptor, MediaKey, encrypt_attachment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, blob)) = data.split_at_checked(4) else { return };
    // A small claimed size (so a made-up blob can be complete) and a piece length.
    let size = u64::from(u16::from_be_bytes([head[0], head[1]]));
    let piece = usize::from(u16::from_be_bytes([head[2], head[3]])).max(1);
    let key = MediaKey::from_bytes([0x42; 32]);
    let Ok(mut decryptor) = MediaDecryptor::new(&key, size) else { return };
    let mut out = Vec::new();
    let mut ok = true;
    for part in blob.chunks(piece) {
        if decryptor.update(part, &mut out).is_err() {
            ok = false;
            break;
        }
    }
    if ok && decryptor.finish().is_ok() {
        assert_eq!(out.len() as u64, size);
        assert_eq!(encrypt_attachment(&key, &out).ok().as_deref(), Some(blob));
    }
});
