//! The relay's migrations, embedded in the binary (one set per back end).

use e2ee_migrations::EmbeddedMigration;

/// SQLite (the embedded default).
pub(crate) const SQLITE: &[EmbeddedMigration] = &[EmbeddedMigration {
    version: 1,
    description: "mailboxes",
    sql: include_str!("../migrations/sqlite/0001_mailboxes.sql"),
}];

/// PostgreSQL (scale-out).
pub(crate) const POSTGRES: &[EmbeddedMigration] = &[EmbeddedMigration {
    version: 1,
    description: "mailboxes",
    sql: include_str!("../migrations/postgres/0001_mailboxes.sql"),
}];
