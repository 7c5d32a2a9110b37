-- Key server schema (PostgreSQL). Integers are BIGINT (u32 ids and u64 versions fit in i64 after
-- range checks in the handlers); keys are stored in their canonical e2ee-core encodings.
CREATE TABLE ks_accounts (
    user_id     TEXT PRIMARY KEY NOT NULL,
    account_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE ks_devices (
    user_id         TEXT NOT NULL REFERENCES ks_accounts (user_id),
    device_id       BIGINT NOT NULL,
    identity_key    BYTEA NOT NULL,
    certificate     BYTEA NOT NULL,
    credential_salt BYTEA NOT NULL,
    credential_hash BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE ks_signed_prekeys (
    user_id   TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    key_id    BIGINT NOT NULL,
    encoded   BYTEA NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES ks_devices (user_id, device_id)
);

CREATE TABLE ks_one_time_prekeys (
    user_id   TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    key_id    BIGINT NOT NULL,
    encoded   BYTEA NOT NULL,
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES ks_devices (user_id, device_id)
);

CREATE TABLE ks_kem_prekeys (
    user_id   TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    key_id    BIGINT NOT NULL,
    encoded   BYTEA NOT NULL,
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES ks_devices (user_id, device_id)
);

CREATE TABLE ks_last_resort_kem_prekeys (
    user_id   TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    key_id    BIGINT NOT NULL,
    encoded   BYTEA NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES ks_devices (user_id, device_id)
);

CREATE TABLE ks_device_lists (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES ks_accounts (user_id),
    version BIGINT NOT NULL,
    encoded BYTEA NOT NULL
);
