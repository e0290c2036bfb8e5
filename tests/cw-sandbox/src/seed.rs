//! The seeded setup tables. Owns the records every fresh sandbox starts with; they are read-only over HTTP, stable
//! across runs, and tests refer to them by id. Entity tables start empty. All seeded records carry
//! `_info.lastUpdated` = `2025-01-15T09:00:00Z`, `updatedBy` = `jsmith`.
//!
//! | resource | id → record |
//! |---|---|
//! | `company/companies/statuses` | 1 Active (default), 2 Inactive (inactiveFlag), 3 Not Approved, 4 Imported, 5 Credit Hold (disallowSavingFlag) |
//! | `company/companies/types` | 1 Client (default), 2 Prospect, 3 Vendor (vendorFlag), 4 Partner, 5 Competitor |
//! | `finance/currencies` | 1 USD US Dollar `$` (default), 2 EUR Euro `€`, 3 GBP British Pound `£`, 4 CAD Canadian Dollar `$`, 5 AUD Australian Dollar `$` |
//! | `company/countries` | 1 United States (US, default), 2 Canada (CA), 3 United Kingdom (GB), 4 Germany (DE), 5 France (FR), 6 Australia (AU), 7 Netherlands (NL) |
//! | `company/states` | 1 CA California, 2 NY New York, 3 TX Texas, 4 FL Florida, 5 WA Washington, 6 IL Illinois, 7 MA Massachusetts, 8 GA Georgia (country 1); 9 ON Ontario, 10 QC Quebec, 11 BC British Columbia, 12 AB Alberta (country 2) |
//! | `company/communicationTypes` | 1 Email (emailFlag, default), 2 Direct (phoneFlag, default), 3 Fax (faxFlag), 4 Mobile (phoneFlag), 5 Home (phoneFlag) |
//! | `procurement/categories` | 1 Hardware, 2 Software, 3 Services (default), 4 Cloud |
//! | `procurement/subcategories/` | 1 Desktops (cat 1), 2 Laptops (1), 3 Networking (1), 4 Licenses (2), 5 Subscriptions (2), 6 Professional Services (3, default), 7 Managed Services (3), 8 Microsoft 365 (4), 9 Azure (4) |
//! | `procurement/types` | 1 Product (default), 2 Service, 3 Subscription, 4 License |
//! | `procurement/unitOfMeasures` | 1 Each (default), 2 Hour, 3 Month, 4 Year, 5 User, 6 Device, 7 License |
//! | `finance/billingStatuses` | 1 New (default), 2 Sent (sentFlag), 3 Partially Paid, 4 Paid (closedFlag), 5 Void (closedFlag) |
//! | `finance/billingTerms` | 1 Net 30 (default, 30 days), 2 Due on Receipt (0), 3 Net 15 (15), 4 Net 45 (45), 5 Net 60 (60) |
//! | `sales/orders/statuses` | 1 New (default), 2 Confirmed, 3 Shipped, 4 Invoiced (closedFlag), 5 Cancelled (closedFlag), 6 Closed (closedFlag) |
//! | `system/members` | 1 jsmith John Smith, 2 mjones Mary Jones, 3 rbrown Robert Brown (sales), 4 SandboxAPI Sandbox API (API member, licenseClass A) |
//! | `finance/agreements/types` | 1 Monthly Subscription (default), 2 Quarterly Subscription, 3 Annual Subscription, 4 Managed Services |
//! | `system/userDefinedFields` | 1 "Subscription Name", 2 "Subscription ID" (Text, agreement additions); 3 "Region" (Text), 4 "Seats" (Number), 5 "Managed" (Checkbox), 6 "Renewal Date" (Date) (companies); 7 "Preferred Language", 8 "Region" (Text, contacts); 9 "Vendor SKU" (catalog items); 10 "BSS Reference" (invoices); 11 "BSS Order Number" (sales orders); 12 "Line Note" (product items); 13 "Contract Ref" (agreements) |
//!
//! Custom fields belong to one screen each (`podId` / `screenId`, see [`CUSTOM_FIELD_SCREENS`]); a record's
//! `customFields` lists every field of its screen, and writes accept only those.

use serde_json::{Value, json};

/// `podId` of the agreement-addition screen's custom fields (the sandbox's code for it).
pub const ADDITION_POD_ID: i64 = 19;

