//! `activate`: checks the settings against ConnectWise — the site and company id (through
//! `/login/companyinfo`), the codebase, the keys and client id (an authenticated call), and that
//! every id-valued server variable names a record that exists — with one error per problem key.
//! Warnings, which do not fail the check, end the summary: a server older than the API version the
//! connector pins (its `VersionCode`, or `system/info`'s `version`), and a variable naming a record
//! that is inactive in ConnectWise.

use serde_json::Value;

use crate::choices::table_path;
use crate::client::{API_VERSION, Client};
use crate::host::{Host, Method};
use crate::manifest::{keys, tables};
use crate::settings::Settings;
use crate::types::{ConnectorError, FieldError};

/// Id-valued server variables and the table their id must exist in.
const ID_VARIABLES: &[(&str, &str)] = &[
    (keys::IMPORT_ACCOUNT_STATUS, tables::COMPANY_STATUSES),
    (keys::PRODUCT_CATEGORY, tables::PRODUCT_CATEGORIES),
    (keys::PRODUCT_SUBCATEGORY, tables::PRODUCT_SUBCATEGORIES),
    (keys::PRODUCT_UNIT_OF_MEASURE, tables::UNITS_OF_MEASURE),
    (keys::SALES_REPRESENTATIVE, tables::MEMBERS),
    (
        keys::SUBSCRIPTION_NAME_FIELD,
        tables::ADDITION_CUSTOM_FIELDS,
    ),
    (keys::SUBSCRIPTION_ID_FIELD, tables::ADDITION_CUSTOM_FIELDS),
];

fn problem(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        message,
    }
}

