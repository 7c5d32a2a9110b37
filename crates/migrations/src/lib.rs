//! SQL migrations embedded in the binary: no migration files at run time and no `sqlx`
//! macros (which would need a database, or prepared query data, at build time). Each server
//! lists its migrations as a `&'static [EmbeddedMigration]` of `include_str!`s and hands the
//! set to [`migrator`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::{borrow::Cow, future::Future, pin::Pin};

use sqlx::{
    error::BoxDynError,
    migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator},
};

/// One migration compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedMigration {
    /// Its version; applied in ascending order, each once.
    pub version: i64,
    /// What it does (stored beside the version).
    pub description: &'static str,
    /// The SQL, usually `include_str!` of a file under `migrations/`.
    pub sql: &'static str,
}

/// A set of embedded migrations as a [`MigrationSource`].
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [EmbeddedMigration]);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            let mut migrations: Vec<Migration> = self
                .0
                .iter()
                .map(|m| {
                    Migration::new(
                        m.version,
                        Cow::Borrowed(m.description),
                        MigrationType::Simple,
                        Cow::Borrowed(m.sql),
                        false,
                    )
                })
                .collect();
            // The migrator applies them in this order.
            migrations.sort_by_key(|m| m.version);
            Ok(migrations)
        })
    }
}

/// A migrator for `set`.
pub async fn migrator(set: &'static [EmbeddedMigration]) -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(set)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &[EmbeddedMigration] = &[
        EmbeddedMigration {
            version: 2,
            description: "second",
            sql: "SELECT 2",
        },
        EmbeddedMigration {
            version: 1,
            description: "first",
            sql: "SELECT 1",
        },
    ];

    #[tokio::test]
    async fn a_set_resolves_in_version_order_with_its_sql() {
        let migrator = migrator(SET).await.unwrap();
        let found: Vec<_> = migrator
            .iter()
            .map(|m| (m.version, m.description.to_string(), m.sql.to_string()))
            .collect();
        assert_eq!(
            found,
            [
                (1, "first".to_owned(), "SELECT 1".to_owned()),
                (2, "second".to_owned(), "SELECT 2".to_owned()),
            ]
        );
    }
}
