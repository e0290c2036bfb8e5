//! Canonical BSS records as JSON: what `push --file` reads (a JSON array, or one object per line)
//! and what `pull` writes (NDJSON). Field names are those of the WIT records, kebab-case; `id` is
//! the BSS id. Unknown fields are refused (a misspelt field would otherwise be lost silently).
//!
//! This module also knows each entity's references to other records: which field names which
//! entity, and which references may wait (an account's primary contact is sent once it exists).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::bindings::types as wit;
use crate::contract::manifest::Entity;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Account {
    pub code: String,
    pub name: String,
    pub account_type: Option<String>,
    pub status: Option<String>,
    pub currency: Option<String>,
    pub billing_address: Option<Address>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub website: Option<String>,
    pub parent_account: Option<String>,
    pub primary_contact: Option<String>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Contact {
    pub account: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub fax: Option<String>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub customer_description: Option<String>,
    pub product_type: Option<String>,
    pub unit_type: Option<String>,
    pub price: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub taxable: Option<bool>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

/// A decimal written as a JSON string ("12.50") or number (12.5); kept as text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Decimal {
    Text(String),
    Number(serde_json::Number),
}

impl Decimal {
    fn text(&self) -> String {
        match self {
            Decimal::Text(t) => t.trim().to_string(),
            Decimal::Number(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Line {
    pub line_id: String,
    pub product: Option<String>,
    pub description: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub unit_cost: Option<Decimal>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Invoice {
    pub number: String,
    pub account: String,
    pub invoice_type: Option<String>,
    pub stage: Option<String>,
    pub date: Option<String>,
    pub due_date: Option<String>,
    pub terms: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<Line>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Order {
    pub number: String,
    pub account: String,
    pub contact: Option<String>,
    pub stage: Option<String>,
    pub order_date: Option<String>,
    pub due_date: Option<String>,
    pub po_number: Option<String>,
    pub terms: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<Line>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Payment {
    pub invoice: String,
    pub account: Option<String>,
    pub amount: Decimal,
    pub payment_date: String,
    pub method: String,
    pub reference: Option<String>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Subscription {
    pub account: String,
    pub product: String,
    pub name: String,
    pub billing_cycle: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub unit_cost: Option<Decimal>,
    pub start_date: Option<String>,
    pub cancelled_date: Option<String>,
    pub bill_customer: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub extra: Vec<CustomField>,
}

/// One record of a file: its BSS id and its data.
#[derive(Debug, Clone)]
pub struct BssRecord {
    pub id: String,
    pub data: wit::EntityData,
}

/// A record of a file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidRecord {
    /// 1-based position in the file (line for NDJSON, element for an array).
    pub position: usize,
    pub id: Option<String>,
    pub message: String,
}

/// A reference from a record to another record, by BSS id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReference {
    pub field: String,
    pub entity: Entity,
    pub bss_id: String,
    /// Whether the record may be sent without it (a cycle: sent on a later update).
    pub deferrable: bool,
}

fn custom(extra: Vec<CustomField>) -> Vec<wit::CustomField> {
    extra
        .into_iter()
        .map(|c| wit::CustomField {
            name: c.name,
            value: c.value,
        })
        .collect()
}

fn custom_back(extra: &[wit::CustomField]) -> Vec<CustomField> {
    extra
        .iter()
        .map(|c| CustomField {
            name: c.name.clone(),
            value: c.value.clone(),
        })
        .collect()
}

fn line(l: Line) -> wit::Line {
    wit::Line {
        line_id: l.line_id,
        product: l.product,
        description: l.description,
        quantity: l.quantity.text(),
        unit_price: l.unit_price.text(),
        unit_cost: l.unit_cost.map(|d| d.text()),
        extra: custom(l.extra),
    }
}

fn require(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{field}: must not be empty"))
    } else {
        Ok(())
    }
}

/// Parses one record of `entity` from its JSON object.
pub fn parse_record(entity: Entity, value: Value) -> Result<BssRecord, String> {
    let Value::Object(mut object) = value else {
        return Err("a record must be a JSON object".into());
    };
    let id = match object.remove("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id,
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("id: every record needs its BSS id (a non-empty string)".into()),
    };
    check_id(&id)?;
    let rest = Value::Object(object);
    let fail = |e: serde_json::Error| e.to_string();
    let data = match entity {
        Entity::Account => {
            let a: Account = serde_json::from_value(rest).map_err(fail)?;
            require("name", &a.name)?;
            require("code", &a.code)?;
            wit::EntityData::Account(wit::Account {
                code: a.code,
                name: a.name,
                account_type: a.account_type,
                status: a.status,
                currency: a.currency,
                billing_address: a.billing_address.map(|b| wit::Address {
                    line1: b.line1,
                    line2: b.line2,
                    city: b.city,
                    state: b.state,
                    zip: b.zip,
                    country: b.country,
                }),
                phone: a.phone,
                fax: a.fax,
                website: a.website,
                parent_account: a.parent_account,
                primary_contact: a.primary_contact,
                extra: custom(a.extra),
            })
        }
        Entity::Contact => {
            let c: Contact = serde_json::from_value(rest).map_err(fail)?;
            require("first-name", &c.first_name)?;
            wit::EntityData::Contact(wit::Contact {
                account: c.account,
                first_name: c.first_name,
                last_name: c.last_name,
                title: c.title,
                email: c.email,
                phone: c.phone,
                mobile: c.mobile,
                fax: c.fax,
                extra: custom(c.extra),
            })
        }
        Entity::Product => {
            let p: Product = serde_json::from_value(rest).map_err(fail)?;
            require("code", &p.code)?;
            require("name", &p.name)?;
            wit::EntityData::Product(wit::Product {
                code: p.code,
                name: p.name,
                description: p.description,
                customer_description: p.customer_description,
                product_type: p.product_type,
                unit_type: p.unit_type,
                price: p.price.map(|d| d.text()),
                cost: p.cost.map(|d| d.text()),
                taxable: p.taxable,
                extra: custom(p.extra),
            })
        }
        Entity::Invoice => {
            let i: Invoice = serde_json::from_value(rest).map_err(fail)?;
            require("number", &i.number)?;
            require("account", &i.account)?;
            wit::EntityData::Invoice(wit::Invoice {
                number: i.number,
                account: i.account,
                invoice_type: i.invoice_type,
                stage: i.stage,
                date: i.date,
                due_date: i.due_date,
                terms: i.terms,
                currency: i.currency,
                lines: i.lines.into_iter().map(line).collect(),
                extra: custom(i.extra),
            })
        }
        Entity::Order => {
            let o: Order = serde_json::from_value(rest).map_err(fail)?;
            require("account", &o.account)?;
            wit::EntityData::Order(wit::Order {
                number: o.number,
                account: o.account,
                contact: o.contact,
                stage: o.stage,
                order_date: o.order_date,
                due_date: o.due_date,
                po_number: o.po_number,
                terms: o.terms,
                currency: o.currency,
                lines: o.lines.into_iter().map(line).collect(),
                extra: custom(o.extra),
            })
        }
        Entity::Payment => {
            let p: Payment = serde_json::from_value(rest).map_err(fail)?;
            require("invoice", &p.invoice)?;
            require("method", &p.method)?;
            wit::EntityData::Payment(wit::Payment {
                invoice: p.invoice,
                account: p.account,
                amount: p.amount.text(),
                payment_date: p.payment_date,
                method: p.method,
                reference: p.reference,
                extra: custom(p.extra),
            })
        }
        Entity::Subscription => {
            let s: Subscription = serde_json::from_value(rest).map_err(fail)?;
            require("account", &s.account)?;
            require("product", &s.product)?;
            require("billing-cycle", &s.billing_cycle)?;
            wit::EntityData::Subscription(wit::Subscription {
                account: s.account,
                product: s.product,
                name: s.name,
                billing_cycle: s.billing_cycle,
                quantity: s.quantity.text(),
                unit_price: s.unit_price.text(),
                unit_cost: s.unit_cost.map(|d| d.text()),
                start_date: s.start_date,
                cancelled_date: s.cancelled_date,
                bill_customer: s.bill_customer,
                description: s.description,
                extra: custom(s.extra),
            })
        }
    };
    Ok(BssRecord { id, data })
}

/// The longest BSS id the host keeps (bytes of UTF-8).
pub const MAX_ID_BYTES: usize = 200;

/// Refuses ids that would be stored or sent wrongly: control characters (a NUL cuts C strings
/// and remote fields), surrounding spaces, and ids longer than [`MAX_ID_BYTES`].
pub fn check_id(id: &str) -> Result<(), String> {
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "id: {id:?} contains the control character U+{:04X}; BSS ids are printable text",
            c as u32
        ));
    }
    if id.trim() != id {
        return Err(format!(
            "id: {id:?} starts or ends with spaces; remove them (the remote would trim them and take it for another id)"
        ));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id: {} bytes long; BSS ids are at most {MAX_ID_BYTES} bytes",
            id.len()
        ));
    }
    Ok(())
}

/// Reads the records of a file one at a time: a JSON array (each top-level element is cut out
/// and parsed on its own) or NDJSON. Memory stays at one record, whatever the file's size.
pub struct RecordReader<R: std::io::BufRead> {
    input: R,
    array: Option<bool>,
    position: usize,
    line: usize,
    finished: bool,
}

impl<R: std::io::BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader {
            input,
            array: None,
            position: 0,
            line: 0,
            finished: false,
        }
    }

    fn peek_byte(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn skip_spaces(&mut self) -> std::io::Result<Option<u8>> {
        while let Some(b) = self.peek_byte()? {
            if b.is_ascii_whitespace() {
                self.input.consume(1);
            } else {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// The bytes of the next array element, up to (not including) the `,` or `]` after it.
    fn next_element(&mut self) -> std::io::Result<Result<Option<Vec<u8>>, String>> {
        let Some(first) = self.skip_spaces()? else {
            return Ok(Err("the JSON array is not closed with ]".into()));
        };
        if first == b']' {
            self.input.consume(1);
            return Ok(Ok(None));
        }
        let (mut depth, mut in_string, mut escaped) = (0i64, false, false);
        let mut element = Vec::new();
        while let Some(b) = self.peek_byte()? {
            if !in_string && depth == 0 && (b == b',' || b == b']') {
                if b == b',' {
                    self.input.consume(1);
                }
                return Ok(Ok(Some(element)));
            }
            self.input.consume(1);
            element.push(b);
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
        }
        if depth == 0 && !in_string && !element.is_empty() {
            // A whole element with the file ending after it: the next read says `]` is missing.
            return Ok(Ok(Some(element)));
        }
        Ok(Err("the JSON array ends in the middle of a record".into()))
    }
}

/// One item of a record file: its position and the JSON value, or why it is not one.
pub type FileItem = (usize, Result<Value, String>);

impl<R: std::io::BufRead> Iterator for RecordReader<R> {
    type Item = Result<FileItem, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let read = |e: std::io::Error| format!("the file could not be read: {e}");
        if self.array.is_none() {
            match self.skip_spaces() {
                Ok(Some(b'[')) => {
                    self.input.consume(1);
                    self.array = Some(true);
                }
                Ok(_) => self.array = Some(false),
                Err(e) => return Some(Err(read(e))),
            }
        }
        if self.array == Some(true) {
            self.position += 1;
            return match self.next_element() {
                Err(e) => Some(Err(read(e))),
                Ok(Ok(None)) => {
                    self.finished = true;
                    None
                }
                Ok(Ok(Some(bytes))) => Some(Ok((
                    self.position,
                    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}")),
                ))),
                Ok(Err(message)) => {
                    self.finished = true;
                    Some(Ok((
                        self.position,
                        Err(format!(
                            "the file is not a JSON array of records: {message}"
                        )),
                    )))
                }
            };
        }
        let mut line = String::new();
        loop {
            line.clear();
            match self.input.read_line(&mut line) {
                Err(e) => return Some(Err(read(e))),
                Ok(0) => {
                    self.finished = true;
                    return None;
                }
                Ok(_) => {
                    self.line += 1;
                    if !line.trim().is_empty() {
                        return Some(Ok((
                            self.line,
                            serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}")),
                        )));
                    }
                }
            }
        }
    }
}

