//! Exactly once against the sandbox: the connector built natively, over a small blocking HTTP
//! host, pushing to `cw-sandbox` on loopback. A lost answer is the sandbox's `stall_post` fault
//! (the POST is applied, its answer never sent) met by a read timeout; the retry carries
//! `maybe_created` and no remote id, as the host sends it. Each entity must end with one remote
//! record, found again; several candidates, or a unique value held by a record without this
//! record's key, fail with field `bss-id` and a message starting `ambiguous:` / `in use:`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cw_sandbox::{Faults, Sandbox, SandboxConfig};
use plugin_connectwise::connector;
use plugin_connectwise::exports::{Change, PushOptions, Pushed};
use plugin_connectwise::host::{Host, HttpError, Level, Method, Request, Response};
use plugin_connectwise::types::{
    Account, Address, ConnectorError, Contact, Entity, EntityData, Invoice, Line, Order, Payment,
    Product, Record, Reference, Subscription,
};
use serde_json::{Value, json};

const CLIENT_ID: &str = "0c8f3c52-5b7e-4c1a-9d8e-1f2a3b4c5d6e";
/// Long enough for any answer of a loopback sandbox, short enough for a test to wait out.
const TIMEOUT: Duration = Duration::from_millis(1500);

/// Polls a future that never waits (the sandbox's `start` binds and spawns, awaiting nothing).
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}

/// A host over plain blocking HTTP/1.1, one connection per request.
struct SandboxHost {
    addr: std::net::SocketAddr,
    authorization: String,
    settings: BTreeMap<String, String>,
    lookups: BTreeMap<(&'static str, &'static str), &'static str>,
    timeout: Cell<Duration>,
}

impl SandboxHost {
    fn new(sandbox: &Sandbox) -> SandboxHost {
        let settings = [
            ("url", sandbox.base_url()),
            ("company-id", sandbox.company_id().to_string()),
            ("import-account-id", "4".into()),
            ("product-category", "3".into()),
            ("product-subcategory", "6".into()),
            ("product-unit-of-measure", "1".into()),
            ("sales-representative", "3".into()),
            ("credit-card-method-id", "cc".into()),
            ("bank-deposit-method-id", "bank".into()),
            ("subscription-name-field-id", "1".into()),
            ("subscription-id-field-id", "2".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let lookups = BTreeMap::from([
            (("account-type", "Customer"), "1"),
            (("currency", "USD"), "1"),
            (("product-type", "Hardware"), "1"),
            (("order-stage", "New"), "1"),
            (("subscription-units", "Monthly"), "1"),
        ]);
        SandboxHost {
            addr: sandbox.addr(),
            authorization: sandbox.authorization_header(),
            settings,
            lookups,
            timeout: Cell::new(TIMEOUT),
        }
    }
}

fn transport(e: std::io::Error) -> HttpError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            HttpError::Timeout(e.to_string())
        }
        _ => HttpError::Transport(e.to_string()),
    }
}

impl Host for SandboxHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let target = request
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .ok_or_else(|| HttpError::InvalidRequest(request.url.clone()))?;
        let method = match request.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        };
        let body = request.body.clone().unwrap_or_default();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: {}\r\nclientid: {CLIENT_ID}\r\ncontent-length: {}\r\n",
            self.addr,
            self.authorization,
            body.len()
        );
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).map_err(transport)?;
        stream
            .set_read_timeout(Some(self.timeout.get()))
            .map_err(transport)?;
        stream.write_all(head.as_bytes()).map_err(transport)?;
        stream.write_all(&body).map_err(transport)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(transport)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| HttpError::Transport("the answer has no header end".into()))?;
        let text = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Transport(format!("bad status line in {text:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
    fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }
    fn lookup(&self, key: &str, bss_value: &str) -> Option<String> {
        self.lookups.get(&(key, bss_value)).map(|v| v.to_string())
    }
    fn reverse_lookup(&self, _key: &str, _remote_value: &str) -> Option<String> {
        None
    }
    fn lookup_remote_values(&self, key: &str) -> Vec<String> {
        self.lookups
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|(_, v)| v.to_string())
            .collect()
    }
    fn log(&self, _level: Level, _message: &str) {}
}

