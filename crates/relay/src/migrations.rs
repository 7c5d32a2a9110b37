//! Migrations embedded in the binary (no files needed at run time, no `sqlx` macros).

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::{
    error::BoxDynError,
    migrate::{Migration, MigrationSource, MigrationType},
};

/// Which back end's migration set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Embedded {
    Sqlite,
    Postgres,
}

const SQLITE: &[(i64, &str, &str)] = &[(
    1,
    "mailboxes",
    include_str!("../migrations/sqlite/0001_mailboxes.sql"),
)];
const POSTGRES: &[(i64, &str, &str)] = &[(
    1,
    "mailboxes",
    include_str!("../migrations/postgres/0001_mailboxes.sql"),
)];

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let set = match self {
            Embedded::Sqlite => SQLITE,
            Embedded::Postgres => POSTGRES,
        };
        Box::pin(async move {
            Ok(set
                .iter()
                .map(|(version, desc, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*desc),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}