pub fn activate(host: &dyn Host) -> Result<String, ConnectorError> {
    let settings = Settings::read(host)?;
    let client = Client::new(host, &settings);
    let mut problems = Vec::new();

    let info_url = format!(
        "{}/login/companyinfo/{}",
        settings.site,
        crate::client::encode(&settings.company_id)
    );
    let info = client
        .send_raw(Method::Get, info_url, None, &[])
        .map_err(|error| match error {
            ConnectorError::Transient(message) => ConnectorError::InvalidSettings(vec![problem(
                keys::URL,
                format!("cannot reach ConnectWise at {}: {message}", settings.site),
            )]),
            other => other,
        })?;
    let mut company_name = settings.company_id.clone();
    let mut server_version;
    let mut warnings = Vec::new();
    match info.status {
        200..=299 => {
            let body: Value = serde_json::from_slice(&info.body).unwrap_or(Value::Null);
            server_version = body
                .get("VersionCode")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(name) = body.get("CompanyName").and_then(Value::as_str) {
                company_name = name.to_string();
            }
            if let Some(codebase) = body.get("Codebase").and_then(Value::as_str) {
                let codebase = codebase.trim_matches('/');
                if !codebase.is_empty() && codebase != settings.codebase.trim_matches('/') {
                    problems.push(problem(
                        keys::CODEBASE,
                        format!(
                            "this site serves codebase {codebase}, not {}; set it to {codebase}",
                            settings.codebase
                        ),
                    ));
                }
            }
        }
        404 => {
            return Err(ConnectorError::InvalidSettings(vec![problem(
                keys::COMPANY_ID,
                format!(
                    "ConnectWise at {} knows no company {:?}; check the company id",
                    settings.site, settings.company_id
                ),
            )]));
        }
        _ => {
            return Err(client
                .check(&info)
                .err()
                .unwrap_or_else(|| ConnectorError::Internal("unreachable".into())));
        }
    }
    if !problems.is_empty() {
        return Err(ConnectorError::InvalidSettings(problems));
    }

    match client.get("company/companies/statuses?pageSize=1") {
        Ok(_) => {}
        Err(ConnectorError::Unauthorized(message)) | Err(ConnectorError::NotFound(message)) => {
            let field = if message.contains("clientId")
                || message.contains("client id") && message.contains("missing")
            {
                keys::CLIENT_ID
            } else {
                keys::PRIVATE_KEY
            };
            return Err(ConnectorError::InvalidSettings(vec![problem(
                field,
                format!(
                    "ConnectWise refused these keys for company {:?}: {message}",
                    settings.company_id
                ),
            )]));
        }
        Err(ConnectorError::Rejected(fields))
            if fields.iter().any(|f| f.message.contains("clientId")) =>
        {
            return Err(ConnectorError::InvalidSettings(vec![problem(
                keys::CLIENT_ID,
                "ConnectWise refused the client id; use the GUID of your integration from developer.connectwise.com".into(),
            )]));
        }
        Err(ConnectorError::Forbidden(message)) => {
            return Err(ConnectorError::InvalidSettings(vec![problem(
                keys::PUBLIC_KEY,
                message,
            )]));
        }
        Err(other) => return Err(other),
    }

    let ids = [
        (keys::IMPORT_ACCOUNT_STATUS, settings.import_account_status),
        (keys::PRODUCT_CATEGORY, settings.product_category),
        (keys::PRODUCT_SUBCATEGORY, settings.product_subcategory),
        (
            keys::PRODUCT_UNIT_OF_MEASURE,
            settings.product_unit_of_measure,
        ),
        (keys::SALES_REPRESENTATIVE, settings.sales_representative),
        (
            keys::SUBSCRIPTION_NAME_FIELD,
            settings.subscription_name_field,
        ),
        (keys::SUBSCRIPTION_ID_FIELD, settings.subscription_id_field),
    ];
    for (key, id) in ids {
        let Some(id) = id else { continue };
        let table = ID_VARIABLES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| *t)
            .expect("every id variable has a table");
        let (path, what) = table_path(table).expect("every table has a path");
        match client.get(&format!("{}/{id}", path.trim_end_matches('/'))) {
            Ok(record) if crate::choices::inactive(&record) => warnings.push(format!(
                "{key} names {what} {id} ({}), which is inactive in ConnectWise",
                crate::choices::label(&record)
            )),
            Ok(_) => {}
            Err(ConnectorError::NotFound(_)) => problems.push(problem(
                key,
                format!("ConnectWise has no {what} with id {id}; pick one from its choices"),
            )),
            Err(other) => return Err(other),
        }
    }
    if !problems.is_empty() {
        return Err(ConnectorError::InvalidSettings(problems));
    }
    if server_version.is_none() {
        // Older sites leave VersionCode out of companyinfo; system/info says it too.
        server_version = client.get("system/info").ok().and_then(|info| {
            info.get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    }
    match server_version.as_deref().map(|v| (v, version_of(v))) {
        Some((shown, Some(server))) if Some(server) < version_of(API_VERSION) => {
            warnings.push(format!(
                "ConnectWise runs version {shown}, older than the API version {API_VERSION} this connector pins; fields added since may be missing or refused"
            ))
        }
        Some((shown, None)) => warnings.push(format!(
            "ConnectWise reports version {shown:?}, which the connector cannot compare with the API version {API_VERSION} it pins"
        )),
        None => warnings.push(format!(
            "ConnectWise did not say its version; the connector pins API version {API_VERSION}"
        )),
        Some(_) => {}
    }
    let mut summary = format!(
        "Connected to ConnectWise company {company_name} at {} ({}{})",
        settings.site,
        settings.codebase,
        server_version
            .as_deref()
            .map(|v| format!(", version {v}"))
            .unwrap_or_default()
    );
    for warning in warnings {
        summary.push_str(&format!("; warning: {warning}"));
    }
    Ok(summary)
}

/// `(year, release)` of a ConnectWise version: `v2025.1`, `2026.4`, `v2025.1.96458`.
pub fn version_of(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let mut parts = text.split('.');
    let year = parts.next()?.trim().parse().ok()?;
    let release = parts.next()?.trim().parse().ok()?;
    Some((year, release))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_year_then_release() {
        assert_eq!(version_of("v2025.1"), Some((2025, 1)));
        assert_eq!(version_of("v2026.4.100001"), Some((2026, 4)));
        assert_eq!(version_of("2026.10"), Some((2026, 10)));
        assert_eq!(version_of("latest"), None);
        assert!(version_of("v2025.3") < version_of(API_VERSION));
        assert!(version_of("v2026.10") > version_of(API_VERSION));
    }
}
