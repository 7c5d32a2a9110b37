//! The SQLite layout (`docs/client-store.md`).
//!
//! ```text
//! PRAGMA application_id = 0x45324543 ("E2EC")   tells our stores from other SQLite files
//! e2ee_meta  (name TEXT PRIMARY KEY, value BLOB)            format, salt, key_check (plain)
//! e2ee_items (space INTEGER, blinded BLOB, sealed BLOB, PRIMARY KEY (space, blinded))
//! ```

/// `PRAGMA application_id` of every store ("E2EC").
pub(crate) const APPLICATION_ID: i32 = 0x4532_4543;

/// Creates the tables of a new store (inside the creating transaction).
pub(crate) const CREATE: &str = "
CREATE TABLE e2ee_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE e2ee_items (
    space   INTEGER NOT NULL,
    blinded BLOB NOT NULL,
    sealed  BLOB NOT NULL,
    PRIMARY KEY (space, blinded)
) WITHOUT ROWID;
";

/// Metadata names.
pub(crate) const META_FORMAT: &str = "format";
pub(crate) const META_SALT: &str = "salt";
pub(crate) const META_KEY_CHECK: &str = "key_check";