/// The screens that carry custom fields: resource → (`podId`, `screenId`). The codes are the sandbox's own (the
/// real values are not published in the reference documents); what matters is that each field belongs to one screen.
pub const CUSTOM_FIELD_SCREENS: &[(&str, i64, &str)] = &[
    ("company/companies", 1, "Company"),
    ("company/contacts", 2, "Contact"),
    ("procurement/catalog", 3, "CatalogItem"),
    ("finance/invoices", 4, "Invoice"),
    ("sales/orders", 5, "SalesOrder"),
    ("procurement/products", 6, "ProductItem"),
    ("finance/agreements", 7, "Agreement"),
    (
        "finance/agreements/additions",
        ADDITION_POD_ID,
        "AgreementAddition",
    ),
];

/// The `podId` of the custom fields of `resource`'s records, if it has any.
pub fn custom_field_pod(resource: &str) -> Option<i64> {
    CUSTOM_FIELD_SCREENS
        .iter()
        .find(|(r, _, _)| *r == resource)
        .map(|(_, pod, _)| *pod)
}

pub(crate) const SEED_TIME: &str = "2025-01-15T09:00:00Z";
pub(crate) const SEED_USER: &str = "jsmith";

/// `(resource, records)` of every seeded table, records without `_info`.
pub(crate) fn tables() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("company/companies/statuses", company_statuses()),
        ("company/companies/types", company_types()),
        ("finance/currencies", currencies()),
        ("company/countries", countries()),
        ("company/states", states()),
        ("company/communicationTypes", communication_types()),
        ("procurement/categories", categories()),
        ("procurement/subcategories", subcategories()),
        ("procurement/types", product_types()),
        ("procurement/unitOfMeasures", units()),
        ("finance/billingStatuses", billing_statuses()),
        ("finance/billingTerms", billing_terms()),
        ("sales/orders/statuses", order_statuses()),
        ("system/members", members()),
        ("finance/agreements/types", agreement_types()),
        ("system/userDefinedFields", user_defined_fields()),
    ]
}

fn company_statuses() -> Vec<Value> {
    [
        (1, "Active", true, false, false),
        (2, "Inactive", false, true, false),
        (3, "Not Approved", false, false, false),
        (4, "Imported", false, false, false),
        (5, "Credit Hold", false, false, true),
    ]
    .into_iter()
    .map(|(id, name, default, inactive, disallow)| {
        json!({"id": id, "name": name, "defaultFlag": default, "inactiveFlag": inactive, "notifyFlag": false,
               "disallowSavingFlag": disallow, "customNoteFlag": false, "cancelOpenTracksFlag": false})
    })
    .collect()
}

fn company_types() -> Vec<Value> {
    [(1, "Client"), (2, "Prospect"), (3, "Vendor"), (4, "Partner"), (5, "Competitor")]
        .into_iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "defaultFlag": id == 1, "vendorFlag": id == 3, "serviceAlertFlag": false})
        })
        .collect()
}

fn currencies() -> Vec<Value> {
    [
        (1, "USD", "US Dollar", "$", ",", "."),
        (2, "EUR", "Euro", "€", ".", ","),
        (3, "GBP", "British Pound", "£", ",", "."),
        (4, "CAD", "Canadian Dollar", "$", ",", "."),
        (5, "AUD", "Australian Dollar", "$", ",", "."),
    ]
    .into_iter()
    .map(|(id, code, name, symbol, thousands, decimal)| {
        json!({"id": id, "currencyIdentifier": code, "name": name, "symbol": symbol, "displayIdFlag": false,
               "displaySymbolFlag": true, "currencyCode": {"id": id, "name": code},
               "thousandsSeparator": thousands, "decimalSeparator": decimal, "negativeParenthesesFlag": false,
               "rightAlign": false, "numberOfDecimals": 2})
    })
    .collect()
}

fn countries() -> Vec<Value> {
    [
        (1, "United States", "US", 1, "+1", "State", "Zip"),
        (2, "Canada", "CA", 4, "+1", "Province", "Postal Code"),
        (3, "United Kingdom", "GB", 3, "+44", "County", "Postcode"),
        (4, "Germany", "DE", 2, "+49", "State", "Postal Code"),
        (5, "France", "FR", 2, "+33", "Region", "Postal Code"),
        (6, "Australia", "AU", 5, "+61", "State", "Postcode"),
        (7, "Netherlands", "NL", 2, "+31", "Province", "Postal Code"),
    ]
    .into_iter()
    .map(
        |(id, name, code, currency, prefix, state_caption, zip_caption)| {
            json!({"id": id, "name": name, "defaultFlag": id == 1, "currency": {"id": currency},
               "cityCaption": "City", "stateCaption": state_caption, "zipCaption": zip_caption,
               "dialingPrefix": prefix, "countryCode": code, "disabled": false})
        },
    )
    .collect()
}

