-- Removed devices come back only with the account key's fresh consent (docs/keyserver.md).
-- A tombstone per removed (user, device, identity): a consent signed before the removal
-- cannot enrol the device again. The key holder is the device registered with the account;
-- removing it needs the account key's consent. enrolled_at_ms is when the account consented
-- to the device (its registration, for devices from before this migration), so a removal
-- consent signed before a re-enrolment cannot remove the device again.
CREATE TABLE ks_removed_devices (
    user_id       TEXT NOT NULL,
    device_id     BIGINT NOT NULL,
    identity_key  BYTEA NOT NULL,
    removed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, identity_key)
);
CREATE INDEX ks_removed_devices_identity ON ks_removed_devices (user_id, identity_key);
CREATE INDEX ks_removed_devices_at ON ks_removed_devices (removed_at_ms);
ALTER TABLE ks_accounts ADD COLUMN key_holder_device BIGINT;
UPDATE ks_accounts SET key_holder_device =
    (SELECT MIN(device_id) FROM ks_devices WHERE ks_devices.user_id = ks_accounts.user_id);
ALTER TABLE ks_devices ADD COLUMN enrolled_at_ms BIGINT NOT NULL DEFAULT 0;
UPDATE ks_devices SET enrolled_at_ms = created_at * 1000;
