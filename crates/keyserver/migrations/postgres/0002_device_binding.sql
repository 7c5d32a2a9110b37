-- Each device's own binding (DeviceBinding: address, account key, the device's signature),
-- served in its bundles; and one account per device identity key: a key registered to one
-- account cannot be registered to another (defence in depth, clients check the bindings).
ALTER TABLE ks_devices ADD COLUMN binding BYTEA NOT NULL DEFAULT '\x';
CREATE UNIQUE INDEX ks_devices_identity_key ON ks_devices (identity_key);
