//! Where the store lives, chosen once at start: the SQLite file in the data folder (the default,
//! for one machine) or a PostgreSQL database shared by a fleet of workers (`--database` or
//! `BSS_HOST_DATABASE`).
//!
//! | `--database`                            | store                                   |
//! |-----------------------------------------|-----------------------------------------|
//! | absent                                  | `DATA/bss.db` (SQLite, created if new)  |
//! | `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?…]` or `postgresql://…` | that database (migrated on open) |
//!
//! Anything else is refused with the accepted forms, never read as a file name. The secret key
//! is not in the database either way: every worker reads it from its data folder's key file or
//! `BSS_HOST_KEY`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{Store, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    SqliteFile(PathBuf),
    Postgres(String),
}

impl StoreLocation {
    /// The store `database` names, or the data folder's SQLite file when it is absent.
    pub fn parse(database: Option<&str>, data: &Path) -> Result<StoreLocation, String> {
        let Some(database) = database.map(str::trim).filter(|d| !d.is_empty()) else {
            return Ok(StoreLocation::SqliteFile(data.join("bss.db")));
        };
        let scheme = database.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("postgres" | "postgresql") => Ok(StoreLocation::Postgres(database.to_string())),
            _ => Err(format!(
                "--database {:?} is not a PostgreSQL URL; write postgres://USER@HOST:PORT/DATABASE (a password, if any, as postgres://USER:PASSWORD@…), or leave --database out to use {} in the data folder",
                super::postgres::redact(database),
                "bss.db"
            )),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }

    /// The location for messages: a file path, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            StoreLocation::SqliteFile(path) => path.display().to_string(),
            StoreLocation::Postgres(url) => super::postgres::redact(url),
        }
    }

    /// Opens the store, bringing its schema up to date.
    pub fn open(&self) -> StoreResult<Arc<dyn Store>> {
        Ok(match self {
            StoreLocation::SqliteFile(path) => Arc::new(SqliteStore::open(path)?),
            StoreLocation::Postgres(url) => Arc::new(PgStore::open(url)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_folder_file_unless_a_postgres_url_is_given() {
        let data = Path::new("/srv/bss");
        assert_eq!(
            StoreLocation::parse(None, data).unwrap(),
            StoreLocation::SqliteFile(data.join("bss.db"))
        );
        assert_eq!(
            StoreLocation::parse(Some("  "), data).unwrap(),
            StoreLocation::SqliteFile(data.join("bss.db"))
        );
        for url in [
            "postgres://bss@db:5432/bss",
            "postgresql://bss:pw@db/bss?sslmode=disable",
        ] {
            assert_eq!(
                StoreLocation::parse(Some(url), data).unwrap(),
                StoreLocation::Postgres(url.into())
            );
        }
        let refused = StoreLocation::parse(Some("mysql://bss:s3cret@db/bss"), data).unwrap_err();
        assert!(
            refused.contains("postgres://USER@HOST:PORT/DATABASE"),
            "{refused}"
        );
        assert!(!refused.contains("s3cret"), "{refused}");
        assert!(StoreLocation::parse(Some("bss.db"), data).is_err());
        assert_eq!(
            StoreLocation::Postgres("postgres://bss:pw@db/bss".into()).shown(),
            "postgres://bss:***@db/bss"
        );
    }
}
