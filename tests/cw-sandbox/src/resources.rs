//! The catalogue of resources the sandbox serves. Owns one [`Resource`] per ConnectWise path: its generic name
//! (the key for `Sandbox::records`), its URL pattern (`{parentId}` for sub-resources), the error-body resource name,
//! its schema in the reference documents, whether it accepts writes, how a sub-resource record points at its parent,
//! which fields are references to which other resource (and which reference fields the server fills on reads),
//! extra required fields, unique fields, the first id handed out, and URL matching including the trailing-slash
//! quirk of `procurement/subcategories/`. Callback registrations (`system/callbacks`) are a resource like the
//! entities; their deliveries belong to [`callbacks`](crate::callbacks).

use crate::schema::SchemaSource;

/// How a sub-resource record records its parent.
#[derive(Clone, Copy, Debug)]
pub struct Parent {
    /// Generic name of the parent resource, e.g. `finance/agreements`.
    pub resource: &'static str,
    /// Field of the child that holds the parent: a plain id (`agreementId`) or a reference (`invoice`).
    pub field: &'static str,
    /// `true` when `field` is a reference object `{"id": n}`, `false` when it is a bare integer.
    pub is_ref: bool,
}

/// A reference field: a `{"id": n}` object (or an array of them) that points into another resource.
#[derive(Clone, Copy, Debug)]
pub struct Ref {
    /// Path of the reference in the record; `x[]` steps into every element of array `x` (`communicationItems[]/type`).
    pub path: &'static str,
    /// Generic name of the target resource.
    pub target: &'static str,
    /// Fields of the reference, besides `id` and `_info`, that reads fill from the target record.
    pub keys: &'static [&'static str],
}

/// One served resource.
#[derive(Clone, Copy, Debug)]
pub struct Resource {
    /// Generic name, e.g. `company/companies` or `finance/agreements/additions`.
    pub name: &'static str,
    /// URL pattern under `/v4_6_release/apis/3.0/`, e.g. `finance/agreements/{parentId}/additions`.
    pub path: &'static str,
    /// Resource name used in error bodies (`company object is invalid`).
    pub object: &'static str,
    pub schema: SchemaSource,
    /// Entities accept POST/PUT/PATCH/DELETE; setup tables are read-only (405).
    pub writable: bool,
    pub parent: Option<Parent>,
    pub refs: &'static [Ref],
    /// Required on top of the schema's `required` (ConnectWise enforces these though the documents do not say so).
    pub extra_required: &'static [&'static str],
    /// Fields whose value must be unique (case-insensitively) across the resource.
    pub unique: &'static [&'static str],
    /// Key of the `_info` link in references to records of this resource (`company_href`).
    pub href: &'static str,
    /// First id handed out (entities get distinct ranges so that an id of the wrong kind is noticed).
    pub first_id: i64,
    /// The list URL only answers with a trailing slash (ConnectWise's `procurement/subcategories/` quirk).
    pub list_needs_trailing_slash: bool,
}

const NAME: &[&str] = &["name"];
const IDENT_NAME: &[&str] = &["identifier", "name"];
const CURRENCY: &[&str] = &[
    "symbol",
    "currencyCode",
    "decimalSeparator",
    "numberOfDecimals",
    "thousandsSeparator",
    "negativeParenthesesFlag",
    "displaySymbolFlag",
    "currencyIdentifier",
    "displayIdFlag",
    "rightAlign",
    "name",
];
const BILLING_STATUS: &[&str] = &["name", "isClosed"];
const IV_ITEM: &[&str] = &["identifier", "serializedFlag"];
const INVOICE: &[&str] = &["identifier", "billingType", "applyToType", "invoiceDate"];
const SALES_ORDER: &[&str] = &["identifier"];
const AGREEMENT: &[&str] = &["name", "type", "chargeFirmFlag"];

pub const COMPANIES: &str = "company/companies";
pub const TYPE_ASSOCIATIONS: &str = "company/companies/typeAssociations";
pub const COMPANY_TYPES: &str = "company/companies/types";
pub const CONTACTS: &str = "company/contacts";
pub const COMMUNICATIONS: &str = "company/contacts/communications";
pub const COMMUNICATION_TYPES: &str = "company/communicationTypes";
pub const CATALOG: &str = "procurement/catalog";
pub const PRODUCTS: &str = "procurement/products";
pub const INVOICES: &str = "finance/invoices";
pub const PAYMENTS: &str = "finance/invoices/payments";
pub const ORDERS: &str = "sales/orders";
pub const AGREEMENTS: &str = "finance/agreements";
pub const ADDITIONS: &str = "finance/agreements/additions";
pub const AGREEMENT_TYPES: &str = "finance/agreements/types";
pub const BILLING_TERMS: &str = "finance/billingTerms";
pub const USER_DEFINED_FIELDS: &str = "system/userDefinedFields";
pub const SUBCATEGORIES: &str = "procurement/subcategories";
pub const CALLBACKS: &str = "system/callbacks";

