//! [`RegistryStore`] on PostgreSQL: connector versions, stored manifests, refused components.

use super::super::{ConnectorVersion, RegistryStore, StoreResult};
use super::{PgStore, db};

impl RegistryStore for PgStore {
    fn record_connector_version(&self, v: &ConnectorVersion) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "INSERT INTO connector_versions (name, version, content_hash, source, manifest, loaded_at, withdrawn, signer)
                     VALUES ($1, $2, $3, $4, $5, $6, false, $7)
                     ON CONFLICT (name, version) DO UPDATE SET
                         -- The first manifest stored for a build stays: a second process reading
                         -- a flapping component at the same moment cannot replace it.
                         manifest = CASE WHEN connector_versions.content_hash = $3
                             THEN connector_versions.manifest ELSE $5 END,
                         content_hash = $3, source = $4, loaded_at = $6, signer = $7",
                    &[&v.name, &v.version, &v.content_hash, &v.source, &v.manifest, &v.loaded_at, &v.signer],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>> {
        self.run(async |client| {
            let rows = client
                .query(
                    "SELECT name, version, content_hash, source, manifest, loaded_at, withdrawn, signer
                     FROM connector_versions ORDER BY name, version",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|row| ConnectorVersion {
                    name: row.get(0),
                    version: row.get(1),
                    content_hash: row.get(2),
                    source: row.get(3),
                    manifest: row.get(4),
                    loaded_at: row.get(5),
                    withdrawn: row.get(6),
                    signer: row.get(7),
                })
                .collect())
        })
    }

    fn component_refusal(&self, content_hash: &str) -> StoreResult<Option<String>> {
        self.run(async |client| {
            Ok(client
                .query_opt(
                    "SELECT reason FROM refused_components WHERE content_hash = $1",
                    &[&content_hash],
                )
                .await
                .map_err(db)?
                .map(|row| row.get(0)))
        })
    }

    fn record_component_refusal(&self, content_hash: &str, reason: &str) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "INSERT INTO refused_components (content_hash, reason, refused_at) VALUES ($1, $2, $3)
                     ON CONFLICT (content_hash) DO UPDATE SET reason = $2, refused_at = $3",
                    &[&content_hash, &reason, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn set_withdrawn(&self, name: &str, version: &str, withdrawn: bool) -> StoreResult<()> {
        self.run(async |client| {
            client
                .execute(
                    "UPDATE connector_versions SET withdrawn = $3 WHERE name = $1 AND version = $2",
                    &[&name, &version, &withdrawn],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn store_component(&self, content_hash: &str, bytes: &[u8]) -> StoreResult<()> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.run(async |client| {
            let transaction = client.transaction().await.map_err(db)?;
            let added = transaction
                .execute(
                    "INSERT INTO connector_components (content_hash, bytes, size, stored_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&content_hash, &bytes, &size, &crate::time::now_rfc3339()],
                )
                .await
                .map_err(db)?;
            if added > 0 {
                transaction
                    .execute(
                        "SELECT pg_notify($1, $2)",
                        &[&super::COMPONENTS_CHANNEL, &content_hash],
                    )
                    .await
                    .map_err(db)?;
            }
            transaction.commit().await.map_err(db)
        })
    }

    fn component(&self, content_hash: &str) -> StoreResult<Option<Vec<u8>>> {
        self.run(async |client| {
            Ok(client
                .query_opt(
                    "SELECT bytes FROM connector_components WHERE content_hash = $1",
                    &[&content_hash],
                )
                .await
                .map_err(db)?
                .map(|row| row.get(0)))
        })
    }

    fn component_wakeup(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(self.listener().components)
    }
}
