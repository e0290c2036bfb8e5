//! Scratch PostgreSQL databases for tests: one per test, made on the server that
//! `BSS_TEST_DATABASE_URL` names (default `postgres://root@127.0.0.1:5432/postgres`, where the user
//! may create databases) and dropped when the test ends, even by a panic; databases an aborted
//! run left behind are dropped after six hours. When no server answers, the test fails saying
//! how to point it at one: it never passes silently.

use std::time::Duration;

/// The variable naming the server the tests may create databases on.
pub const TEST_DATABASE_VARIABLE: &str = "BSS_TEST_DATABASE_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";
/// Scratch databases older than this are an aborted run's, and dropped.
const LEFT_BEHIND_SECS: i64 = 6 * 3600;

pub struct ScratchDb {
    admin: String,
    name: String,
    /// Where the scratch database is.
    pub url: String,
}

fn admin_url() -> String {
    std::env::var(TEST_DATABASE_VARIABLE).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

/// `admin` with its database replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    match url::Url::parse(admin) {
        Ok(mut url) => {
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        Err(_) => {
            let kept: Vec<&str> = admin
                .split_whitespace()
                .filter(|pair| !pair.starts_with("dbname="))
                .collect();
            format!("{} dbname={name}", kept.join(" "))
        }
    }
}

/// Runs `sql` on the admin connection, on a runtime of its own (callers may be inside one).
fn admin_query(admin: &str, sql: &str) -> Result<Vec<String>, String> {
    let (admin, sql) = (admin.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let connect = tokio_postgres::connect(&admin, tokio_postgres::NoTls);
            let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connect)
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let rows = client.simple_query(&sql).await.map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                    _ => None,
                })
                .collect())
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the admin connection's thread panicked".into()))
}

impl ScratchDb {
    /// A new, empty database; panics, saying how to fix it, when no server answers.
    pub fn create() -> ScratchDb {
        let admin = admin_url();
        let now = crate::time::now_unix();
        let old = admin_query(
            &admin,
            "SELECT datname FROM pg_database WHERE datname LIKE 'bss\\_test\\_%'",
        )
        .unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL tests need a server where they may create databases, and {admin} did not answer ({e}). Start PostgreSQL, or set {TEST_DATABASE_VARIABLE} to such a server, e.g. {TEST_DATABASE_VARIABLE}=postgres://postgres@127.0.0.1:5432/postgres cargo test"
            )
        });
        for name in old {
            let made: Option<i64> = name.split('_').nth(2).and_then(|t| t.parse().ok());
            if made.is_some_and(|made| now - made > LEFT_BEHIND_SECS) {
                let _ = admin_query(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
            }
        }
        let name = format!(
            "bss_test_{now}_{}_{}",
            std::process::id(),
            crate::store::secrets::random_token(6)
                .to_ascii_lowercase()
                .replace(['-', '_'], "x")
        );
        admin_query(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"),
        )
        .unwrap_or_else(|e| panic!("the scratch database {name} could not be made on {admin}: {e}"));
        ScratchDb {
            url: with_database(&admin, &name),
            admin,
            name,
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = admin_query(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
