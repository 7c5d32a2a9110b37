#!/usr/bin/env python3
"""Turns one `cargo bench -p e2ee-bench --bench protocol` run into the docs/benchmarks.md tables.

Reads criterion's medians from $CARGO_TARGET_DIR/criterion (default: target/criterion) and sums
the primitive medians into each operation's floor, with the counts written out below.
"""
import json
import os
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def median(group, name):
    path = os.path.join(ROOT, group, name, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1000.0  # microseconds


P = {name: median("primitive", name) for name in [
    "x25519_keygen", "x25519_dh", "ed25519_sign_65B", "ed25519_verify_strict_65B",
    "ed25519_verify_strict_1215B", "ed25519_decode_public_key", "mlkem768_keygen",
    "mlkem768_encapsulate", "mlkem768_decapsulate", "mlkem768_validate_public_key",
    "hkdf_sha256_32B_to_64B", "hkdf_sha256_32B_to_44B", "hkdf_sha256_192B_to_32B",
    "hmac_sha256_chain_step", "aes256gcm_seal_100B", "aes256gcm_open_100B",
]}

# What each operation performs, counted from pqxdh.rs, session/state.rs, session_cipher.rs,
# identity.rs and prekeys.rs.
FLOORS = {
    "initiator": {
        "ed25519_verify_strict_65B": 1,      # signed prekey signature
        "ed25519_verify_strict_1215B": 1,    # KEM prekey signature (over the 1184-byte key)
        "x25519_keygen": 2,                  # EK, first ratchet key
        "x25519_dh": 5,                      # DH1..DH4, first root step
        "mlkem768_encapsulate": 1,
        "hkdf_sha256_192B_to_32B": 1,        # SK
        "hkdf_sha256_32B_to_64B": 1,         # first root step
    },
    "responder": {
        "ed25519_decode_public_key": 1,      # initiator identity in the PreKeyMessage
        "ed25519_verify_strict_65B": 1,      # its identity binding (51 bytes)
        "x25519_dh": 5,                      # DH1..DH4, first receiving root step
        "mlkem768_decapsulate": 1,
        "hkdf_sha256_192B_to_32B": 1,        # SK
        "hkdf_sha256_32B_to_64B": 1,         # root step
        "hmac_sha256_chain_step": 1,
        "hkdf_sha256_32B_to_44B": 1,         # message key
        "aes256gcm_open_100B": 1,
    },
    "encrypt": {"hmac_sha256_chain_step": 1, "hkdf_sha256_32B_to_44B": 1, "aes256gcm_seal_100B": 1},
    "decrypt": {"hmac_sha256_chain_step": 1, "hkdf_sha256_32B_to_44B": 1, "aes256gcm_open_100B": 1},
    "round_trip": {  # two messages, each a DH ratchet step on both sides
        "x25519_keygen": 2, "x25519_dh": 4, "hkdf_sha256_32B_to_64B": 4,
        "hmac_sha256_chain_step": 4, "hkdf_sha256_32B_to_44B": 4,
        "aes256gcm_seal_100B": 2, "aes256gcm_open_100B": 2,
    },
}
FLOORS["initiator_from_bytes"] = dict(FLOORS["initiator"])
FLOORS["initiator_from_bytes"].update({
    "ed25519_decode_public_key": 1,          # bundle identity
    "mlkem768_validate_public_key": 1,       # KEM prekey decoding
})
FLOORS["initiator_from_bytes"]["ed25519_verify_strict_65B"] = 2  # + identity binding


def floor(kind):
    return sum(P[name] * n for name, n in FLOORS[kind].items())


ROWS = [
    # label, ours (group, name), vodozemac (group, name) or None, floor kind or None
    ("Set-up, initiator (bundle struct)", ("setup", "ours_initiator"), ("setup", "vodozemac_initiator"), "initiator"),
    ("Set-up, initiator (bundle bytes)", ("setup", "ours_initiator_from_bytes"), ("setup", "vodozemac_initiator"), "initiator_from_bytes"),
    ("Set-up, responder (first message)", ("setup", "ours_responder"), ("setup", "vodozemac_responder"), "responder"),
    ("Encrypt, session level", ("encrypt", "ours_session"), ("encrypt", "vodozemac"), "encrypt"),
    ("Encrypt, through the store", ("encrypt", "ours_store"), ("encrypt", "vodozemac"), "encrypt"),
    ("Decrypt, session level", ("decrypt", "ours_session"), ("decrypt", "vodozemac"), "decrypt"),
    ("Decrypt, through the store", ("decrypt", "ours_store"), ("decrypt", "vodozemac"), "decrypt"),
    ("Ping-pong round trip (2 DH steps)", ("pingpong", "ours_round_trip"), ("pingpong", "vodozemac_round_trip"), "round_trip"),
]


def main():
    print("| Operation (100-byte messages) | ours (us) | vodozemac (us) | vodozemac / ours | floor (us) | ours / floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, ours, vz, kind in ROWS:
        o = median(*ours)
        v = median(*vz)
        f = floor(kind)
        print(f"| {label} | {o:.2f} | {v:.2f} | {v / o:.2f}x | {f:.2f} | {o / f:.2f}x |")
    print()
    print("| Primitive | median (us) |")
    print("|---|---:|")
    for name, value in P.items():
        print(f"| {name} | {value:.3f} |")
    print()
    for kind, parts in FLOORS.items():
        terms = " + ".join(f"{n} x {name}" for name, n in parts.items())
        print(f"- floor `{kind}` = {terms} = {floor(kind):.2f} us")


if __name__ == "__main__":
    sys.exit(main())
