//! Every relay decoder (client frames, relay frames, node-to-node messages) over random bytes,
//! mutated valid encodings and the fuzz seed corpora, on stable Rust (the fuzz targets in
//! fuzz/ need nightly). Each must return a value or a typed error, never panic, and client
//! frames (what the relay parses from untrusted devices) and node-to-node messages must re-encode
//! to exactly their input.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::{fs, path::PathBuf};

use e2ee_relay::{
    Routed,
    wire::{
        ClientFrame, Codec, Delivery, DeviceAddress, DevicePresence, ErrorCode, FLAG_ONLINE_ONLY,
        OutEnvelope, SendStatus, ServerFrame, UserId,
    },
};

const TARGETS: [&str; 3] = ["relay_client_frame", "relay_server_frame", "relay_routed"];

/// Deterministic xorshift64*, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn decode(target: &str, data: &[u8]) {
    match target {
        "relay_client_frame" => {
            if let Ok(f) = ClientFrame::from_bytes(data) {
                assert_eq!(f.to_bytes(), data, "client frame is not canonical");
            }
        }
        "relay_server_frame" => {
            if let Ok(f) = ServerFrame::from_bytes(data) {
                // Error details are decoded lossily (UTF-8), everything else exactly.
                if !matches!(f, ServerFrame::Error { .. }) {
                    assert_eq!(f.to_bytes(), data, "relay frame is not canonical");
                }
            }
        }
        "relay_routed" => {
            if let Ok(m) = Routed::from_bytes(data) {
                assert_eq!(m.to_bytes(), data, "routed message is not canonical");
            }
        }
        other => panic!("unknown target {other}"),
    }
}

fn addr(user: &str, device: u32) -> DeviceAddress {
    DeviceAddress::new(user, device).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

fn delivery() -> Delivery {
    Delivery {
        seq: 42,
        flags: 0,
        server_ts_ms: 1_700_000_000_000,
        sender: addr("alice", 1),
        msg_id: 7,
        payload: vec![0xAB; 40].into(),
    }
}

fn valid() -> Vec<(&'static str, Vec<u8>)> {
    let send = ClientFrame::Send(vec![
        OutEnvelope {
            flags: 0,
            msg_id: 1,
            recipients: vec![addr("bob", 1)],
            payload: vec![1, 2, 3, 4],
        },
        OutEnvelope {
            flags: FLAG_ONLINE_ONLY,
            msg_id: 2,
            recipients: vec![addr("bob", 1), addr("carol", 3)],
            payload: vec![9; 20],
        },
    ]);
    vec![
        ("relay_client_frame", send.to_bytes()),
        (
            "relay_client_frame",
            ClientFrame::Ack(vec![1, 2, 3]).to_bytes(),
        ),
        (
            "relay_client_frame",
            ClientFrame::PresenceQuery(user("bob")).to_bytes(),
        ),
        (
            "relay_client_frame",
            ClientFrame::PresenceAllow(vec![user("alice"), user("carol")]).to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::SendResult(vec![(1, SendStatus::Stored), (2, SendStatus::Duplicate)])
                .to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::Deliver(delivery()).to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                msg_id: 3,
                retry_after_ms: 100,
                detail: "slow down".into(),
            }
            .to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::QueueDrained { count: 5 }.to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::Presence {
                user: user("bob"),
                devices: vec![DevicePresence {
                    device_id: 1,
                    online: true,
                    last_seen_ms: 5,
                }],
            }
            .to_bytes(),
        ),
        (
            "relay_server_frame",
            ServerFrame::PresenceAllowed { count: 2 }.to_bytes(),
        ),
        (
            "relay_routed",
            Routed::Deliveries(vec![(addr("bob", 2), delivery())]).to_bytes(),
        ),
        ("relay_routed", Routed::Kick(addr("bob", 2)).to_bytes()),
    ]
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn valid_encodings_decode() {
    for (target, bytes) in valid() {
        match target {
            "relay_client_frame" => assert!(ClientFrame::from_bytes(&bytes).is_ok()),
            "relay_server_frame" => assert!(ServerFrame::from_bytes(&bytes).is_ok()),
            _ => assert!(Routed::from_bytes(&bytes).is_ok()),
        }
        decode(target, &bytes);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 200) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the inputs start like a real frame, so they get past the header.
        if len >= 2 && rng.next().is_multiple_of(2) {
            data[0] = 1;
            data[1] = [0x01, 0x02, 0x03, 0x04, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86]
                [(rng.next() % 10) as usize];
        }
        for target in TARGETS {
            decode(target, &data);
        }
    }
}

#[test]
fn mutations_of_valid_encodings_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for (target, bytes) in valid() {
        for cut in 0..bytes.len() {
            decode(target, &bytes[..cut]);
        }
        for _ in 0..2_000 {
            let mut data = bytes.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % data.len();
                data[i] ^= 1 << (rng.next() % 8);
            }
            if rng.next().is_multiple_of(4) {
                data.push(rng.next() as u8);
            }
            decode(target, &data);
        }
    }
}

/// `E2EE_WRITE_FUZZ_SEEDS=1` rewrites the seeds from `valid()`; the committed corpus is
/// replayed either way.
#[test]
fn fuzz_seed_corpora_replay() {
    if std::env::var_os("E2EE_WRITE_FUZZ_SEEDS").is_some() {
        for (i, (target, bytes)) in valid().into_iter().enumerate() {
            let dir = corpus_dir(target);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("seed-{i}")), bytes).unwrap();
        }
    }
    let mut replayed = 0;
    for target in TARGETS {
        for entry in fs::read_dir(corpus_dir(target)).unwrap() {
            decode(target, &fs::read(entry.unwrap().path()).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= valid().len(), "seed corpora missing");
}
