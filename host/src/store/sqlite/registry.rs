//! [`RegistryStore`] on SQLite: connector versions, stored manifests, refused components.

use super::*;

impl RegistryStore for SqliteStore {
    fn record_connector_version(&self, v: &ConnectorVersion) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO connector_versions (name, version, content_hash, source, manifest, loaded_at, withdrawn, signer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)
                 ON CONFLICT (name, version) DO UPDATE SET
                     -- The first manifest stored for a build stays: a second process reading a
                     -- flapping component at the same moment cannot replace it.
                     manifest = CASE WHEN content_hash = ?3 THEN manifest ELSE ?5 END,
                     content_hash = ?3, source = ?4, loaded_at = ?6, signer = ?7",
                params![v.name, v.version, v.content_hash, v.source, v.manifest, v.loaded_at, v.signer],
            )
            .map_err(db)?;
        Ok(())
    }

    fn component_refusal(&self, content_hash: &str) -> StoreResult<Option<String>> {
        self.lock()
            .query_row(
                "SELECT reason FROM refused_components WHERE content_hash = ?1",
                [content_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
    }

    fn record_component_refusal(&self, content_hash: &str, reason: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO refused_components (content_hash, reason, refused_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (content_hash) DO UPDATE SET reason = ?2, refused_at = ?3",
                params![content_hash, reason, crate::time::now_rfc3339()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn connector_versions(&self) -> StoreResult<Vec<ConnectorVersion>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT name, version, content_hash, source, manifest, loaded_at, withdrawn, signer FROM connector_versions ORDER BY name, version")
            .map_err(db)?;
        let rows = statement
            .query_map([], |row| {
                Ok(ConnectorVersion {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    content_hash: row.get(2)?,
                    source: row.get(3)?,
                    manifest: row.get(4)?,
                    loaded_at: row.get(5)?,
                    withdrawn: row.get(6)?,
                    signer: row.get(7)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn set_withdrawn(&self, name: &str, version: &str, withdrawn: bool) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE connector_versions SET withdrawn = ?3 WHERE name = ?1 AND version = ?2",
                params![name, version, withdrawn],
            )
            .map_err(db)?;
        Ok(())
    }
}
