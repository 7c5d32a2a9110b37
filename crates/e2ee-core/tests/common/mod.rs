//! Shared by the decoder tests: mutations of valid encodings and the fuzz seed corpora.

use std::{fs, path::PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// The fuzz seed corpus of one target, under fuzz/corpus/.
pub(crate) fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Feeds `decode` the valid encoding, its first `max_cut` truncations, and 300 copies with
/// 1-4 flipped bits (a quarter of them with one byte appended).
pub(crate) fn decode_mutations(
    rng: &mut ChaCha20Rng,
    valid: &[u8],
    max_cut: usize,
    mut decode: impl FnMut(&[u8]),
) {
    decode(valid);
    for cut in 0..valid.len().min(max_cut) {
        decode(&valid[..cut]);
    }
    for _ in 0..300 {
        let mut data = valid.to_vec();
        for _ in 0..1 + rng.next_u32() % 4 {
            let i = rng.next_u32() as usize % data.len();
            data[i] ^= 1 << (rng.next_u32() % 8);
        }
        if rng.next_u32().is_multiple_of(4) {
            data.push(rng.next_u32() as u8);
        }
        decode(&data);
    }
}

/// Replays every seed file of `targets` through `decode` and returns how many there were.
/// `E2EE_WRITE_FUZZ_SEEDS=1` first rewrites the seeds from `valid` (file `seed-<index>`).
pub(crate) fn replay_corpora(
    targets: &[&str],
    valid: Vec<(&'static str, Vec<u8>)>,
    decode: impl Fn(&str, &[u8]),
) -> usize {
    if std::env::var_os("E2EE_WRITE_FUZZ_SEEDS").is_some() {
        for (i, (target, bytes)) in valid.into_iter().enumerate() {
            let dir = corpus_dir(target);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("seed-{i}")), bytes).unwrap();
        }
    }
    let mut replayed = 0;
    for target in targets {
        let Ok(entries) = fs::read_dir(corpus_dir(target)) else {
            continue;
        };
        for entry in entries {
            decode(target, &fs::read(entry.unwrap().path()).unwrap());
            replayed += 1;
        }
    }
    replayed
}
