//! Creating one record of each entity over HTTP, the way a connector would, and small helpers.

use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::client::{Client, Resp};

pub async fn start() -> (Sandbox, Client) {
    let sb = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let c = Client::new(&sb);
    (sb, c)
}

pub fn id_of(r: &Resp) -> i64 {
    r.json()["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {}", r.text()))
}

/// Path part of an absolute URL from a `Link` header.
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_string(), |i| rest[i..].to_string())
}

/// The URL of `rel` in a `Link` header.
pub fn link(r: &Resp, rel: &str) -> Option<String> {
    let header = r.header("link")?;
    header.split(", <").find_map(|part| {
        let (url, params) = part.trim_start_matches('<').split_once(">;")?;
        params
            .contains(&format!("rel=\"{rel}\""))
            .then(|| url.to_string())
    })
}

pub fn company_body(identifier: &str) -> Value {
    json!({
        "identifier": identifier,
        "name": format!("{identifier} Ltd"),
        "status": {"id": 1},
        "types": [{"id": 1}],
        "addressLine1": "1 Main Street",
        "addressLine2": "Suite 200",
        "city": "Tampa",
        "state": "FL",
        "zip": "33602",
        "country": {"id": 1},
        "phoneNumber": "813-555-0100",
        "faxNumber": "813-555-0101",
        "website": "https://example.com",
        "currency": {"id": 1},
        "accountNumber": format!("ACC-{identifier}"),
    })
}

pub async fn company(c: &Client, identifier: &str) -> i64 {
    id_of(
        &c.post("company/companies", &company_body(identifier))
            .await
            .expect(201),
    )
}

pub async fn contact(c: &Client, company: i64) -> i64 {
    let body = json!({
        "firstName": "Ada", "lastName": "Lovelace", "company": {"id": company}, "title": "CTO",
        "communicationItems": [
            {"type": {"id": 1}, "value": "ada@example.com", "defaultFlag": true},
            {"type": {"id": 2}, "value": "813-555-0199", "defaultFlag": true},
        ],
    });
    id_of(&c.post("company/contacts", &body).await.expect(201))
}

pub async fn catalog_item(c: &Client, identifier: &str) -> i64 {
    let body = json!({
        "identifier": identifier, "description": format!("{identifier} licence"),
        "customerDescription": "Monthly licence", "subcategory": {"id": 5}, "type": {"id": 3},
        "category": {"id": 2}, "unitOfMeasure": {"id": 3}, "price": 12.5, "cost": 7.25, "taxableFlag": true,
    });
    id_of(&c.post("procurement/catalog", &body).await.expect(201))
}

pub async fn invoice(c: &Client, company: i64) -> i64 {
    let body = json!({
        "type": "Standard", "company": {"id": company}, "status": {"id": 1}, "billingTerms": {"id": 1},
        "applyToType": "All", "applyToId": 0, "date": "2026-02-01T00:00:00Z", "dueDate": "2026-03-03T00:00:00Z",
        "currency": {"id": 1},
    });
    id_of(&c.post("finance/invoices", &body).await.expect(201))
}

pub async fn product(c: &Client, catalog: i64, invoice: i64, company: i64) -> i64 {
    let body = json!({
        "catalogItem": {"id": catalog}, "quantity": 3.0, "price": 12.5, "cost": 7.25, "description": "Licence",
        "billableOption": "Billable", "invoice": {"id": invoice}, "company": {"id": company},
    });
    id_of(&c.post("procurement/products", &body).await.expect(201))
}

pub async fn order(c: &Client, company: i64, contact: i64) -> i64 {
    let body = json!({
        "company": {"id": company}, "contact": {"id": contact}, "status": {"id": 1}, "salesRep": {"id": 3},
        "orderDate": "2026-02-01T00:00:00Z", "dueDate": "2026-02-15T00:00:00Z", "poNumber": "PO-1001",
        "billingTerms": {"id": 1}, "currency": {"id": 1}, "productIds": [],
    });
    id_of(&c.post("sales/orders", &body).await.expect(201))
}

pub async fn payment(c: &Client, invoice: i64) -> i64 {
    let body = json!({"type": "Payment", "amount": 37.5, "paymentDate": "2026-02-10T00:00:00Z"});
    id_of(
        &c.post(&format!("finance/invoices/{invoice}/payments"), &body)
            .await
            .expect(201),
    )
}

pub async fn agreement(c: &Client, company: i64, contact: i64) -> i64 {
    let body = json!({
        "name": "Monthly subscriptions", "type": {"id": 1}, "company": {"id": company}, "contact": {"id": contact},
        "startDate": "2026-01-01T00:00:00Z",
    });
    id_of(&c.post("finance/agreements", &body).await.expect(201))
}

pub async fn addition(c: &Client, agreement: i64, catalog: i64) -> i64 {
    let body = json!({
        "product": {"id": catalog}, "billCustomer": "Billable", "quantity": 5.0, "unitPrice": 12.5,
        "unitCost": 7.25, "effectiveDate": "2026-01-01T00:00:00Z", "cancelledDate": "2026-12-31T00:00:00Z",
        "invoiceDescription": "Office 365 E3",
        "customFields": [{"id": 1, "value": "Office 365 E3"}, {"id": 2, "value": "SUB-0001"}],
    });
    id_of(
        &c.post(&format!("finance/agreements/{agreement}/additions"), &body)
            .await
            .expect(201),
    )
}

/// Ids of one record of every entity, created over HTTP.
#[allow(dead_code)]
pub struct World {
    pub company: i64,
    pub contact: i64,
    pub catalog: i64,
    pub invoice: i64,
    pub product: i64,
    pub order: i64,
    pub payment: i64,
    pub agreement: i64,
    pub addition: i64,
}

pub async fn world(c: &Client) -> World {
    let company = company(c, "ACME").await;
    let contact = contact(c, company).await;
    let catalog = catalog_item(c, "O365-E3").await;
    let invoice = invoice(c, company).await;
    let product = product(c, catalog, invoice, company).await;
    let order = order(c, company, contact).await;
    let payment = payment(c, invoice).await;
    let agreement = agreement(c, company, contact).await;
    let addition = addition(c, agreement, catalog).await;
    World {
        company,
        contact,
        catalog,
        invoice,
        product,
        order,
        payment,
        agreement,
        addition,
    }
}
