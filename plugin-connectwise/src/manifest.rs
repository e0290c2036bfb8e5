//! What the ConnectWise connector declares: every server variable the BSS documentation names, the
//! sync options and lookups of every entity, and how ConnectWise authenticates (HTTP Basic with
//! `{company-id}+{public-key}` / `{private-key}` and the `clientId` header, both added by the host).

use crate::exports::{
    Auth, AuthScheme, Choice, ConnectorManifest, HeaderTemplate, Lookup, ServerVariable,
    SyncOption, VariableKind,
};
use crate::types::{Direction, Entity, Operations};

pub const NAME: &str = "connectwise";
/// The connector's version, which the host shows and logs: 0.2.0 added `fetch`, `subscribe` and
/// `remove` (contract `bss:integration@1.3.0`). Kept here rather than as the crate's version, which
/// the workspace's lock file records.
pub const VERSION: &str = "0.2.0";

/// Setting keys.
pub mod keys {
    pub const URL: &str = "url";
    pub const COMPANY_ID: &str = "company-id";
    pub const PUBLIC_KEY: &str = "public-key";
    pub const PRIVATE_KEY: &str = "private-key";
    pub const CLIENT_ID: &str = "client-id";
    pub const CODEBASE: &str = "codebase";
    pub const IMPORT_ACCOUNT_STATUS: &str = "import-account-id";
    pub const PRODUCT_CATEGORY: &str = "product-category";
    pub const PRODUCT_SUBCATEGORY: &str = "product-subcategory";
    pub const PRODUCT_UNIT_OF_MEASURE: &str = "product-unit-of-measure";
    pub const PRODUCT_BILLABLE_OPTION: &str = "product-billable-option";
    pub const SALES_REPRESENTATIVE: &str = "sales-representative";
    pub const CREDIT_CARD_METHOD: &str = "credit-card-method-id";
    pub const BANK_DEPOSIT_METHOD: &str = "bank-deposit-method-id";
    pub const SUBSCRIPTION_NAME_FIELD: &str = "subscription-name-field-id";
    pub const SUBSCRIPTION_ID_FIELD: &str = "subscription-id-field-id";
}

/// Lookup keys.
pub mod lookups {
    pub const ACCOUNT_TYPE: &str = "account-type";
    pub const CURRENCY: &str = "currency";
    pub const INVOICE_STAGE: &str = "invoice-stage";
    pub const INVOICE_TYPE: &str = "invoice-type";
    pub const PRODUCT_TYPE: &str = "product-type";
    pub const UNIT_TYPE: &str = "unit-type";
    pub const ORDER_STAGE: &str = "order-stage";
    pub const SUBSCRIPTION_UNITS: &str = "subscription-units";
}

/// `lookup-choices` keys: the ConnectWise setup tables values come from.
pub mod tables {
    pub const COMPANY_STATUSES: &str = "company-statuses";
    pub const COMPANY_TYPES: &str = "company-types";
    pub const CURRENCIES: &str = "currencies";
    pub const PRODUCT_CATEGORIES: &str = "product-categories";
    pub const PRODUCT_SUBCATEGORIES: &str = "product-subcategories";
    pub const PRODUCT_TYPES: &str = "product-types";
    pub const UNITS_OF_MEASURE: &str = "units-of-measure";
    pub const BILLING_STATUSES: &str = "billing-statuses";
    pub const INVOICE_TYPES: &str = "invoice-types";
    pub const ORDER_STATUSES: &str = "order-statuses";
    pub const MEMBERS: &str = "members";
    pub const AGREEMENT_TYPES: &str = "agreement-types";
    pub const ADDITION_CUSTOM_FIELDS: &str = "addition-custom-fields";
}

/// The values of ConnectWise's invoice `type` enum.
pub const INVOICE_TYPE_VALUES: &[&str] = &[
    "Agreement",
    "CreditMemo",
    "DownPayment",
    "Miscellaneous",
    "Progress",
    "Standard",
    "Consolidated",
];

/// The values of `billableOption` on product items.
pub const BILLABLE_OPTIONS: &[&str] = &["Billable", "DoNotBill", "NoCharge"];

struct Var {
    key: &'static str,
    label: &'static str,
    purpose: &'static str,
    description: &'static str,
    kind: VariableKind,
    required: bool,
    default: Option<&'static str>,
    table: Option<&'static str>,
}

impl Var {
    fn build(self) -> ServerVariable {
        let choices = if self.key == keys::PRODUCT_BILLABLE_OPTION {
            BILLABLE_OPTIONS
                .iter()
                .map(|v| Choice {
                    value: v.to_string(),
                    label: v.to_string(),
                })
                .collect()
        } else {
            Vec::new()
        };
        ServerVariable {
            key: self.key.to_string(),
            label: self.label.to_string(),
            purpose: self.purpose.to_string(),
            description: self.description.to_string(),
            kind: self.kind,
            choices,
            required: self.required,
            // Payment methods must be known before payments are pushed (BSS documentation).
            required_when: if [keys::CREDIT_CARD_METHOD, keys::BANK_DEPOSIT_METHOD]
                .contains(&self.key)
            {
                vec![(Entity::Payment, Direction::Push)]
            } else {
                Vec::new()
            },
            default_value: self.default.map(str::to_string),
            choices_from: self.table.map(str::to_string),
        }
    }
}

