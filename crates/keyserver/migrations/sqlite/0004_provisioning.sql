-- The provisioning channel: sealed messages between a device being linked and the account's
-- primary device (docs/keyserver.md, "Linking a device"). The server sees only a channel id
-- (a hash of a secret it never learns), a slot and ciphertext; rows expire after minutes.
CREATE TABLE ks_provisioning (
    channel     TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    message     BLOB NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (channel, slot)
);
CREATE INDEX ks_provisioning_expiry ON ks_provisioning (expires_at);
