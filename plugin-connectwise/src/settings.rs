//! The instance's settings, read once per call into typed values; a value that cannot be used
//! becomes an `invalid-settings` error against its key.

use crate::host::Host;
use crate::manifest::keys;
use crate::types::{ConnectorError, FieldError};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `scheme://host[:port]` of the ConnectWise site.
    pub site: String,
    pub company_id: String,
    pub codebase: String,
    pub import_account_status: Option<i64>,
    pub product_category: Option<i64>,
    pub product_subcategory: Option<i64>,
    pub product_unit_of_measure: Option<i64>,
    pub product_billable_option: String,
    pub sales_representative: Option<i64>,
    pub credit_card_method: Option<String>,
    pub bank_deposit_method: Option<String>,
    pub subscription_name_field: Option<i64>,
    pub subscription_id_field: Option<i64>,
}

/// `api-na.myconnectwise.net` → `https://api-na.myconnectwise.net`; any path is dropped.
pub fn site_of(url: &str) -> Result<String, String> {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), url),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{url:?} must be an http or https address, e.g. api-na.myconnectwise.net"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
        return Err(format!(
            "{url:?} is not a site address; give it as api-na.myconnectwise.net"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}

impl Settings {
    pub fn read(host: &dyn Host) -> Result<Settings, ConnectorError> {
        let mut problems = Vec::new();
        let text = |key: &str| {
            host.setting(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str, problems: &mut Vec<FieldError>| {
            text(key).unwrap_or_else(|| {
                problems.push(FieldError {
                    field: key.to_string(),
                    message: "is required".to_string(),
                });
                String::new()
            })
        };
        let url = required(keys::URL, &mut problems);
        let company_id = required(keys::COMPANY_ID, &mut problems);
        let site = if url.is_empty() {
            String::new()
        } else {
            site_of(&url).unwrap_or_else(|message| {
                problems.push(FieldError {
                    field: keys::URL.to_string(),
                    message,
                });
                String::new()
            })
        };
        let mut id = |key: &str| match text(key) {
            None => None,
            Some(value) => match value.parse::<i64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    problems.push(FieldError {
                        field: key.to_string(),
                        message: format!("{value:?} is not a ConnectWise id (a whole number)"),
                    });
                    None
                }
            },
        };
        let settings = Settings {
            site,
            company_id,
            codebase: text(keys::CODEBASE).unwrap_or_else(|| "v4_6_release".to_string()),
            import_account_status: id(keys::IMPORT_ACCOUNT_STATUS),
            product_category: id(keys::PRODUCT_CATEGORY),
            product_subcategory: id(keys::PRODUCT_SUBCATEGORY),
            product_unit_of_measure: id(keys::PRODUCT_UNIT_OF_MEASURE),
            sales_representative: id(keys::SALES_REPRESENTATIVE),
            subscription_name_field: id(keys::SUBSCRIPTION_NAME_FIELD),
            subscription_id_field: id(keys::SUBSCRIPTION_ID_FIELD),
            product_billable_option: text(keys::PRODUCT_BILLABLE_OPTION)
                .unwrap_or_else(|| "Billable".to_string()),
            credit_card_method: text(keys::CREDIT_CARD_METHOD),
            bank_deposit_method: text(keys::BANK_DEPOSIT_METHOD),
        };
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConnectorError::InvalidSettings(problems))
        }
    }

    /// `https://site/v4_6_release/apis/3.0`
    pub fn api_base(&self) -> String {
        format!("{}/{}/apis/3.0", self.site, self.codebase.trim_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_accepts_the_forms_admins_type() {
        assert_eq!(
            site_of("api-na.myconnectwise.net").unwrap(),
            "https://api-na.myconnectwise.net"
        );
        assert_eq!(
            site_of("https://x.example.com/v4_6_release/apis/3.0/").unwrap(),
            "https://x.example.com"
        );
        assert_eq!(
            site_of("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(site_of("ftp://x").is_err());
        assert!(site_of("https://").is_err());
    }
}
