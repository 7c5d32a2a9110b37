use e2ee_encoding::{DecodeError as FormatError, check_codec};

use super::*;
use crate::limits::{MAX_ACK_BATCH, MAX_BATCH_ENVELOPES, MAX_PAYLOAD_LEN, MAX_RECIPIENTS};

fn address(user: &str, device: u32) -> DeviceAddress {
    DeviceAddress::new(user, device).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

fn env(n_recipients: usize, len: usize) -> OutEnvelope {
    OutEnvelope {
        flags: 0,
        msg_id: 7,
        recipients: (0..n_recipients)
            .map(|i| address("bob", i as u32))
            .collect(),
        payload: vec![0xAB; len],
    }
}

fn delivery() -> Delivery {
    Delivery {
        seq: 9,
        flags: 0,
        server_ts_ms: 1234,
        sender: address("alice", 1),
        msg_id: 77,
        payload: vec![1u8, 2, 3].into(),
    }
}

#[test]
fn send_matches_documented_bytes() {
    let f = ClientFrame::Send(vec![OutEnvelope {
        flags: FLAG_ONLINE_ONLY,
        msg_id: 0x0102030405060708,
        recipients: vec![address("bob", 2)],
        payload: vec![0xCA, 0xFE],
    }]);
    // The example in docs/relay.md, "SEND".
    let expected: Vec<u8> = vec![
        0x01, 0x01, 0x00, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x01, 0x03, b'b', b'o', b'b',
        0, 0, 0, 2, 0, 0, 0, 2, 0xCA, 0xFE,
    ];
    assert_eq!(f.to_bytes(), expected);
    check_codec(&f);
}

#[test]
fn every_frame_kind_round_trips_and_refuses_cuts_and_trailing_bytes() {
    for frame in [
        ClientFrame::Send(vec![env(2, 10), env(1, 0)]),
        ClientFrame::Ack(vec![1, 2, u64::MAX]),
        ClientFrame::PresenceQuery(user("bob")),
        ClientFrame::PresenceAllow(vec![user("alice"), user("carol")]),
        ClientFrame::PresenceAllow(vec![]),
    ] {
        check_codec(&frame);
    }
    for frame in [
        ServerFrame::SendResult(vec![(1, SendStatus::Stored), (2, SendStatus::Duplicate)]),
        ServerFrame::Deliver(delivery()),
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            msg_id: 5,
            retry_after_ms: 250,
            detail: "slow down".into(),
        },
        ServerFrame::QueueDrained { count: 3 },
        ServerFrame::Presence {
            user: user("bob"),
            devices: vec![DevicePresence {
                device_id: 1,
                online: true,
                last_seen_ms: 99,
            }],
        },
        ServerFrame::PresenceAllowed { count: 2 },
    ] {
        check_codec(&frame);
    }
}

#[test]
fn payload_limit_is_enforced() {
    let ok = ClientFrame::Send(vec![env(1, MAX_PAYLOAD_LEN)]).to_bytes();
    assert!(ClientFrame::from_bytes(&ok).is_ok());
    let big = ClientFrame::Send(vec![env(1, MAX_PAYLOAD_LEN + 1)]).to_bytes();
    let err = ClientFrame::from_bytes(&big).unwrap_err();
    assert_eq!(err, DecodeError::PayloadTooLarge);
    assert!(!err.is_fatal());
}

#[test]
fn recipient_limit_is_enforced() {
    let most = ClientFrame::Send(vec![env(MAX_RECIPIENTS, 1)]).to_bytes();
    assert!(ClientFrame::from_bytes(&most).is_ok());
    let over = ClientFrame::Send(vec![env(MAX_RECIPIENTS + 1, 1)]).to_bytes();
    assert_eq!(
        ClientFrame::from_bytes(&over),
        Err(DecodeError::TooManyRecipients)
    );
}

#[test]
fn batch_limits_are_enforced() {
    let envs: Vec<_> = (0..=MAX_BATCH_ENVELOPES).map(|_| env(1, 1)).collect();
    assert_eq!(
        ClientFrame::from_bytes(&ClientFrame::Send(envs).to_bytes()),
        Err(DecodeError::BatchTooLarge)
    );
    let acks: Vec<u64> = (0..=MAX_ACK_BATCH as u64).collect();
    assert_eq!(
        ClientFrame::from_bytes(&ClientFrame::Ack(acks).to_bytes()),
        Err(DecodeError::BatchTooLarge)
    );
    let most = ClientFrame::PresenceAllow(vec![user("x"); MAX_PRESENCE_VIEWERS]);
    assert!(ClientFrame::from_bytes(&most.to_bytes()).is_ok());
    let too_many = ClientFrame::PresenceAllow(vec![user("x"); MAX_PRESENCE_VIEWERS + 1]);
    assert_eq!(
        ClientFrame::from_bytes(&too_many.to_bytes()),
        Err(DecodeError::BatchTooLarge)
    );
}

#[test]
fn garbage_is_rejected() {
    assert_eq!(
        ClientFrame::from_bytes(&[2, 1]),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        ClientFrame::from_bytes(&[1, 0x7f]),
        Err(DecodeError::UnknownKind(0x7f))
    );
    assert_eq!(
        ClientFrame::from_bytes(&[]),
        Err(DecodeError::Malformed(FormatError::Truncated))
    );
    // Unknown flag bit.
    let mut bytes = ClientFrame::Send(vec![env(1, 1)]).to_bytes();
    bytes[4] = 0x80;
    assert_eq!(
        ClientFrame::from_bytes(&bytes),
        Err(DecodeError::Malformed(FormatError::InvalidField(
            "unknown flag bits"
        )))
    );
    // Invalid UTF-8 and NUL in a user id: the one user-id rule applies on the wire too.
    let mut bytes = ClientFrame::PresenceQuery(user("ab")).to_bytes();
    bytes[3] = 0xff;
    assert!(ClientFrame::from_bytes(&bytes).unwrap_err().is_fatal());
    bytes[3] = 0;
    assert!(ClientFrame::from_bytes(&bytes).unwrap_err().is_fatal());
    // Presence online flags are 0 or 1.
    let mut bytes = ServerFrame::Presence {
        user: user("bob"),
        devices: vec![DevicePresence {
            device_id: 1,
            online: true,
            last_seen_ms: 0,
        }],
    }
    .to_bytes();
    bytes[2 + 4 + 2 + 4] = 2;
    assert_eq!(
        ServerFrame::from_bytes(&bytes),
        Err(DecodeError::Malformed(FormatError::NonCanonical))
    );
}

#[test]
fn error_detail_is_cut_to_its_length_byte() {
    let frame = ServerFrame::Error {
        code: ErrorCode::Malformed,
        msg_id: 0,
        retry_after_ms: 0,
        detail: "x".repeat(MAX_ERROR_DETAIL_LEN + 10),
    };
    match ServerFrame::from_bytes(&frame.to_bytes()).unwrap() {
        ServerFrame::Error { detail, .. } => assert_eq!(detail.len(), MAX_ERROR_DETAIL_LEN),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_first_msg_id_of_a_refused_send_is_read_without_decoding() {
    let bytes = ClientFrame::Send(vec![env(1, 1)]).to_bytes();
    assert_eq!(ClientFrame::first_msg_id(&bytes), 7);
    assert_eq!(ClientFrame::first_msg_id(&bytes[..12]), 0);
    assert_eq!(
        ClientFrame::first_msg_id(&ClientFrame::Ack(vec![7]).to_bytes()),
        0
    );
    assert_eq!(ClientFrame::first_msg_id(&[]), 0);
}
