//! Multi-device: account identities, each device's own binding to its account, device
//! certificates, signed device lists, and the directory through which pairwise messages are
//! sent to and accepted from listed devices only.
//!
//! Each user has one **account identity key** (Ed25519, held by the primary device). It signs
//! a [`DeviceCertificate`] for every device and the user's [`DeviceList`]. Each device signs
//! its own [`DeviceBinding`] (its address and account), which certificates and lists carry,
//! so an account can only list devices that agreed to be its devices. An [`AccountConsent`] is
//! the account key's fresh, signed agreement to enrol or remove one device at a server.
//! Clients encrypt to and accept messages from listed devices only ([`DeviceDirectory`]), so
//! a server cannot add a "ghost device", and no account can pass another user's device off
//! as its own.

mod account_key;
mod binding;
mod certificate;
mod consent;
mod directory;
mod error;
mod list;

pub use account_key::{
    ACCOUNT_IDENTITY_KEY_LEN, ACCOUNT_IDENTITY_SECRET_LEN, AccountIdentityKey,
    AccountIdentityKeyPair,
};
pub use binding::DeviceBinding;
pub use certificate::{DEVICE_CERTIFICATE_VERSION, DeviceCertificate, MAX_DEVICE_CERTIFICATE_LEN};
pub use consent::{ACCOUNT_CONSENT_LEN, ACCOUNT_CONSENT_VERSION, AccountConsent, ConsentAction};
pub use directory::{
    DEVICE_DIRECTORY_VERSION, DeviceDirectory, Envelope, FanoutPlan, MAX_DIRECTORY_USERS, Received,
    VerifiedDevice,
};
pub use error::DeviceError;
pub use list::{
    DEVICE_ENTRY_LEN, DEVICE_LIST_VERSION, DeviceEntry, DeviceList, MAX_DEVICE_LIST_LEN,
    MAX_DEVICES_PER_LIST,
};
