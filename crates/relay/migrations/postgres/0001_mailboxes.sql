-- Relay storage, PostgreSQL flavour (same shape as the SQLite one; see there for comments).

CREATE TABLE dedup (
    sender_user   TEXT   NOT NULL,
    sender_device BIGINT NOT NULL,
    msg_id        BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (sender_user, sender_device, msg_id)
);
CREATE INDEX dedup_expiry ON dedup (expires_at);

CREATE TABLE payloads (
    id         BIGINT PRIMARY KEY,
    refs       BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    body       BYTEA  NOT NULL
);
CREATE INDEX payloads_expiry ON payloads (expires_at);

CREATE SEQUENCE mailbox_seq;

CREATE TABLE mailbox (
    seq           BIGINT PRIMARY KEY,
    user_id       TEXT   NOT NULL,
    device_id     BIGINT NOT NULL,
    sender_user   TEXT   NOT NULL,
    sender_device BIGINT NOT NULL,
    msg_id        BIGINT NOT NULL,
    flags         BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    body          BYTEA,
    payload_id    BIGINT
);
CREATE INDEX mailbox_device ON mailbox (user_id, device_id, seq);
-- No index on expires_at: rows normally leave on ack, so the table holds only undelivered
-- envelopes and the once-a-minute expiry sweep can scan it; an index would cost two B-tree
-- writes per message.

CREATE TABLE last_seen (
    user_id   TEXT   NOT NULL,
    device_id BIGINT NOT NULL,
    seen_ms   BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Who may read a user's presence, besides the user's own devices: (owner, viewer) pairs set
-- by the owner with PRESENCE_ALLOW.
CREATE TABLE presence_allow (
    owner  TEXT NOT NULL,
    viewer TEXT NOT NULL,
    PRIMARY KEY (owner, viewer)
);