/// Turns file items into records, refusing an id seen before in the same file, exactly or in
/// another case (the remote's identifiers are case-insensitive). Keeps a 128-bit digest and the
/// position per id rather than the id (about 40 bytes a record in the table), so a
/// million-record file costs tens of megabytes, not the ids' own size.
#[derive(Default)]
pub struct RecordChecker {
    // Byte arrays, not u128: alignment 1 keeps an entry at 20 bytes instead of 32.
    seen: std::collections::HashMap<[u8; 16], u32>,
}

impl RecordChecker {
    pub fn check(
        &mut self,
        entity: Entity,
        (position, value): FileItem,
    ) -> Result<BssRecord, InvalidRecord> {
        let id = value
            .as_ref()
            .ok()
            .and_then(|v| v.get("id"))
            .and_then(|v| v.as_str().map(str::to_string));
        let record = value
            .and_then(|v| parse_record(entity, v))
            .map_err(|message| InvalidRecord {
                position,
                id: id.clone(),
                message,
            })?;
        let digest: [u8; 16] = {
            use sha2::Digest as _;
            let hash = sha2::Sha256::digest(record.id.to_ascii_lowercase().as_bytes());
            hash[..16].try_into().unwrap_or_default()
        };
        if let Some(first) = self.seen.get(&digest) {
            return Err(InvalidRecord {
                position,
                id: Some(record.id.clone()),
                message: format!(
                    "id {:?} appears before in the file (record {first}), exactly or in another case; the remote treats ids that differ only in case as one",
                    record.id
                ),
            });
        }
        self.seen
            .insert(digest, u32::try_from(position).unwrap_or(u32::MAX));
        Ok(record)
    }
}