fn states() -> Vec<Value> {
    [
        (1, "CA", "California", 1),
        (2, "NY", "New York", 1),
        (3, "TX", "Texas", 1),
        (4, "FL", "Florida", 1),
        (5, "WA", "Washington", 1),
        (6, "IL", "Illinois", 1),
        (7, "MA", "Massachusetts", 1),
        (8, "GA", "Georgia", 1),
        (9, "ON", "Ontario", 2),
        (10, "QC", "Quebec", 2),
        (11, "BC", "British Columbia", 2),
        (12, "AB", "Alberta", 2),
    ]
    .into_iter()
    .map(|(id, identifier, name, country)| {
        json!({"id": id, "identifier": identifier, "name": name, "country": {"id": country}, "disabled": false})
    })
    .collect()
}

fn communication_types() -> Vec<Value> {
    [
        (1, "Email", false, false, true, true),
        (2, "Direct", true, false, false, true),
        (3, "Fax", false, true, false, false),
        (4, "Mobile", true, false, false, false),
        (5, "Home", true, false, false, false),
    ]
    .into_iter()
    .map(|(id, description, phone, fax, email, default)| {
        json!({"id": id, "description": description, "phoneFlag": phone, "faxFlag": fax, "emailFlag": email,
               "defaultFlag": default, "disabled": false})
    })
    .collect()
}

fn categories() -> Vec<Value> {
    [
        (1, "Hardware"),
        (2, "Software"),
        (3, "Services"),
        (4, "Cloud"),
    ]
    .into_iter()
    .map(
        |(id, name)| json!({"id": id, "name": name, "inactiveFlag": false, "defaultFlag": id == 3}),
    )
    .collect()
}

fn subcategories() -> Vec<Value> {
    [
        (1, "Desktops", 1),
        (2, "Laptops", 1),
        (3, "Networking", 1),
        (4, "Licenses", 2),
        (5, "Subscriptions", 2),
        (6, "Professional Services", 3),
        (7, "Managed Services", 3),
        (8, "Microsoft 365", 4),
        (9, "Azure", 4),
    ]
    .into_iter()
    .map(|(id, name, category)| {
        json!({"id": id, "name": name, "inactiveFlag": false, "defaultFlag": id == 6, "category": {"id": category}})
    })
    .collect()
}

fn product_types() -> Vec<Value> {
    [
        (1, "Product"),
        (2, "Service"),
        (3, "Subscription"),
        (4, "License"),
    ]
    .into_iter()
    .map(
        |(id, name)| json!({"id": id, "name": name, "inactiveFlag": false, "defaultFlag": id == 1}),
    )
    .collect()
}

fn units() -> Vec<Value> {
    [
        (1, "Each"),
        (2, "Hour"),
        (3, "Month"),
        (4, "Year"),
        (5, "User"),
        (6, "Device"),
        (7, "License"),
    ]
    .into_iter()
    .map(
        |(id, name)| json!({"id": id, "name": name, "inactiveFlag": false, "defaultFlag": id == 1}),
    )
    .collect()
}

fn billing_statuses() -> Vec<Value> {
    [
        (1, "New", false, false),
        (2, "Sent", false, true),
        (3, "Partially Paid", false, true),
        (4, "Paid", true, true),
        (5, "Void", true, false),
    ]
    .into_iter()
    .map(|(id, name, closed, sent)| {
        json!({"id": id, "name": name, "sortOrder": id, "defaultFlag": id == 1, "closedFlag": closed,
               "inactiveFlag": false, "sentFlag": sent})
    })
    .collect()
}

fn billing_terms() -> Vec<Value> {
    [
        (1, "Net 30", 30),
        (2, "Due on Receipt", 0),
        (3, "Net 15", 15),
        (4, "Net 45", 45),
        (5, "Net 60", 60),
    ]
    .into_iter()
    .map(
        |(id, name, days)| json!({"id": id, "name": name, "defaultFlag": id == 1, "dueDays": days}),
    )
    .collect()
}