const fn setup(
    name: &'static str,
    object: &'static str,
    schema: SchemaSource,
    href: &'static str,
) -> Resource {
    Resource {
        name,
        path: name,
        object,
        schema,
        writable: false,
        parent: None,
        refs: &[],
        extra_required: &[],
        unique: &[],
        href,
        first_id: 1,
        list_needs_trailing_slash: false,
    }
}

const fn entity(
    name: &'static str,
    object: &'static str,
    schema: SchemaSource,
    href: &'static str,
    first_id: i64,
    refs: &'static [Ref],
) -> Resource {
    Resource {
        name,
        path: name,
        object,
        schema,
        writable: true,
        parent: None,
        refs,
        extra_required: &[],
        unique: &[],
        href,
        first_id,
        list_needs_trailing_slash: false,
    }
}

const fn r(path: &'static str, target: &'static str, keys: &'static [&'static str]) -> Ref {
    Ref { path, target, keys }
}

use SchemaSource::{Extra, Models, OpenApi};

/// Every resource the sandbox serves.
pub static RESOURCES: &[Resource] = &[
    // ---- setup tables (read-only) ----
    setup(
        "company/companies/statuses",
        "companyStatus",
        OpenApi("CompanyStatus"),
        "status_href",
    ),
    setup(
        COMPANY_TYPES,
        "companyType",
        OpenApi("CompanyType"),
        "type_href",
    ),
    Resource {
        refs: &[r("currency", "finance/currencies", CURRENCY)],
        ..setup(
            "company/countries",
            "country",
            Extra("Country"),
            "country_href",
        )
    },
    Resource {
        refs: &[r("country", "company/countries", IDENT_NAME)],
        ..setup("company/states", "state", Extra("State"), "state_href")
    },
    setup(
        COMMUNICATION_TYPES,
        "communicationType",
        Extra("CommunicationType"),
        "type_href",
    ),
    setup(
        "finance/currencies",
        "currency",
        Models("FinanceCurrency"),
        "currency_href",
    ),
    setup(
        "procurement/categories",
        "category",
        Models("Category"),
        "category_href",
    ),
    Resource {
        refs: &[r("category", "procurement/categories", NAME)],
        list_needs_trailing_slash: true,
        ..setup(
            SUBCATEGORIES,
            "subCategory",
            Models("SubCategory"),
            "subcategory_href",
        )
    },
    setup(
        "procurement/types",
        "productType",
        Models("ProductType"),
        "type_href",
    ),
    setup(
        "procurement/unitOfMeasures",
        "unitOfMeasure",
        Models("UnitOfMeasure"),
        "unitOfMeasure_href",
    ),
    setup(
        "finance/billingStatuses",
        "billingStatus",
        OpenApi("BillingStatus"),
        "status_href",
    ),
    setup(
        BILLING_TERMS,
        "billingTerm",
        Models("BillingTerm"),
        "billingTerms_href",
    ),
    setup(
        "sales/orders/statuses",
        "orderStatus",
        Models("OrderStatus"),
        "status_href",
    ),
    setup("system/members", "member", OpenApi("Member"), "member_href"),
    setup(
        AGREEMENT_TYPES,
        "agreementType",
        OpenApi("AgreementType"),
        "type_href",
    ),
    setup(
        USER_DEFINED_FIELDS,
        "userDefinedField",
        Extra("UserDefinedField"),
        "userDefinedField_href",
    ),
    // ---- entities ----
    Resource {
        unique: &["identifier"],
        ..entity(
            COMPANIES,
            "company",
            OpenApi("Company"),
            "company_href",
            250,
            &[
                r("status", "company/companies/statuses", NAME),
                r("types[]", COMPANY_TYPES, NAME),
                r("country", "company/countries", IDENT_NAME),
                r("defaultContact", CONTACTS, NAME),
                r("billingContact", CONTACTS, NAME),
                r("parentCompany", COMPANIES, IDENT_NAME),
                r("billToCompany", COMPANIES, IDENT_NAME),
                r("currency", "finance/currencies", CURRENCY),
                r("territoryManager", "system/members", IDENT_NAME),
                r("billingTerms", BILLING_TERMS, NAME),
            ],
        )
    },
    Resource {
        path: "company/companies/{parentId}/typeAssociations",
        parent: Some(Parent {
            resource: COMPANIES,
            field: "company",
            is_ref: true,
        }),
        ..entity(
            TYPE_ASSOCIATIONS,
            "companyTypeAssociation",
            Extra("CompanyTypeAssociation"),
            "typeAssociation_href",
            800,
            &[
                r("type", COMPANY_TYPES, NAME),
                r("company", COMPANIES, IDENT_NAME),
            ],
        )
    },
    Resource {
        extra_required: &["firstName"],
        ..entity(
            CONTACTS,
            "contact",
            OpenApi("Contact"),
            "contact_href",
            500,
            &[
                r("company", COMPANIES, IDENT_NAME),
                r("country", "company/countries", IDENT_NAME),
                r("managerContact", CONTACTS, NAME),
                r("assistantContact", CONTACTS, NAME),
                r("communicationItems[]/type", COMMUNICATION_TYPES, NAME),
            ],
        )
    },
    Resource {
        path: "company/contacts/{parentId}/communications",
        parent: Some(Parent {
            resource: CONTACTS,
            field: "contactId",
            is_ref: false,
        }),
        ..entity(
            COMMUNICATIONS,
            "contactCommunication",
            Extra("ContactCommunication"),
            "communication_href",
            1000,
            &[r("type", COMMUNICATION_TYPES, NAME)],
        )
    },
    Resource {
        unique: &["identifier"],
        ..entity(
            CATALOG,
            "catalogItem",
            OpenApi("CatalogItem"),
            "catalog_href",
            1500,
            &[
                r("subcategory", SUBCATEGORIES, NAME),
                r("type", "procurement/types", NAME),
                r("category", "procurement/categories", NAME),
                r("unitOfMeasure", "procurement/unitOfMeasures", NAME),
                r("vendor", COMPANIES, IDENT_NAME),
                r("agreementType", AGREEMENT_TYPES, NAME),
            ],
        )
    },
    entity(
        PRODUCTS,
        "productItem",
        OpenApi("ProductItem"),
        "product_href",
        3000,
        &[
            r("catalogItem", CATALOG, IDENT_NAME),
            r("unitOfMeasure", "procurement/unitOfMeasures", NAME),
            r("vendor", COMPANIES, IDENT_NAME),
            r("company", COMPANIES, IDENT_NAME),
            r("invoice", INVOICES, INVOICE),
            r("salesOrder", ORDERS, SALES_ORDER),
            r("agreement", AGREEMENTS, AGREEMENT),
        ],
    ),
    entity(
        INVOICES,
        "invoice",
        OpenApi("Invoice"),
        "invoice_href",
        5000,
        &[
            r("status", "finance/billingStatuses", BILLING_STATUS),
            r("company", COMPANIES, IDENT_NAME),
            r("billToCompany", COMPANIES, IDENT_NAME),
            r("shipToCompany", COMPANIES, IDENT_NAME),
            r("billingTerms", BILLING_TERMS, NAME),
            r("currency", "finance/currencies", CURRENCY),
            r("salesOrder", ORDERS, SALES_ORDER),
            r("agreement", AGREEMENTS, AGREEMENT),
        ],
    ),
    Resource {
        path: "finance/invoices/{parentId}/payments",
        parent: Some(Parent {
            resource: INVOICES,
            field: "invoice",
            is_ref: true,
        }),
        ..entity(
            PAYMENTS,
            "invoicePayment",
            Models("InvoicePayment"),
            "payment_href",
            6000,
            &[
                r("invoice", INVOICES, INVOICE),
                r("credit", INVOICES, INVOICE),
            ],
        )
    },
    entity(
        ORDERS,
        "order",
        OpenApi("Order"),
        "order_href",
        7000,
        &[
            r("company", COMPANIES, IDENT_NAME),
            r("contact", CONTACTS, NAME),
            r("status", "sales/orders/statuses", NAME),
            r("billingTerms", BILLING_TERMS, NAME),
            r("salesRep", "system/members", IDENT_NAME),
            r("currency", "finance/currencies", CURRENCY),
            r("shipToCompany", COMPANIES, IDENT_NAME),
            r("shipToContact", CONTACTS, NAME),
            r("billToCompany", COMPANIES, IDENT_NAME),
            r("billToContact", CONTACTS, NAME),
        ],
    ),
    entity(
        AGREEMENTS,
        "agreement",
        OpenApi("Agreement"),
        "agreement_href",
        8000,
        &[
            r("type", AGREEMENT_TYPES, NAME),
            r("company", COMPANIES, IDENT_NAME),
            r("contact", CONTACTS, NAME),
            r("parentAgreement", AGREEMENTS, AGREEMENT),
            r("billingTerms", BILLING_TERMS, NAME),
            r("billToCompany", COMPANIES, IDENT_NAME),
            r("billToContact", CONTACTS, NAME),
            r("shipToCompany", COMPANIES, IDENT_NAME),
            r("shipToContact", CONTACTS, NAME),
            r("subContractCompany", COMPANIES, IDENT_NAME),
            r("subContractContact", CONTACTS, NAME),
            r("currency", "finance/currencies", CURRENCY),
        ],
    ),
    Resource {
        path: "finance/agreements/{parentId}/additions",
        parent: Some(Parent {
            resource: AGREEMENTS,
            field: "agreementId",
            is_ref: false,
        }),
        ..entity(
            ADDITIONS,
            "addition",
            OpenApi("Addition"),
            "addition_href",
            9000,
            &[r("product", CATALOG, IV_ITEM)],
        )
    },
    // ---- callback registrations (deliveries: `crate::callbacks`) ----
    entity(
        CALLBACKS,
        "callbackEntry",
        Extra("CallbackEntry"),
        "callback_href",
        100,
        &[],
    ),
];

