//! `activate`: checks the settings against ConnectWise — the site and company id (through
//! `/login/companyinfo`), the codebase, the keys and client id (an authenticated call), and that
//! every id-valued server variable names a record that exists — with one error per problem key.

use serde_json::Value;

use crate::choices::table_path;
use crate::client::Client;
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
    match info.status {
        200..=299 => {
            let body: Value = serde_json::from_slice(&info.body).unwrap_or(Value::Null);
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
    Ok(format!(
        "Connected to ConnectWise company {company_name} at {} ({})",
        settings.site, settings.codebase
    ))
}