fn order_statuses() -> Vec<Value> {
    [
        (1, "New", false),
        (2, "Confirmed", false),
        (3, "Shipped", false),
        (4, "Invoiced", true),
        (5, "Cancelled", true),
        (6, "Closed", true),
    ]
    .into_iter()
    .map(|(id, name, closed)| {
        json!({"id": id, "name": name, "defaultFlag": id == 1, "inactiveFlag": false, "sortOrder": id,
               "closedFlag": closed})
    })
    .collect()
}

fn members() -> Vec<Value> {
    [
        (1, "jsmith", "John", "Smith", "F", "Service Manager", "Admin", 1),
        (2, "mjones", "Mary", "Jones", "F", "Accountant", "Finance", 2),
        (3, "rbrown", "Robert", "Brown", "F", "Account Manager", "Sales", 3),
        (4, "SandboxAPI", "Sandbox", "API", "A", "Integration", "API Member", 4),
    ]
    .into_iter()
    .map(|(id, identifier, first, last, license, title, role, role_id)| {
        json!({"id": id, "identifier": identifier, "firstName": first, "lastName": last,
               "licenseClass": license, "title": title, "disableOnlineFlag": false, "inactiveFlag": false,
               "hireDate": "2020-03-02T00:00:00Z", "defaultEmail": "Office", "defaultPhone": "Office",
               "officeEmail": format!("{identifier}@sandbox.example"),
               "primaryEmail": format!("{identifier}@sandbox.example"),
               "officePhone": format!("555-010{id}"),
               "securityRole": {"id": role_id, "name": role}, "adminFlag": id == 1,
               "timeZone": {"id": 1, "name": "Eastern"}})
    })
    .collect()
}

fn agreement_types() -> Vec<Value> {
    [
        (1, "Monthly Subscription", 1, "Monthly"),
        (2, "Quarterly Subscription", 2, "Quarterly"),
        (3, "Annual Subscription", 3, "Yearly"),
        (4, "Managed Services", 1, "Monthly"),
    ]
    .into_iter()
    .map(|(id, name, cycle_id, cycle)| {
        json!({"id": id, "name": name, "defaultFlag": id == 1, "inactiveFlag": false, "prePaymentFlag": false,
               "applicationUnits": "Amount", "applicationUnlimitedFlag": true, "oneTimeFlag": false,
               "employeeCompRate": "Actual", "employeeCompNotExceed": "Billing",
               "invoicingCycle": "ContractYear", "billingCycle": {"id": cycle_id, "name": cycle},
               "billTime": "Billable", "billExpenses": "Billable", "billProducts": "Billable",
               "taxableFlag": true, "prorateFlag": true, "invoiceProratedAdditionsFlag": true,
               "autoInvoiceFlag": false})
    })
    .collect()
}

fn user_defined_fields() -> Vec<Value> {
    let screen = |resource: &str| {
        CUSTOM_FIELD_SCREENS
            .iter()
            .find(|(r, _, _)| *r == resource)
            .map(|(_, pod, screen)| (*pod, *screen))
            .expect("a screen")
    };
    [
        (
            1,
            "Subscription Name",
            "Text",
            "finance/agreements/additions",
        ),
        (2, "Subscription ID", "Text", "finance/agreements/additions"),
        (3, "Region", "Text", "company/companies"),
        (4, "Seats", "Number", "company/companies"),
        (5, "Managed", "Checkbox", "company/companies"),
        (6, "Renewal Date", "Date", "company/companies"),
        (7, "Preferred Language", "Text", "company/contacts"),
        (8, "Region", "Text", "company/contacts"),
        (9, "Vendor SKU", "Text", "procurement/catalog"),
        (10, "BSS Reference", "Text", "finance/invoices"),
        (11, "BSS Order Number", "Text", "sales/orders"),
        (12, "Line Note", "Text", "procurement/products"),
        (13, "Contract Ref", "Text", "finance/agreements"),
    ]
    .into_iter()
    .map(|(id, caption, kind, resource)| {
        let (pod, screen) = screen(resource);
        let entry = if kind == "Date" { "Date" } else { "EntryField" };
        json!({"id": id, "podId": pod, "caption": caption, "sequenceNumber": id,
               "screenId": screen, "helpText": format!("{caption} ({screen})"),
               "fieldTypeIdentifier": kind, "entryTypeIdentifier": entry, "requiredFlag": false,
               "numberDecimals": 0,
               "displayOnScreenFlag": true, "readOnlyFlag": false, "listViewFlag": true,
               "businessUnitIds": [], "locationIds": [], "dateCreated": "2024-11-04T15:30:00Z"})
    })
    .collect()
}