/// Parses a file: a JSON array of records, or one JSON object per line. Bad records are returned
/// with their position; duplicates of an id are refused after the first.
pub fn parse_file(entity: Entity, text: &str) -> (Vec<BssRecord>, Vec<InvalidRecord>) {
    let mut records = Vec::new();
    let mut invalid = Vec::new();
    let mut checker = RecordChecker::default();
    for item in RecordReader::new(text.as_bytes()) {
        let item = item.unwrap_or_else(|message| (0, Err(message)));
        match checker.check(entity, item) {
            Ok(record) => records.push(record),
            Err(bad) => invalid.push(bad),
        }
    }
    (records, invalid)
}

/// The records a record refers to.
pub fn references(data: &wit::EntityData) -> Vec<RecordReference> {
    let reference = |field: &str, entity: Entity, id: &str, deferrable: bool| RecordReference {
        field: field.to_string(),
        entity,
        bss_id: id.to_string(),
        deferrable,
    };
    let mut found = Vec::new();
    let lines = |found: &mut Vec<RecordReference>, lines: &[wit::Line]| {
        for (i, l) in lines.iter().enumerate() {
            if let Some(product) = &l.product {
                found.push(reference(
                    &format!("lines/{i}/product"),
                    Entity::Product,
                    product,
                    false,
                ));
            }
        }
    };
    match data {
        wit::EntityData::Account(a) => {
            if let Some(parent) = &a.parent_account {
                found.push(reference("parent-account", Entity::Account, parent, false));
            }
            if let Some(contact) = &a.primary_contact {
                found.push(reference("primary-contact", Entity::Contact, contact, true));
            }
        }
        wit::EntityData::Contact(c) => {
            if let Some(account) = &c.account {
                found.push(reference("account", Entity::Account, account, false));
            }
        }
        wit::EntityData::Product(_) => {}
        wit::EntityData::Invoice(i) => {
            found.push(reference("account", Entity::Account, &i.account, false));
            lines(&mut found, &i.lines);
        }
        wit::EntityData::Order(o) => {
            found.push(reference("account", Entity::Account, &o.account, false));
            if let Some(contact) = &o.contact {
                found.push(reference("contact", Entity::Contact, contact, false));
            }
            lines(&mut found, &o.lines);
        }
        wit::EntityData::Payment(p) => {
            found.push(reference("invoice", Entity::Invoice, &p.invoice, false));
        }
        wit::EntityData::Subscription(s) => {
            found.push(reference("account", Entity::Account, &s.account, false));
            found.push(reference("product", Entity::Product, &s.product, false));
        }
    }
    found
}