struct Cw {
    sandbox: Sandbox,
    host: SandboxHost,
}

fn start() -> Cw {
    let sandbox = ready(Sandbox::start(SandboxConfig::default())).unwrap();
    let host = SandboxHost::new(&sandbox);
    Cw { sandbox, host }
}

impl Cw {
    fn push_as(&self, record: &Record, dry_run: bool) -> Result<Pushed, ConnectorError> {
        connector::push(
            &self.host,
            record.entity,
            vec![record.clone()],
            PushOptions { dry_run },
        )
        .unwrap()
        .remove(0)
    }

    fn push(&self, record: &Record) -> Result<Pushed, ConnectorError> {
        self.push_as(record, false)
    }

    fn created(&self, record: &Record) -> String {
        let pushed = self.push(record).unwrap();
        assert_eq!(pushed.change, Change::Created, "{record:?}");
        pushed.remote_id
    }

    /// Pushes `record` with the answer to its `nth` POST lost: the write is applied, the
    /// connector times out. Then the host's retry: no remote id, `maybe_created`.
    fn lost_then_retried(&self, record: &Record, nth: u64) -> Result<Pushed, ConnectorError> {
        self.sandbox.set_faults(Faults::none().with_stall_post(nth));
        self.host.timeout.set(Duration::from_millis(400));
        let lost = self.push(record);
        self.host.timeout.set(TIMEOUT);
        self.sandbox.set_faults(Faults::none());
        assert!(
            matches!(&lost, Err(ConnectorError::Transient(m)) if m.contains("did not answer")),
            "{lost:?}"
        );
        self.push(&retry(record))
    }

    fn count(&self, resource: &str) -> usize {
        self.sandbox.records(resource).len()
    }
}

/// The host's second try of a create whose outcome is unknown.
fn retry(record: &Record) -> Record {
    Record {
        remote_id: None,
        maybe_created: true,
        ..record.clone()
    }
}

fn record(entity: Entity, bss_id: &str, data: EntityData, references: Vec<Reference>) -> Record {
    Record {
        entity,
        bss_id: bss_id.into(),
        remote_id: None,
        maybe_created: false,
        data,
        references,
    }
}

fn reference(field: &str, entity: Entity, bss_id: &str, remote_id: &str) -> Reference {
    Reference {
        field: field.into(),
        entity,
        bss_id: bss_id.into(),
        remote_id: remote_id.into(),
    }
}

fn account(bss_id: &str, code: &str) -> Record {
    let data = Account {
        code: code.into(),
        name: format!("Company {bss_id}"),
        account_type: Some("Customer".into()),
        status: None,
        currency: Some("USD".into()),
        billing_address: Some(Address {
            line1: Some("1 Main St".into()),
            line2: None,
            city: Some("Springfield".into()),
            state: None,
            zip: None,
            country: None,
        }),
        phone: None,
        fax: None,
        website: None,
        parent_account: None,
        primary_contact: None,
        extra: vec![],
    };
    record(Entity::Account, bss_id, EntityData::Account(data), vec![])
}

fn contact(bss_id: &str, account_remote: &str, email: Option<&str>) -> Record {
    let data = Contact {
        account: Some("A-1".into()),
        first_name: "Sam".into(),
        last_name: Some("Lee".into()),
        title: None,
        email: email.map(str::to_string),
        phone: Some("555-0100".into()),
        mobile: None,
        fax: None,
        extra: vec![],
    };
    record(
        Entity::Contact,
        bss_id,
        EntityData::Contact(data),
        vec![reference("account", Entity::Account, "A-1", account_remote)],
    )
}

