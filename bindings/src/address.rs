//! [`Address`]: one device of one user.

use e2ee_client::DeviceAddress;

use crate::E2eeError;

/// A device: its user and the device number within the account (the first device is 1).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Address {
    /// The user id.
    pub user: String,
    /// The device number.
    pub device: u32,
}

impl From<&DeviceAddress> for Address {
    fn from(address: &DeviceAddress) -> Self {
        Self {
            user: address.user.to_string(),
            device: address.device,
        }
    }
}

impl TryFrom<&Address> for DeviceAddress {
    type Error = E2eeError;

    fn try_from(address: &Address) -> Result<Self, E2eeError> {
        DeviceAddress::new(address.user.as_str(), address.device)
            .map_err(|_| E2eeError::InvalidUserId)
    }
}
