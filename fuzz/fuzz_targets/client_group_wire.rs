#![no_main]
//! The client's group wire (the relay payload of a group message, the group chat message in
//! it) and the log's conversation key decode totally and canonically.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    e2ee_client::fuzz_support::check_group_wire(data);
});