fn product(bss_id: &str, code: &str) -> Record {
    let data = Product {
        code: code.into(),
        name: format!("Product {code}"),
        description: None,
        customer_description: None,
        product_type: Some("Hardware".into()),
        unit_type: None,
        price: Some("10".into()),
        cost: Some("4".into()),
        taxable: None,
        extra: vec![],
    };
    record(Entity::Product, bss_id, EntityData::Product(data), vec![])
}

fn lines() -> Vec<Line> {
    ["L1", "L2"]
        .iter()
        .map(|id| Line {
            line_id: id.to_string(),
            product: Some("P-1".into()),
            description: Some(format!("line {id}")),
            quantity: "2".into(),
            unit_price: "10".into(),
            unit_cost: None,
            extra: vec![],
        })
        .collect()
}

/// An account and a product pushed, with their remote ids.
struct Parents {
    account: String,
    product: String,
}

fn parents(cw: &Cw) -> Parents {
    Parents {
        account: cw.created(&account("A-1", "C-1")),
        product: cw.created(&product("P-1", "SKU-1")),
    }
}

fn document_refs(p: &Parents) -> Vec<Reference> {
    vec![
        reference("account", Entity::Account, "A-1", &p.account),
        reference("lines/0/product", Entity::Product, "P-1", &p.product),
        reference("lines/1/product", Entity::Product, "P-1", &p.product),
    ]
}

fn invoice(bss_id: &str, number: &str, p: &Parents) -> Record {
    let data = Invoice {
        number: number.into(),
        account: "A-1".into(),
        invoice_type: None,
        stage: None,
        date: Some("2026-05-01".into()),
        due_date: None,
        terms: None,
        currency: None,
        lines: lines(),
        extra: vec![],
    };
    record(
        Entity::Invoice,
        bss_id,
        EntityData::Invoice(data),
        document_refs(p),
    )
}

fn order(bss_id: &str, p: &Parents) -> Record {
    let data = Order {
        number: format!("SO-{bss_id}"),
        account: "A-1".into(),
        contact: None,
        stage: Some("New".into()),
        order_date: Some("2026-05-01".into()),
        due_date: None,
        po_number: Some("PO-77".into()),
        terms: None,
        currency: None,
        lines: lines(),
        extra: vec![],
    };
    record(
        Entity::Order,
        bss_id,
        EntityData::Order(data),
        document_refs(p),
    )
}

fn payment(bss_id: &str, invoice_remote: &str) -> Record {
    let data = Payment {
        invoice: "I-1".into(),
        account: Some("A-1".into()),
        amount: "120.50".into(),
        payment_date: "2026-05-05".into(),
        method: "cc".into(),
        reference: None,
        extra: vec![],
    };
    record(
        Entity::Payment,
        bss_id,
        EntityData::Payment(data),
        vec![reference("invoice", Entity::Invoice, "I-1", invoice_remote)],
    )
}

fn subscription(bss_id: &str, p: &Parents) -> Record {
    let data = Subscription {
        account: "A-1".into(),
        product: "P-1".into(),
        name: format!("Backup {bss_id}"),
        billing_cycle: "Monthly".into(),
        quantity: "10".into(),
        unit_price: "4.50".into(),
        unit_cost: None,
        start_date: Some("2026-06-01".into()),
        cancelled_date: None,
        bill_customer: None,
        description: None,
        extra: vec![],
    };
    record(
        Entity::Subscription,
        bss_id,
        EntityData::Subscription(data),
        vec![
            reference("account", Entity::Account, "A-1", &p.account),
            reference("product", Entity::Product, "P-1", &p.product),
        ],
    )
}

/// The identity-conflict message of a result, which must be a `bss-id` rejection.
fn conflict(result: &Result<Pushed, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Rejected(fields))
            if fields.len() == 1 && fields[0].field == "bss-id" =>
        {
            fields[0].message.clone()
        }
        other => panic!("expected a bss-id rejection, got {other:?}"),
    }
}

fn found_again(result: Result<Pushed, ConnectorError>, only: &Value) -> Pushed {
    let pushed = result.unwrap();
    assert!(
        matches!(pushed.change, Change::Updated | Change::Unchanged),
        "{pushed:?}"
    );
    assert_eq!(pushed.remote_id, only["id"].to_string());
    pushed
}