/// The resource of a generic name (`procurement/subcategories/` with its slash is accepted too).
pub fn by_name(name: &str) -> Option<&'static Resource> {
    let name = name.trim_matches('/');
    RESOURCES.iter().find(|r| r.name == name)
}

/// What a request path addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    List,
    Count,
    Item(i64),
}

/// A request path resolved against the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub resource: &'static Resource,
    pub parent_id: Option<i64>,
    pub target: Target,
}

/// Resolves a path relative to the API root (`company/companies/250`, `finance/agreements/8000/additions/count`,
/// `procurement/subcategories/`). `None` = no such route (404).
pub fn route(path: &str) -> Option<Route> {
    let trailing_slash = path.ends_with('/');
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    for resource in RESOURCES {
        let pattern: Vec<&str> = resource.path.split('/').collect();
        if segments.len() < pattern.len() || segments.len() > pattern.len() + 1 {
            continue;
        }
        let mut parent_id = None;
        let matched = pattern.iter().zip(&segments).all(|(p, s)| {
            if *p == "{parentId}" {
                parent_id = s.parse::<i64>().ok();
                parent_id.is_some()
            } else {
                p.eq_ignore_ascii_case(s)
            }
        });
        if !matched {
            continue;
        }
        let target = match segments.get(pattern.len()) {
            None => {
                if resource.list_needs_trailing_slash && !trailing_slash {
                    return None;
                }
                Target::List
            }
            Some(s) if s.eq_ignore_ascii_case("count") => Target::Count,
            Some(s) => match s.parse::<i64>() {
                Ok(id) => Target::Item(id),
                Err(_) => continue,
            },
        };
        return Some(Route {
            resource,
            parent_id,
            target,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve() {
        let r = route("company/companies").unwrap();
        assert_eq!((r.resource.name, r.target), (COMPANIES, Target::List));
        let r = route("company/companies/statuses/count").unwrap();
        assert_eq!(
            (r.resource.name, r.target),
            ("company/companies/statuses", Target::Count)
        );
        let r = route("company/companies/251/typeAssociations/801").unwrap();
        assert_eq!(r.resource.name, TYPE_ASSOCIATIONS);
        assert_eq!((r.parent_id, r.target), (Some(251), Target::Item(801)));
        let r = route("finance/agreements/types/3").unwrap();
        assert_eq!(
            (r.resource.name, r.target),
            (AGREEMENT_TYPES, Target::Item(3))
        );
        assert!(route("company/companies/abc").is_none());
        assert!(route("nope/nothing").is_none());
    }

    #[test]
    fn subcategories_need_their_slash() {
        assert!(route("procurement/subcategories").is_none());
        assert_eq!(
            route("procurement/subcategories/").unwrap().target,
            Target::List
        );
        assert_eq!(
            route("procurement/subcategories/3").unwrap().target,
            Target::Item(3)
        );
        assert_eq!(
            route("procurement/subcategories/count").unwrap().target,
            Target::Count
        );
    }

    #[test]
    fn every_reference_targets_a_resource() {
        for res in RESOURCES {
            for rf in res.refs {
                assert!(
                    by_name(rf.target).is_some(),
                    "{} -> {}",
                    res.name,
                    rf.target
                );
            }
            if let Some(p) = res.parent {
                assert!(by_name(p.resource).is_some());
            }
            crate::schema::model(res.schema);
        }
    }
}
