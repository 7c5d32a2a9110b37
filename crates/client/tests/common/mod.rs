//! Helpers of the client's integration tests: a temporary directory, store keys, addresses
//! and the bundle a key server would serve for a device.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use e2ee_client::{PreKeyUpload, Registration, store::StoreKey};
use e2ee_core::{
    Codec, DeviceAddress, KemPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic,
    device::DeviceCertificate,
};
use rand_core::{OsRng, RngCore};

/// A fresh directory under the system's temp dir, removed on drop.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "e2ee-client-{name}-{}-{:08x}",
            std::process::id(),
            OsRng.next_u32()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The file `name` in this directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes([byte; 32])
}

pub fn address(user: &str, device: u32) -> DeviceAddress {
    DeviceAddress::new(user, device).unwrap()
}

/// What a key server would serve for the registered device: its identity and binding (from
/// its certificate), the signed prekey, and one-time key `index` of each kind.
pub fn bundle(registration: &Registration, upload: &PreKeyUpload, index: usize) -> Vec<u8> {
    let cert = DeviceCertificate::from_bytes(&registration.device_certificate).unwrap();
    PreKeyBundle {
        identity: *cert.identity(),
        binding: cert.binding().clone(),
        signed_prekey: SignedPreKeyPublic::from_bytes(&upload.signed_prekey).unwrap(),
        one_time_prekey: Some(
            OneTimePreKeyPublic::from_bytes(&upload.one_time_prekeys[index]).unwrap(),
        ),
        kem_prekey: Some(KemPreKeyPublic::from_bytes(&upload.kem_prekeys[index]).unwrap()),
    }
    .to_bytes()
}

/// This test binary run again as a child process, running only `test`, with the environment
/// variable `env` set to `value` (the child's cue to play its part), its stdout as lines.
pub fn spawn_child(
    test: &str,
    env: &str,
    value: &Path,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Kills `child` with SIGKILL (a no-op if it already exited) and reaps it.
pub fn kill_9(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Alice and Bob (device 1 each) in `dir` (`alice.db` under key 1, `bob.db` under key 2):
/// each has learned the other, and Alice has a session with Bob from his bundle.
pub fn paired_devices(dir: &Path) -> (e2ee_client::Device, e2ee_client::Device) {
    use e2ee_client::Device;
    let (mut alice, alice_reg) =
        Device::create_primary(&dir.join("alice.db"), &key(1), "alice", 1).unwrap();
    let (mut bob, bob_reg) =
        Device::create_primary(&dir.join("bob.db"), &key(2), "bob", 1).unwrap();
    let upload = bob.generate_prekeys(1).unwrap();
    alice
        .learn_user("bob", &bob_reg.account_key, &bob_reg.device_list)
        .unwrap();
    bob.learn_user("alice", &alice_reg.account_key, &alice_reg.device_list)
        .unwrap();
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &upload, 0))
        .unwrap();
    (alice, bob)
}

/// The body of a received chat message (panics on anything else).
pub fn body(received: Option<e2ee_client::Received>) -> Vec<u8> {
    match received {
        Some(e2ee_client::Received::Message(message)) => message.body,
        other => panic!("expected a chat message, got {other:?}"),
    }
}