#[test]
fn a_lost_account_create_is_found_again() {
    let cw = start();
    let result = cw.lost_then_retried(&account("A-1", "C-1"), 1);
    let companies = cw.sandbox.records("company/companies");
    assert_eq!(companies.len(), 1);
    let pushed = found_again(result, &companies[0]);
    assert_eq!(pushed.change, Change::Unchanged);
}

#[test]
fn a_lost_contact_create_is_told_from_a_namesake_by_email() {
    let cw = start();
    let company = cw.created(&account("A-1", "C-1"));
    let first = cw.created(&contact("K-1", &company, Some("sam.lee@one.example")));
    let result = cw.lost_then_retried(&contact("K-2", &company, Some("sam.lee@two.example")), 1);
    let contacts = cw.sandbox.records("company/contacts");
    assert_eq!(contacts.len(), 2, "two people of one name are two contacts");
    let second = found_again(result, &contacts[1]);
    assert_ne!(second.remote_id, first);
    let email_of = |c: &Value| {
        c["communicationItems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["communicationType"] == "Email")
            .map(|i| i["value"].as_str().unwrap().to_string())
    };
    assert_eq!(email_of(&contacts[0]).unwrap(), "sam.lee@one.example");
    assert_eq!(email_of(&contacts[1]).unwrap(), "sam.lee@two.example");

    // Two contacts both alike: no guess.
    cw.sandbox.insert(
        "company/contacts",
        json!({"firstName": "Sam", "lastName": "Lee", "company": {"id": company.parse::<i64>().unwrap()},
               "communicationItems": [{"type": {"id": 1}, "value": "sam.lee@two.example"}]}),
    );
    let message = conflict(&cw.push(&retry(&contact(
        "K-2",
        &company,
        Some("sam.lee@two.example"),
    ))));
    assert!(message.starts_with("ambiguous:"), "{message}");
    assert!(message.contains(&second.remote_id), "{message}");
}

#[test]
fn a_lost_product_create_is_found_again() {
    let cw = start();
    let result = cw.lost_then_retried(&product("P-1", "SKU-1"), 1);
    let items = cw.sandbox.records("procurement/catalog");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["integrationXRef"], "P-1");
    found_again(result, &items[0]);
}

#[test]
fn a_lost_invoice_create_is_found_again_and_gets_its_lines() {
    let cw = start();
    let p = parents(&cw);
    // POSTs: the invoice is the first after the parents.
    let result = cw.lost_then_retried(&invoice("I-1", "INV-1", &p), 1);
    let invoices = cw.sandbox.records("finance/invoices");
    assert_eq!(invoices.len(), 1);
    let pushed = found_again(result, &invoices[0]);
    assert_eq!(pushed.change, Change::Updated, "the lines were added");
    assert_eq!(cw.count("procurement/products"), 2);
}

#[test]
fn an_invoice_number_of_another_company_is_in_use() {
    let cw = start();
    let p = parents(&cw);
    let other = cw.created(&account("A-2", "C-2"));
    let held = cw.sandbox.insert(
        "finance/invoices",
        json!({"invoiceNumber": "INV-1", "type": "Standard", "company": {"id": other.parse::<i64>().unwrap()}}),
    );
    let message = conflict(&cw.push(&retry(&invoice("I-1", "INV-1", &p))));
    assert!(message.starts_with("in use:"), "{message}");
    assert!(
        message.contains(&format!("bss-host link INSTANCE invoice I-1 {held}")),
        "{message}"
    );
    assert_eq!(cw.count("finance/invoices"), 1, "nothing created");
}