/// Fills a pulled record's reference field with the BSS id the host mapped it to.
pub fn set_reference(data: &mut wit::EntityData, field: &str, bss_id: &str) {
    let id = Some(bss_id.to_string());
    match (data, field) {
        (wit::EntityData::Account(a), "parent-account") => a.parent_account = id,
        (wit::EntityData::Account(a), "primary-contact") => a.primary_contact = id,
        (wit::EntityData::Contact(c), "account") => c.account = id,
        (wit::EntityData::Order(o), "contact") => o.contact = id,
        (wit::EntityData::Invoice(i), "account") => i.account = bss_id.to_string(),
        (wit::EntityData::Order(o), "account") => o.account = bss_id.to_string(),
        _ => {}
    }
}

/// A record as canonical JSON (for pull output and the retry queue).
pub fn to_json(id: Option<&str>, data: &wit::EntityData) -> Value {
    let dec = |d: &String| Decimal::Text(d.clone());
    let line_back = |l: &wit::Line| Line {
        line_id: l.line_id.clone(),
        product: l.product.clone(),
        description: l.description.clone(),
        quantity: dec(&l.quantity),
        unit_price: dec(&l.unit_price),
        unit_cost: l.unit_cost.as_ref().map(dec),
        extra: custom_back(&l.extra),
    };
    let mut value = match data {
        wit::EntityData::Account(a) => serde_json::to_value(Account {
            code: a.code.clone(),
            name: a.name.clone(),
            account_type: a.account_type.clone(),
            status: a.status.clone(),
            currency: a.currency.clone(),
            billing_address: a.billing_address.as_ref().map(|b| Address {
                line1: b.line1.clone(),
                line2: b.line2.clone(),
                city: b.city.clone(),
                state: b.state.clone(),
                zip: b.zip.clone(),
                country: b.country.clone(),
            }),
            phone: a.phone.clone(),
            fax: a.fax.clone(),
            website: a.website.clone(),
            parent_account: a.parent_account.clone(),
            primary_contact: a.primary_contact.clone(),
            extra: custom_back(&a.extra),
        }),
        wit::EntityData::Contact(c) => serde_json::to_value(Contact {
            account: c.account.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            title: c.title.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            mobile: c.mobile.clone(),
            fax: c.fax.clone(),
            extra: custom_back(&c.extra),
        }),
        wit::EntityData::Product(p) => serde_json::to_value(Product {
            code: p.code.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            customer_description: p.customer_description.clone(),
            product_type: p.product_type.clone(),
            unit_type: p.unit_type.clone(),
            price: p.price.as_ref().map(dec),
            cost: p.cost.as_ref().map(dec),
            taxable: p.taxable,
            extra: custom_back(&p.extra),
        }),
        wit::EntityData::Invoice(i) => serde_json::to_value(Invoice {
            number: i.number.clone(),
            account: i.account.clone(),
            invoice_type: i.invoice_type.clone(),
            stage: i.stage.clone(),
            date: i.date.clone(),
            due_date: i.due_date.clone(),
            terms: i.terms.clone(),
            currency: i.currency.clone(),
            lines: i.lines.iter().map(line_back).collect(),
            extra: custom_back(&i.extra),
        }),
        wit::EntityData::Order(o) => serde_json::to_value(Order {
            number: o.number.clone(),
            account: o.account.clone(),
            contact: o.contact.clone(),
            stage: o.stage.clone(),
            order_date: o.order_date.clone(),
            due_date: o.due_date.clone(),
            po_number: o.po_number.clone(),
            terms: o.terms.clone(),
            currency: o.currency.clone(),
            lines: o.lines.iter().map(line_back).collect(),
            extra: custom_back(&o.extra),
        }),
        wit::EntityData::Payment(p) => serde_json::to_value(Payment {
            invoice: p.invoice.clone(),
            account: p.account.clone(),
            amount: dec(&p.amount),
            payment_date: p.payment_date.clone(),
            method: p.method.clone(),
            reference: p.reference.clone(),
            extra: custom_back(&p.extra),
        }),
        wit::EntityData::Subscription(s) => serde_json::to_value(Subscription {
            account: s.account.clone(),
            product: s.product.clone(),
            name: s.name.clone(),
            billing_cycle: s.billing_cycle.clone(),
            quantity: dec(&s.quantity),
            unit_price: dec(&s.unit_price),
            unit_cost: s.unit_cost.as_ref().map(dec),
            start_date: s.start_date.clone(),
            cancelled_date: s.cancelled_date.clone(),
            bill_customer: s.bill_customer.clone(),
            description: s.description.clone(),
            extra: custom_back(&s.extra),
        }),
    }
    .expect("records serialise");
    if let Value::Object(object) = &mut value {
        object.retain(|_, v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
        object.insert(
            "id".into(),
            id.map(|i| Value::String(i.to_string()))
                .unwrap_or(Value::Null),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_parse_as_array_or_lines_and_bad_records_are_named() {
        let ndjson = r#"{"id":"A1","code":"C1","name":"One","parent-account":"P"}
{"id":"A2","code":"C2","nmae":"typo"}
not json
{"id":"A1","code":"C1","name":"Again"}
{"code":"C3","name":"No id"}"#;
        let (records, invalid) = parse_file(Entity::Account, ndjson);
        assert_eq!(records.len(), 1);
        assert_eq!(references(&records[0].data)[0].bss_id, "P");
        let messages: Vec<String> = invalid
            .iter()
            .map(|i| format!("{}: {}", i.position, i.message))
            .collect();
        assert!(
            messages[0].starts_with("2: unknown field `nmae`"),
            "{messages:?}"
        );
        assert!(messages[1].starts_with("3: not JSON"), "{messages:?}");
        assert!(
            messages[2].contains("appears before in the file (record 1)"),
            "{messages:?}"
        );
        assert!(
            messages[3].contains("id: every record needs its BSS id"),
            "{messages:?}"
        );

        let array =
            json!([{ "id": "P1", "code": "SKU", "name": "Thing", "price": 12.5, "cost": "3.10" }])
                .to_string();
        let (records, invalid) = parse_file(Entity::Product, &array);
        assert!(invalid.is_empty());
        let back = to_json(Some("P1"), &records[0].data);
        assert_eq!(back["price"], "12.5");
        assert_eq!(back["cost"], "3.10");
        assert_eq!(back["id"], "P1");
    }

    #[test]
    fn an_array_is_read_element_by_element_whatever_its_strings_hold() {
        let text = r#" [ {"id":"A1","code":"C,1]","name":"Brace } and \" quote"},
            {"id":"a1","code":"C2","name":"Same id, other case"} ,{"id":"A3","code":"C3","name":"x\\"} ]"#;
        let (records, invalid) = parse_file(Entity::Account, text);
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["A1", "A3"], "{invalid:?}");
        assert_eq!(invalid.len(), 1);
        assert_eq!(invalid[0].position, 2);
        let (_, invalid) = parse_file(Entity::Account, r#"[{"id":"A1","code":"C","name":"n"}"#);
        assert!(invalid[0].message.contains("not closed"), "{invalid:?}");
        let (_, invalid) = parse_file(
            Entity::Account,
            r#"{"id":"bad\u0000id","code":"C","name":"n"}"#,
        );
        assert!(
            invalid[0].message.contains("control character U+0000"),
            "{invalid:?}"
        );
    }
}