fn server_variables() -> Vec<ServerVariable> {
    use VariableKind::*;
    let vars = [
        Var {
            key: keys::URL,
            label: "ConnectWise URL",
            purpose: "The ConnectWise site the connector talks to.",
            description: "The site of your ConnectWise Manage, as in your browser's address bar: e.g. api-na.myconnectwise.net (https is assumed) or https://staging.connectwisedev.com.",
            kind: Url,
            required: true,
            default: None,
            table: None,
        },
        Var {
            key: keys::COMPANY_ID,
            label: "Company ID",
            purpose: "Identifies your company to ConnectWise; part of the API user name.",
            description: "The company id you log in with, e.g. mycompany.",
            kind: Text,
            required: true,
            default: None,
            table: None,
        },
        Var {
            key: keys::PUBLIC_KEY,
            label: "Public key",
            purpose: "The API member's public key; part of the API user name.",
            description: "From System > Members > API Members > API Keys, e.g. Xr7ZqNcH3pL0sW2d.",
            kind: Text,
            required: true,
            default: None,
            table: None,
        },
        Var {
            key: keys::PRIVATE_KEY,
            label: "Private key",
            purpose: "The API member's private key: the API password.",
            description: "Shown once when the API key is created, e.g. 9fK2mQ7xV1bT4yLc. Stored encrypted; never shown again.",
            kind: Secret,
            required: true,
            default: None,
            table: None,
        },
        Var {
            key: keys::CLIENT_ID,
            label: "Client Id",
            purpose: "Identifies this integration to ConnectWise (the clientId header on every call).",
            description: "A GUID from developer.connectwise.com, e.g. 1f3c0c5e-2a4b-4d8e-9f10-7a6b5c4d3e2f.",
            kind: Text,
            required: true,
            default: None,
            table: None,
        },
        Var {
            key: keys::CODEBASE,
            label: "Codebase",
            purpose: "The API path segment of your ConnectWise version.",
            description: "Almost always v4_6_release; /login/companyinfo/{company} shows yours.",
            kind: Text,
            required: false,
            default: Some("v4_6_release"),
            table: None,
        },
        Var {
            key: keys::IMPORT_ACCOUNT_STATUS,
            label: "Import Account Id",
            purpose: "The company status given to accounts the BSS creates in ConnectWise.",
            description: "A company status id, e.g. 1 (Active).",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::COMPANY_STATUSES),
        },
        Var {
            key: keys::PRODUCT_CATEGORY,
            label: "Product Category",
            purpose: "The category of catalog items when no Unit Type mapping applies.",
            description: "A procurement category id, e.g. 18 (Hardware).",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::PRODUCT_CATEGORIES),
        },
        Var {
            key: keys::PRODUCT_SUBCATEGORY,
            label: "Product SubCategory",
            purpose: "The subcategory of catalog items when no Unit Type mapping applies.",
            description: "A procurement subcategory id, e.g. 30 (Services).",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::PRODUCT_SUBCATEGORIES),
        },
        Var {
            key: keys::PRODUCT_UNIT_OF_MEASURE,
            label: "Product Unit of measure",
            purpose: "The unit of measure of every catalog item the BSS creates or updates.",
            description: "A unit of measure id, e.g. 1 (Each). It applies to every product, whether or not a Unit Type mapping applies (that lookup chooses the subcategory, not the unit). Left empty, ConnectWise keeps its own unit.",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::UNITS_OF_MEASURE),
        },
        Var {
            key: keys::PRODUCT_BILLABLE_OPTION,
            label: "Product Billable Option",
            purpose: "How invoice and order lines are billed (billableOption of each product item), and how subscriptions are billed when the BSS subscription names no bill-customer option.",
            description: "Billable, DoNotBill or NoCharge.",
            kind: Choice,
            required: false,
            default: Some("Billable"),
            table: None,
        },
        Var {
            key: keys::SALES_REPRESENTATIVE,
            label: "Sales Representative",
            purpose: "The member set as sales representative on sales orders.",
            description: "A member id, e.g. 176 (the API member or an account manager).",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::MEMBERS),
        },
        Var {
            key: keys::CREDIT_CARD_METHOD,
            label: "Credit card method id",
            purpose: "BSS payments of this method are sent to ConnectWise as credit card payments.",
            description: "A BSS payment-method id, e.g. 3. Required once payments are pushed; payments of other methods are not synchronised.",
            kind: Text,
            required: false,
            default: None,
            table: None,
        },
        Var {
            key: keys::BANK_DEPOSIT_METHOD,
            label: "Bank deposit method id",
            purpose: "BSS payments of this method are sent to ConnectWise as bank deposits.",
            description: "A BSS payment-method id, e.g. 5. Required once payments are pushed; payments of other methods are not synchronised.",
            kind: Text,
            required: false,
            default: None,
            table: None,
        },
        Var {
            key: keys::SUBSCRIPTION_NAME_FIELD,
            label: "Subscription Name custom field id",
            purpose: "The agreement-addition custom field that carries the BSS subscription's name.",
            description: "A custom field id, e.g. 12.",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::ADDITION_CUSTOM_FIELDS),
        },
        Var {
            key: keys::SUBSCRIPTION_ID_FIELD,
            label: "Subscription ID custom field id",
            purpose: "The agreement-addition custom field that carries the BSS subscription's id.",
            description: "A custom field id, e.g. 13.",
            kind: Integer,
            required: false,
            default: None,
            table: Some(tables::ADDITION_CUSTOM_FIELDS),
        },
    ];
    vars.into_iter().map(Var::build).collect()
}

