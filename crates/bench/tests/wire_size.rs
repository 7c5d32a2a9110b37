//! Wire size of a 1:1 message carrying 5 plaintext bytes (DESIGN.md: at most 56 bytes),
//! beside vodozemac Olm's.

#[path = "../benches/common/mod.rs"]
mod common;

#[test]
fn five_byte_message_is_at_most_56_bytes() {
    let (ours, olm) = common::wire_sizes();
    println!("wire size of a 5-byte message: ours {ours} bytes, vodozemac Olm {olm} bytes");
    assert!(ours <= 56, "ours is {ours} bytes");
    assert!(ours < olm, "ours {ours}, Olm {olm}");
}
