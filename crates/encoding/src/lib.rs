//! # e2ee-encoding
//!
//! The few types every crate of the workspace shares, and nothing else: no protocol logic,
//! no I/O.
//!
//! * [`UserId`] and [`DeviceAddress`]: the one device address of the system (a validated
//!   user id plus a device id) with its one encoding.
//! * [`Reader`]: a bounded cursor that hands out sub-slices, never allocates more than the
//!   input justifies, and rejects trailing bytes.
//! * [`Codec`]: the one trait every public binary format implements (`write`/`read`, with
//!   `to_bytes`/`from_bytes` provided).
//!
//! ```
//! use e2ee_encoding::{Codec, DeviceAddress};
//!
//! let bob = DeviceAddress::new("bob", 3)?;
//! let bytes = bob.to_bytes();
//! assert_eq!(bytes, [3, b'b', b'o', b'b', 0, 0, 0, 3]);
//! assert_eq!(DeviceAddress::from_bytes(&bytes)?, bob);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod codec;
mod error;
mod reader;

pub use address::{DeviceAddress, MAX_USER_ID_LEN, UserId};
pub use codec::Codec;
#[cfg(any(test, feature = "testing"))]
pub use codec::check_codec;
pub use error::{AddressError, DecodeError};
pub use reader::{Reader, put_varint};