#[test]
fn a_lost_order_create_is_found_again_by_its_description() {
    let cw = start();
    let p = parents(&cw);
    let result = cw.lost_then_retried(&order("O-1", &p), 1);
    let orders = cw.sandbox.records("sales/orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["description"], "BSS order O-1");
    assert_eq!(orders[0]["poNumber"], "PO-77");
    found_again(result, &orders[0]);
    assert_eq!(cw.count("procurement/products"), 2);

    // Once pushed, the order is not found under another BSS id, and two alike are not guessed at.
    let other = cw.push(&retry(&order("O-2", &p))).unwrap();
    assert_eq!(other.change, Change::Created);
    cw.sandbox.insert(
        "sales/orders",
        json!({"description": "BSS order O-1", "company": {"id": p.account.parse::<i64>().unwrap()},
               "status": {"id": 1}, "salesRep": {"id": 3}}),
    );
    let message = conflict(&cw.push(&retry(&order("O-1", &p))));
    assert!(message.starts_with("ambiguous:"), "{message}");
    assert!(message.contains(&orders[0]["id"].to_string()), "{message}");
}

#[test]
fn a_lost_payment_create_is_found_again_and_twins_are_not_guessed_at() {
    let cw = start();
    let p = parents(&cw);
    let invoice_id = cw.created(&invoice("I-1", "INV-1", &p));
    let result = cw.lost_then_retried(&payment("PAY-1", &invoice_id), 1);
    let payments = cw.sandbox.records("finance/invoices/payments");
    assert_eq!(payments.len(), 1);
    let pushed = result.unwrap();
    assert_eq!(pushed.change, Change::Unchanged);
    assert_eq!(
        pushed.remote_id,
        format!("{invoice_id}/{}", payments[0]["id"])
    );

    let twin = cw.sandbox.insert(
        &format!("finance/invoices/{invoice_id}/payments"),
        json!({"type": "CreditCard", "amount": 120.5, "paymentDate": "2026-05-05T00:00:00Z"}),
    );
    let message = conflict(&cw.push(&retry(&payment("PAY-1", &invoice_id))));
    assert!(message.starts_with("ambiguous:"), "{message}");
    assert!(
        message.contains(&format!("(ids {}, {invoice_id}/{twin})", pushed.remote_id)),
        "{message}"
    );
    assert_eq!(cw.count("finance/invoices/payments"), 2);
}

#[test]
fn a_lost_subscription_create_is_found_by_its_subscription_id() {
    let cw = start();
    let p = parents(&cw);
    cw.created(&contact("K-1", &p.account, Some("sam@buyer.example")));
    // POSTs: the agreement, then the addition.
    let result = cw.lost_then_retried(&subscription("S-1", &p), 2);
    let additions = cw.sandbox.records("finance/agreements/additions");
    assert_eq!(additions.len(), 1);
    assert_eq!(cw.count("finance/agreements"), 1);
    let pushed = result.unwrap();
    assert!(matches!(pushed.change, Change::Unchanged | Change::Updated));
    assert_eq!(
        pushed.remote_id,
        format!("{}/{}", additions[0]["agreementId"], additions[0]["id"])
    );

    // Another subscription alike in every field but its id is its own addition.
    let second = cw.push(&retry(&subscription("S-2", &p))).unwrap();
    assert_eq!(second.change, Change::Created);
    assert_eq!(cw.count("finance/agreements/additions"), 2);
}

#[test]
fn a_company_holding_the_identifier_is_adopted_only_with_this_records_key() {
    let cw = start();
    let by_hand = cw.sandbox.insert(
        "company/companies",
        json!({"identifier": "ACME-1", "name": "Acme (by hand)", "accountNumber": "OTHER", "city": "Springfield"}),
    );
    let message = conflict(&cw.push(&account("ACME-1", "C-9")));
    assert!(message.starts_with("in use:"), "{message}");
    assert!(
        message.contains(&format!("company {by_hand} already has identifier ACME-1")),
        "{message}"
    );
    assert!(
        message.contains(&format!("bss-host link INSTANCE account ACME-1 {by_hand}")),
        "{message}"
    );
    // A lost create's retry does not take it over either.
    let message = conflict(&cw.push(&retry(&account("ACME-1", "C-9"))));
    assert!(message.starts_with("in use:"), "{message}");

    cw.sandbox.patch(
        "company/companies",
        by_hand,
        json!({"accountNumber": "C-9"}),
    );
    let adopted = cw.push(&account("ACME-1", "C-9")).unwrap();
    assert_eq!(adopted.change, Change::Updated);
    assert_eq!(adopted.remote_id, by_hand.to_string());
    let companies = cw.sandbox.records("company/companies");
    assert_eq!(companies.len(), 1);
    assert_eq!(companies[0]["name"], "Company ACME-1");
}

#[test]
fn a_catalog_item_holding_the_code_is_adopted_only_with_this_records_key() {
    let cw = start();
    let by_hand = cw.sandbox.insert(
        "procurement/catalog",
        json!({"identifier": "SKU-1", "description": "By hand", "customerDescription": "By hand",
               "subcategory": {"id": 6}, "type": {"id": 1}}),
    );
    let message = conflict(&cw.push(&product("P-1", "SKU-1")));
    assert!(message.starts_with("in use:"), "{message}");
    assert!(
        message.contains(&format!("bss-host link INSTANCE product P-1 {by_hand}")),
        "{message}"
    );

    cw.sandbox.patch(
        "procurement/catalog",
        by_hand,
        json!({"integrationXRef": "P-1"}),
    );
    let adopted = cw.push(&product("P-1", "SKU-1")).unwrap();
    assert_eq!(
        (adopted.change, adopted.remote_id),
        (Change::Updated, by_hand.to_string())
    );
    assert_eq!(cw.count("procurement/catalog"), 1);
}

#[test]
fn a_dry_run_reconciles_by_reading_only() {
    let cw = start();
    let p = parents(&cw);
    let invoice_id = cw.created(&invoice("I-1", "INV-1", &p));
    cw.created(&payment("PAY-1", &invoice_id));
    cw.sandbox.clear_requests();
    let mut changed = account("A-1", "C-1");
    if let EntityData::Account(a) = &mut changed.data {
        a.name = "Renamed".into();
    }
    for (record, expected) in [
        (retry(&changed), Change::Updated),
        (retry(&payment("PAY-1", &invoice_id)), Change::Unchanged),
        (retry(&product("P-9", "SKU-9")), Change::Created),
        (account("ACME-2", "C-2"), Change::Created),
    ] {
        let pushed = cw.push_as(&record, true).unwrap();
        assert_eq!(pushed.change, expected, "{record:?}");
    }
    let writes: Vec<_> = cw
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn lines_leave_other_items_alone_and_twins_of_a_line_fail_the_invoice() {
    let cw = start();
    let p = parents(&cw);
    let invoice_id = cw.created(&invoice("I-1", "INV-1", &p));
    let id: i64 = invoice_id.parse().unwrap();
    let catalog_item: i64 = p.product.parse().unwrap();
    let theirs = cw.sandbox.insert(
        "procurement/products",
        json!({"catalogItem": {"id": catalog_item}, "invoice": {"id": id}, "billableOption": "Billable",
               "quantity": 1.0, "description": "added in ConnectWise"}),
    );
    let mut pushed = invoice("I-1", "INV-1", &p);
    pushed.remote_id = Some(invoice_id.clone());
    cw.push(&pushed).unwrap();
    assert!(cw.sandbox.record("procurement/products", theirs).is_some());
    assert_eq!(cw.count("procurement/products"), 3);

    let twin = cw.sandbox.insert(
        "procurement/products",
        json!({"catalogItem": {"id": catalog_item}, "invoice": {"id": id}, "billableOption": "Billable",
               "quantity": 2.0, "integrationXRef": "L2"}),
    );
    match cw.push(&pushed) {
        Err(ConnectorError::Rejected(fields)) => {
            assert_eq!(fields[0].field, "lines/1/line-id");
            assert!(fields[0].message.starts_with("ambiguous:"), "{fields:?}");
            assert!(fields[0].message.contains(&twin.to_string()), "{fields:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cw.count("procurement/products"), 4, "nothing deleted");
}
