-- Relay storage, SQLite flavour. Only routing metadata and opaque ciphertext.

-- (sender, message id) pairs seen, kept until the TTL so retries are deduplicated even after
-- the recipients acknowledged (and the relay deleted) the envelope.
CREATE TABLE dedup (
    sender_user   TEXT    NOT NULL,
    sender_device INTEGER NOT NULL,
    msg_id        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (sender_user, sender_device, msg_id)
) WITHOUT ROWID;
CREATE INDEX dedup_expiry ON dedup (expires_at);

-- Ciphertext shared by the recipients of one group envelope: stored once, referenced by each
-- mailbox row, deleted when the last reference is acknowledged.
CREATE TABLE payloads (
    id         INTEGER PRIMARY KEY,
    refs       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body       BLOB    NOT NULL
);
CREATE INDEX payloads_expiry ON payloads (expires_at);

-- One row per (recipient device, envelope). `seq` is allocated by the relay and never reused.
-- Single-recipient envelopes carry their ciphertext inline in `body`; group ones point at
-- `payloads`.
CREATE TABLE mailbox (
    seq           INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    device_id     INTEGER NOT NULL,
    sender_user   TEXT    NOT NULL,
    sender_device INTEGER NOT NULL,
    msg_id        INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    body          BLOB,
    payload_id    INTEGER
);
CREATE INDEX mailbox_device ON mailbox (user_id, device_id, seq);
-- No index on expires_at: rows normally leave on ack, so the table holds only undelivered
-- envelopes and the once-a-minute expiry sweep can scan it; an index would cost two B-tree
-- writes per message.

CREATE TABLE relay_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE last_seen (
    user_id   TEXT    NOT NULL,
    device_id INTEGER NOT NULL,
    seen_ms   INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

-- Who may read a user's presence, besides the user's own devices: (owner, viewer) pairs set
-- by the owner with PRESENCE_ALLOW.
CREATE TABLE presence_allow (
    owner  TEXT NOT NULL,
    viewer TEXT NOT NULL,
    PRIMARY KEY (owner, viewer)
) WITHOUT ROWID;