fn sync_options() -> Vec<SyncOption> {
    let both = Operations::CREATE | Operations::UPDATE;
    // Delete: pull reports companies and contacts deleted in ConnectWise; push removes them
    // (`remove`: a company is deactivated, a contact deleted).
    let all = both | Operations::DELETE;
    let mut options = Vec::new();
    for entity in [Entity::Account, Entity::Contact] {
        options.push(SyncOption {
            entity,
            direction: Direction::Push,
            operations: all,
        });
        options.push(SyncOption {
            entity,
            direction: Direction::Pull,
            operations: all,
        });
    }
    for entity in [
        Entity::Product,
        Entity::Invoice,
        Entity::Order,
        Entity::Payment,
        Entity::Subscription,
    ] {
        options.push(SyncOption {
            entity,
            direction: Direction::Push,
            operations: both,
        });
    }
    options
}

fn lookup(
    key: &str,
    label: &str,
    entity: Entity,
    directions: &[Direction],
    bss_field: &str,
    remote_field: &str,
    table: &str,
) -> Lookup {
    Lookup {
        key: key.to_string(),
        label: label.to_string(),
        entity,
        directions: directions.to_vec(),
        bss_field: bss_field.to_string(),
        remote_field: remote_field.to_string(),
        choices_from: table.to_string(),
    }
}

fn lookups() -> Vec<Lookup> {
    use Direction::{Pull, Push};
    vec![
        lookup(
            lookups::ACCOUNT_TYPE,
            "Account Type -> ConnectWise Type",
            Entity::Account,
            &[Push, Pull],
            "account-type",
            "types",
            tables::COMPANY_TYPES,
        ),
        lookup(
            lookups::CURRENCY,
            "Currency -> ConnectWise Currency",
            Entity::Account,
            &[Push, Pull],
            "currency",
            "currency",
            tables::CURRENCIES,
        ),
        lookup(
            lookups::INVOICE_STAGE,
            "Invoice Stage -> ConnectWise Status",
            Entity::Invoice,
            &[Push],
            "stage",
            "status",
            tables::BILLING_STATUSES,
        ),
        lookup(
            lookups::INVOICE_TYPE,
            "Invoice Type -> ConnectWise Type",
            Entity::Invoice,
            &[Push],
            "invoice-type",
            "type",
            tables::INVOICE_TYPES,
        ),
        lookup(
            lookups::PRODUCT_TYPE,
            "Product Type -> ConnectWise Type",
            Entity::Product,
            &[Push],
            "product-type",
            "type",
            tables::PRODUCT_TYPES,
        ),
        lookup(
            lookups::UNIT_TYPE,
            "Unit Type -> ConnectWise SubCategory",
            Entity::Product,
            &[Push],
            "unit-type",
            "subcategory",
            tables::PRODUCT_SUBCATEGORIES,
        ),
        lookup(
            lookups::ORDER_STAGE,
            "Order Stage -> ConnectWise Status",
            Entity::Order,
            &[Push],
            "stage",
            "status",
            tables::ORDER_STATUSES,
        ),
        lookup(
            lookups::SUBSCRIPTION_UNITS,
            "Subscription Units -> ConnectWise Agreement Type",
            Entity::Subscription,
            &[Push],
            "billing-cycle",
            "agreement type",
            tables::AGREEMENT_TYPES,
        ),
    ]
}

pub fn manifest() -> ConnectorManifest {
    ConnectorManifest {
        name: NAME.to_string(),
        version: VERSION.to_string(),
        description: "ConnectWise Manage (PSA): accounts and contacts both ways; products, invoices, orders, payments and subscriptions to ConnectWise.".to_string(),
        server_variables: server_variables(),
        sync_options: sync_options(),
        lookups: lookups(),
        auth: Auth {
            scheme: AuthScheme::Basic((
                format!("{{{}}}+{{{}}}", keys::COMPANY_ID, keys::PUBLIC_KEY),
                format!("{{{}}}", keys::PRIVATE_KEY),
            )),
            headers: vec![HeaderTemplate { name: "clientId".to_string(), value: format!("{{{}}}", keys::CLIENT_ID) }],
        },
        remote_host_variable: keys::URL.to_string(),
        // No public page of ours to point at yet; the admin reads the settings' own descriptions.
        documentation_url: None,
        // None declared (any host): besides ConnectWise's cloud (*.myconnectwise.net) a Manage
        // server may be installed on premises, at whatever address its owner gave it.
        reach: Vec::new(),
    }
}
