//! What the native tests against the sandbox share: a small blocking HTTP host over loopback
//! (settings and lookups of a configured instance), the sandbox started in-process, and builders
//! of BSS records.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cw_sandbox::{Faults, Sandbox, SandboxConfig};
use plugin_connectwise::connector;
use plugin_connectwise::exports::{
    Change, ConflictPolicy, LastPushed, PushItem, PushOptions, Pushed,
};
use plugin_connectwise::host::{Host, HttpError, Level, Method, Request, Response};
use plugin_connectwise::types::{
    Account, Address, ConnectorError, Contact, Entity, EntityData, Invoice, Line, Order, Payment,
    Product, Record, Reference, Subscription,
};

pub const CLIENT_ID: &str = "0c8f3c52-5b7e-4c1a-9d8e-1f2a3b4c5d6e";
/// Long enough for any answer of a loopback sandbox, short enough for a test to wait out.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// Polls a future that never waits (the sandbox's `start` binds and spawns, awaiting nothing).
pub fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}

/// A host over plain blocking HTTP/1.1, one connection per request.
pub struct SandboxHost {
    pub addr: std::net::SocketAddr,
    pub authorization: String,
    pub settings: RefCell<BTreeMap<String, String>>,
    pub lookups: BTreeMap<(&'static str, &'static str), &'static str>,
    pub timeout: Cell<Duration>,
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
            settings: RefCell::new(settings),
            lookups,
            timeout: Cell::new(TIMEOUT),
        }
    }
}

pub fn transport(e: std::io::Error) -> HttpError {
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
        self.settings.borrow().get(key).cloned()
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

pub struct Cw {
    pub sandbox: Sandbox,
    pub host: SandboxHost,
    /// What was last pushed per BSS id, as the host keeps it (the base of three-way updates).
    pub last_pushed: RefCell<BTreeMap<String, LastPushed>>,
    /// The conflict policy pushes use.
    pub conflicts: Cell<ConflictPolicy>,
}

pub fn start() -> Cw {
    start_with(SandboxConfig::default())
}

pub fn start_with(config: SandboxConfig) -> Cw {
    let sandbox = ready(Sandbox::start(config)).unwrap();
    let host = SandboxHost::new(&sandbox);
    Cw {
        sandbox,
        host,
        last_pushed: RefCell::default(),
        conflicts: Cell::new(ConflictPolicy::BssWins),
    }
}

impl Cw {
    /// Sets (or, with `None`, clears) a setting of the instance.
    pub fn set(&self, key: &str, value: Option<&str>) {
        let mut settings = self.host.settings.borrow_mut();
        match value {
            Some(value) => settings.insert(key.to_string(), value.to_string()),
            None => settings.remove(key),
        };
    }

    pub fn pull(
        &self,
        entity: Entity,
        since: Option<&str>,
    ) -> Result<plugin_connectwise::exports::PullPage, ConnectorError> {
        connector::pull(&self.host, entity, since, None)
    }

    /// Pushes one record with the last push the host would hand over, and keeps it as the host
    /// does when the push is accepted.
    pub fn push_as(&self, record: &Record, dry_run: bool) -> Result<Pushed, ConnectorError> {
        let item = PushItem {
            record: record.clone(),
            last_pushed: self.last_pushed.borrow().get(&record.bss_id).cloned(),
        };
        let options = PushOptions {
            dry_run,
            conflicts: self.conflicts.get(),
        };
        let result = connector::push(&self.host, record.entity, vec![item], options)
            .unwrap()
            .remove(0);
        if let Ok(pushed) = &result
            && !dry_run
            && pushed.change != Change::Held
        {
            self.last_pushed.borrow_mut().insert(
                record.bss_id.clone(),
                LastPushed {
                    data: record.data.clone(),
                    references: record.references.clone(),
                },
            );
        }
        result
    }

    pub fn push(&self, record: &Record) -> Result<Pushed, ConnectorError> {
        self.push_as(record, false)
    }

    pub fn created(&self, record: &Record) -> String {
        let pushed = self.push(record).unwrap();
        assert_eq!(pushed.change, Change::Created, "{record:?}");
        pushed.remote_id
    }

    /// Pushes `record` with the answer to its `nth` POST lost: the write is applied, the
    /// connector times out. Then the host's retry: no remote id, `maybe_created`.
    pub fn lost_then_retried(&self, record: &Record, nth: u64) -> Result<Pushed, ConnectorError> {
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

    pub fn count(&self, resource: &str) -> usize {
        self.sandbox.records(resource).len()
    }
}

/// The host's second try of a create whose outcome is unknown.
pub fn retry(record: &Record) -> Record {
    Record {
        remote_id: None,
        maybe_created: true,
        ..record.clone()
    }
}

pub fn record(
    entity: Entity,
    bss_id: &str,
    data: EntityData,
    references: Vec<Reference>,
) -> Record {
    Record {
        entity,
        bss_id: bss_id.into(),
        remote_id: None,
        maybe_created: false,
        data,
        references,
    }
}

pub fn reference(field: &str, entity: Entity, bss_id: &str, remote_id: &str) -> Reference {
    Reference {
        field: field.into(),
        entity,
        bss_id: bss_id.into(),
        remote_id: remote_id.into(),
    }
}

pub fn account(bss_id: &str, code: &str) -> Record {
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

pub fn contact(bss_id: &str, account_remote: &str, email: Option<&str>) -> Record {
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

pub fn product(bss_id: &str, code: &str) -> Record {
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

pub fn lines() -> Vec<Line> {
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
pub struct Parents {
    pub account: String,
    pub product: String,
}

pub fn parents(cw: &Cw) -> Parents {
    Parents {
        account: cw.created(&account("A-1", "C-1")),
        product: cw.created(&product("P-1", "SKU-1")),
    }
}

pub fn document_refs(p: &Parents) -> Vec<Reference> {
    vec![
        reference("account", Entity::Account, "A-1", &p.account),
        reference("lines/0/product", Entity::Product, "P-1", &p.product),
        reference("lines/1/product", Entity::Product, "P-1", &p.product),
    ]
}

pub fn invoice(bss_id: &str, number: &str, p: &Parents) -> Record {
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

pub fn order(bss_id: &str, p: &Parents) -> Record {
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

pub fn payment(bss_id: &str, invoice_remote: &str) -> Record {
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

pub fn subscription(bss_id: &str, p: &Parents) -> Record {
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
