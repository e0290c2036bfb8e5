//! What ConnectWise users own, against the sandbox: lines staff add, closed documents, expired
//! agreements, custom fields, who is billed; and what the connector says about its setup (choices
//! without inactive values, an older server). Staff edits are the sandbox handle's `insert` and
//! `patch` (attributed to a ConnectWise user) between two pushes.

mod common;

use common::*;
use cw_sandbox::SandboxConfig;
use plugin_connectwise::connector;
use plugin_connectwise::exports::{Change, ConflictPolicy};
use plugin_connectwise::host::{Host, Method, Request};
use plugin_connectwise::types::{
    ConnectorError, CustomField, Entity, EntityData, FieldError, Line, Record,
};
use serde_json::{Value, json};

/// 2026-06-01T12:00:00Z.
const JUNE_2026: i64 = 1_780_315_200;

fn extra(pairs: &[(&str, &str)]) -> Vec<CustomField> {
    pairs
        .iter()
        .map(|(name, value)| CustomField {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// The value of custom field `id` of a record as ConnectWise shows it.
fn custom(record: &Value, id: i64) -> Option<Value> {
    record["customFields"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id)
        .and_then(|f| f.get("value").cloned())
}

/// The fields of a rejection.
fn rejected(result: &Result<impl std::fmt::Debug, ConnectorError>) -> Vec<FieldError> {
    match result {
        Err(ConnectorError::Rejected(fields)) => fields.clone(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn updated(mut record: Record, remote_id: &str) -> Record {
    record.remote_id = Some(remote_id.to_string());
    record
}

fn line(id: &str, quantity: &str) -> Line {
    Line {
        line_id: id.into(),
        product: Some("P-1".into()),
        description: Some(format!("line {id}")),
        quantity: quantity.into(),
        unit_price: "10".into(),
        unit_cost: None,
        extra: vec![],
    }
}

fn items_of(cw: &Cw, invoice: i64) -> Vec<Value> {
    cw.sandbox
        .records("procurement/products")
        .into_iter()
        .filter(|i| i["invoice"]["id"] == invoice)
        .collect()
}

#[test]
fn a_line_added_in_connectwise_survives_an_invoice_update() {
    let cw = start();
    let p = parents(&cw);
    let remote = cw.created(&invoice("I-1", "INV-1", &p));
    let id: i64 = remote.parse().unwrap();
    let before = items_of(&cw, id);
    let l1 = before
        .iter()
        .find(|i| i["integrationXRef"] == "bss:L1")
        .unwrap()["id"]
        .clone();

    // Staff add a line in ConnectWise between two pushes.
    let theirs = cw.sandbox.insert(
        "procurement/products",
        json!({"catalogItem": {"id": p.product.parse::<i64>().unwrap()}, "invoice": {"id": id},
               "company": {"id": p.account.parse::<i64>().unwrap()}, "billableOption": "NoCharge",
               "quantity": 1.0, "price": 0.0, "description": "on-site visit (added by staff)"}),
    );
    let theirs_before = cw.sandbox.record("procurement/products", theirs).unwrap();
    // And another integration adds one marked with its own reference.
    let other = cw.sandbox.insert(
        "procurement/products",
        json!({"catalogItem": {"id": p.product.parse::<i64>().unwrap()}, "invoice": {"id": id},
               "company": {"id": p.account.parse::<i64>().unwrap()}, "billableOption": "Billable",
               "quantity": 1.0, "price": 9.0, "integrationXRef": "psa-sync:77"}),
    );

    // The BSS changes line 1, drops line 2 and adds line 3.
    let mut changed = updated(invoice("I-1", "INV-1", &p), &remote);
    if let EntityData::Invoice(data) = &mut changed.data {
        data.lines = vec![line("L1", "5"), line("L3", "1")];
    }
    let pushed = cw.push(&changed).unwrap();
    assert_eq!(pushed.change, Change::Updated);
    assert!(
        pushed.warnings.iter().any(|w| w.starts_with("2 item(s)")),
        "the report counts the lines left alone: {:?}",
        pushed.warnings
    );

    let after = items_of(&cw, id);
    let xrefs: Vec<Option<&str>> = after
        .iter()
        .map(|i| i["integrationXRef"].as_str())
        .collect();
    assert_eq!(
        xrefs,
        [Some("bss:L1"), None, Some("psa-sync:77"), Some("bss:L3")],
        "{after:#?}"
    );
    assert!(cw.sandbox.record("procurement/products", other).is_some());
    let ours = after
        .iter()
        .find(|i| i["integrationXRef"] == "bss:L1")
        .unwrap();
    assert_eq!(ours["id"], l1, "line 1 kept its item");
    assert_eq!(ours["quantity"], 5.0);
    assert_eq!(
        cw.sandbox.record("procurement/products", theirs).unwrap(),
        theirs_before,
        "the staff line is untouched"
    );
    // Nothing left to do, and the staff line still stands.
    cw.sandbox.clear_requests();
    let again = cw.push(&changed).unwrap().change;
    let writes: Vec<_> = cw
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(again, Change::Unchanged, "{writes:#?}");
    assert_eq!(items_of(&cw, id).len(), 4);
}

#[test]
fn a_closed_invoice_or_order_is_not_patched_and_is_skipped() {
    let cw = start();
    let p = parents(&cw);
    let remote = cw.created(&invoice("I-1", "INV-1", &p));
    let id: i64 = remote.parse().unwrap();
    // The accountant posts it as paid.
    cw.sandbox
        .patch("finance/invoices", id, json!({"status": {"id": 4}}));
    let held = cw.sandbox.record("finance/invoices", id).unwrap();

    let mut changed = updated(invoice("I-1", "INV-1", &p), &remote);
    if let EntityData::Invoice(data) = &mut changed.data {
        data.due_date = Some("2026-07-01".into());
        data.lines = vec![line("L1", "9")];
    }
    cw.sandbox.clear_requests();
    match cw.push(&changed) {
        Err(ConnectorError::Unsupported(message)) => {
            assert_eq!(message, "skipped: closed in ConnectWise (status Paid)")
        }
        other => panic!("{other:?}"),
    }
    let writes: Vec<_> = cw
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(cw.sandbox.record("finance/invoices", id).unwrap(), held);
    assert_eq!(items_of(&cw, id).len(), 2, "its lines stay");

    // Reopened, it is the BSS's to update again.
    cw.sandbox
        .patch("finance/invoices", id, json!({"status": {"id": 2}}));
    assert_eq!(cw.push(&changed).unwrap().change, Change::Updated);

    // A sales order whose status is closed is skipped the same way.
    let order_remote = cw.created(&order("O-1", &p));
    cw.sandbox.patch(
        "sales/orders",
        order_remote.parse().unwrap(),
        json!({"status": {"id": 6}}),
    );
    let mut changed = updated(order("O-1", &p), &order_remote);
    if let EntityData::Order(data) = &mut changed.data {
        data.po_number = Some("PO-78".into());
    }
    match cw.push(&changed) {
        Err(ConnectorError::Unsupported(message)) => {
            assert_eq!(message, "skipped: closed in ConnectWise (status Closed)")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cw.sandbox.records("sales/orders")[0]["poNumber"], "PO-77");
}

#[test]
fn an_addition_never_lands_on_an_expired_or_cancelled_agreement() {
    let cw = start();
    cw.sandbox.set_clock(JUNE_2026);
    let p = parents(&cw);
    let contact: i64 = cw
        .created(&contact("K-1", &p.account, Some("sam@buyer.example")))
        .parse()
        .unwrap();
    let company: i64 = p.account.parse().unwrap();
    let agreement = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "type": {"id": 1}, "company": {"id": company},
                              "contact": {"id": contact}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        cw.sandbox.insert("finance/agreements", body)
    };
    let expired = agreement(
        "Old monthly",
        json!({"agreementStatus": "Expired", "endDate": "2024-12-31T00:00:00Z"}),
    );
    // Its status not updated yet, but its end date passed last month.
    let ended = agreement(
        "Ended monthly",
        json!({"agreementStatus": "Active", "endDate": "2026-05-31T00:00:00Z"}),
    );
    let cancelled = agreement(
        "Cancelled monthly",
        json!({"agreementStatus": "Cancelled", "cancelledFlag": true, "dateCancelled": "2025-03-01T00:00:00Z"}),
    );
    let inactive = agreement("Paused monthly", json!({"agreementStatus": "Inactive"}));

    let first = cw.created(&subscription("S-1", &p));
    let (agreement_id, _) = first.split_once('/').unwrap();
    let agreement_id: i64 = agreement_id.parse().unwrap();
    for old in [expired, ended, cancelled, inactive] {
        assert_ne!(agreement_id, old);
        assert!(
            cw.sandbox
                .records(&format!("finance/agreements/{old}/additions"))
                .is_empty()
        );
    }
    let new = cw
        .sandbox
        .record("finance/agreements", agreement_id)
        .unwrap();
    assert_eq!(new["agreementStatus"], "Active");
    // The next subscription joins the new agreement rather than opening another.
    let second = cw.created(&subscription("S-2", &p));
    assert!(second.starts_with(&format!("{agreement_id}/")), "{second}");
    assert_eq!(cw.count("finance/agreements"), 5);

    // Once staff let it run out (end date yesterday), a third gets an agreement of its own; one
    // running to the end of the year is used.
    cw.sandbox.patch(
        "finance/agreements",
        agreement_id,
        json!({"endDate": "2026-05-31T00:00:00Z"}),
    );
    let running = agreement(
        "Running monthly",
        json!({"agreementStatus": "Active", "endDate": "2026-12-31T00:00:00Z"}),
    );
    let third = cw.created(&subscription("S-3", &p));
    assert!(third.starts_with(&format!("{running}/")), "{third}");
}

#[test]
fn bill_customer_follows_the_record_then_the_product_billable_option() {
    let cw = start();
    let p = parents(&cw);
    cw.created(&contact("K-1", &p.account, Some("sam@buyer.example")));
    cw.set("product-billable-option", Some("DoNotBill"));
    let by_setting = cw.created(&subscription("S-1", &p));
    let mut own = subscription("S-2", &p);
    if let EntityData::Subscription(data) = &mut own.data {
        data.bill_customer = Some("NoCharge".into());
    }
    let by_record = cw.created(&own);
    let bill = |remote: &str| {
        let (agreement, id) = remote.split_once('/').unwrap();
        cw.sandbox
            .record(
                &format!("finance/agreements/{agreement}/additions"),
                id.parse().unwrap(),
            )
            .unwrap()["billCustomer"]
            .clone()
    };
    assert_eq!(bill(&by_setting), "DoNotBill");
    assert_eq!(bill(&by_record), "NoCharge");

    // The setting changes: an existing addition keeps what it has (staff may have chosen it),
    // new ones follow the setting, and a record that names its option changes it.
    cw.set("product-billable-option", Some("Billable"));
    let again = updated(subscription("S-1", &p), &by_setting);
    assert_eq!(cw.push(&again).unwrap().change, Change::Unchanged);
    assert_eq!(bill(&by_setting), "DoNotBill");
    let mut named = again.clone();
    if let EntityData::Subscription(data) = &mut named.data {
        data.bill_customer = Some("Billable".into());
    }
    assert_eq!(cw.push(&named).unwrap().change, Change::Updated);
    assert_eq!(bill(&by_setting), "Billable");
}

#[test]
fn the_order_number_is_found_on_the_sales_order() {
    let cw = start();
    let p = parents(&cw);
    let remote = cw.created(&order("O-1", &p));
    // Staff search sales orders for the BSS number.
    let url = format!(
        "{}/v4_6_release/apis/3.0/sales/orders?conditions={}",
        cw.sandbox.base_url(),
        plugin_connectwise::client::encode("description contains 'SO-O-1'")
    );
    let response = cw
        .host
        .send(&Request {
            method: Method::Get,
            url,
            headers: vec![],
            body: None,
        })
        .unwrap();
    let found: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["id"].to_string(), remote);
    assert_eq!(found[0]["description"], "BSS order SO-O-1 (BSS id O-1)");
}

#[test]
fn extra_reaches_custom_fields_and_comes_back_on_pull() {
    let cw = start();
    // No company yet: captions are looked up among every screen's fields, where "Region" is
    // both a company and a contact field.
    let mut first = account("A-0", "C-0");
    if let EntityData::Account(data) = &mut first.data {
        data.extra = extra(&[("Region", "West")]);
    }
    let fields = rejected(&cw.push(&first));
    assert_eq!(fields[0].field, "extra/Region");
    assert!(fields[0].message.contains("ids 3, 8"), "{fields:?}");
    assert_eq!(cw.count("company/companies"), 0);

    // By id, and by captions found once.
    let mut acme = account("A-1", "C-1");
    if let EntityData::Account(data) = &mut acme.data {
        data.extra = extra(&[("3", "West"), ("seats", "12"), ("Managed", "yes")]);
    }
    let remote = cw.created(&acme);
    let id: i64 = remote.parse().unwrap();
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(custom(&company, 3), Some(json!("West")));
    assert_eq!(custom(&company, 4), Some(json!(12.0)));
    assert_eq!(custom(&company, 5), Some(json!(true)));

    // Staff fill a field the BSS does not know; the BSS changes its region and drops the seats
    // and managed entries it had set (so they are cleared).
    cw.sandbox.patch(
        "company/companies",
        id,
        json!({"customFields": [{"id": 3, "value": "West"}, {"id": 4, "value": 12.0},
                                {"id": 5, "value": true}, {"id": 6, "value": "2026-09-01T00:00:00Z"}]}),
    );
    let mut moved = updated(account("A-1", "C-1"), &remote);
    if let EntityData::Account(data) = &mut moved.data {
        data.extra = extra(&[("region", "East")]);
    }
    assert_eq!(cw.push(&moved).unwrap().change, Change::Updated);
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(custom(&company, 3), Some(json!("East")));
    assert_eq!(
        custom(&company, 4),
        None,
        "the BSS had set it, and cleared it"
    );
    assert_eq!(
        custom(&company, 5),
        None,
        "the BSS had set it, and cleared it"
    );
    assert_eq!(
        custom(&company, 6),
        Some(json!("2026-09-01T00:00:00Z")),
        "kept"
    );
    assert_eq!(cw.push(&moved).unwrap().change, Change::Unchanged);

    // Pull returns them by caption.
    let page = cw.pull(Entity::Account, None).unwrap();
    let EntityData::Account(pulled) = &page.records[0].data else {
        panic!()
    };
    assert_eq!(
        pulled.extra,
        extra(&[("Region", "East"), ("Renewal Date", "2026-09-01T00:00:00Z")])
    );

    // An entry that names no field, or a value the field cannot take, refuses the record.
    let mut odd = account("A-2", "C-2");
    if let EntityData::Account(data) = &mut odd.data {
        data.extra = extra(&[("Colour", "red"), ("Seats", "a dozen")]);
    }
    let fields = rejected(&cw.push(&odd));
    let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(named, ["extra/Colour", "extra/Seats"]);
    assert_eq!(cw.count("company/companies"), 1, "nothing created");

    // Contacts, catalog items, invoices and their lines, orders.
    let mut person = contact("K-1", &remote, Some("sam@acme.example"));
    if let EntityData::Contact(data) = &mut person.data {
        data.extra = extra(&[("Preferred Language", "fr")]);
    }
    let person_id: i64 = cw.created(&person).parse().unwrap();
    let stored = cw.sandbox.record("company/contacts", person_id).unwrap();
    assert_eq!(custom(&stored, 7), Some(json!("fr")));
    let page = cw.pull(Entity::Contact, None).unwrap();
    let EntityData::Contact(pulled) = &page.records[0].data else {
        panic!()
    };
    assert_eq!(pulled.extra, extra(&[("Preferred Language", "fr")]));

    let mut item = product("P-1", "SKU-1");
    if let EntityData::Product(data) = &mut item.data {
        data.extra = extra(&[("Vendor SKU", "V-100")]);
    }
    let item_id = cw.created(&item);
    let stored = cw
        .sandbox
        .record("procurement/catalog", item_id.parse().unwrap())
        .unwrap();
    assert_eq!(custom(&stored, 9), Some(json!("V-100")));

    let p = Parents {
        account: remote.clone(),
        product: item_id,
    };
    let mut bill = invoice("I-1", "INV-1", &p);
    if let EntityData::Invoice(data) = &mut bill.data {
        data.extra = extra(&[("BSS Reference", "I-1")]);
        data.lines[0].extra = extra(&[("Line Note", "first")]);
    }
    let bill_id: i64 = cw.created(&bill).parse().unwrap();
    let stored = cw.sandbox.record("finance/invoices", bill_id).unwrap();
    assert_eq!(custom(&stored, 10), Some(json!("I-1")));
    let lines = items_of(&cw, bill_id);
    assert_eq!(custom(&lines[0], 12), Some(json!("first")));
    assert_eq!(custom(&lines[1], 12), None);
    // A line's unknown entry is named by its line.
    if let EntityData::Invoice(data) = &mut bill.data {
        data.lines[1].extra = extra(&[("Colour", "red")]);
    }
    let fields = rejected(&cw.push(&updated(bill, &bill_id.to_string())));
    assert_eq!(fields[0].field, "lines/1/extra/Colour");

    let mut sale = order("O-1", &p);
    if let EntityData::Order(data) = &mut sale.data {
        data.extra = extra(&[("BSS Order Number", "SO-O-1")]);
    }
    let sale_id: i64 = cw.created(&sale).parse().unwrap();
    let stored = cw.sandbox.record("sales/orders", sale_id).unwrap();
    assert_eq!(custom(&stored, 11), Some(json!("SO-O-1")));
}

#[test]
fn extra_that_cannot_be_sent_is_refused() {
    let cw = start();
    let p = parents(&cw);
    cw.created(&contact("K-1", &p.account, Some("sam@buyer.example")));
    // The Subscription ID field carries the BSS id: extra cannot set it.
    let mut sub = subscription("S-1", &p);
    if let EntityData::Subscription(data) = &mut sub.data {
        data.extra = extra(&[("Subscription ID", "other")]);
    }
    let fields = rejected(&cw.push(&sub));
    assert_eq!(fields[0].field, "extra/Subscription ID");
    // Invoice payments have no custom fields.
    let invoice_id = cw.created(&invoice("I-1", "INV-1", &p));
    let mut pay = payment("PAY-1", &invoice_id);
    if let EntityData::Payment(data) = &mut pay.data {
        data.extra = extra(&[("Batch", "7")]);
    }
    let fields = rejected(&cw.push(&pay));
    assert_eq!(fields[0].field, "extra/Batch");
    assert_eq!(cw.count("finance/invoices/payments"), 0);
    // A blank name would match every field without a caption: it is refused, named.
    let mut blank = invoice("I-2", "INV-2", &p);
    if let EntityData::Invoice(data) = &mut blank.data {
        data.extra = extra(&[(" ", "x")]);
    }
    let fields = rejected(&cw.push(&blank));
    assert!(fields[0].message.contains("needs a name"), "{fields:?}");
}

#[test]
fn line_ids_that_differ_only_by_spaces_are_one_line() {
    let cw = start();
    let p = parents(&cw);
    let mut doubled = invoice("I-1", "INV-1", &p);
    if let EntityData::Invoice(data) = &mut doubled.data {
        data.lines = vec![line("A", "1"), line("A ", "2")];
    }
    let fields = rejected(&cw.push(&doubled));
    assert_eq!(fields[0].field, "lines/1/line-id", "{fields:?}");
    assert_eq!(cw.count("finance/invoices"), 0, "nothing written");
}

#[test]
fn billing_is_left_to_connectwise() {
    let cw = start();
    let parent = cw.created(&account("P-1", "C-P"));
    let mut child = account("A-1", "C-1");
    if let EntityData::Account(data) = &mut child.data {
        data.parent_account = Some("P-1".into());
    }
    child.references = vec![reference("parent-account", Entity::Account, "P-1", &parent)];
    let id: i64 = cw.created(&child).parse().unwrap();
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["parentCompany"]["id"].to_string(), parent);
    assert!(company.get("billToCompany").is_none(), "{company}");
    // Staff bill the child to someone else; an update leaves it.
    let other: i64 = cw.created(&account("B-1", "C-B")).parse().unwrap();
    cw.sandbox.patch(
        "company/companies",
        id,
        json!({"billToCompany": {"id": other}}),
    );
    let mut renamed = updated(child, &id.to_string());
    if let EntityData::Account(data) = &mut renamed.data {
        data.name = "Renamed".into();
    }
    assert_eq!(cw.push(&renamed).unwrap().change, Change::Updated);
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["billToCompany"]["id"], other);
}

#[test]
fn choices_leave_out_inactive_values() {
    let cw = start();
    let statuses = connector::lookup_choices(&cw.host, "company-statuses").unwrap();
    let names: Vec<&str> = statuses.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        names,
        ["Active", "Not Approved", "Imported", "Credit Hold"],
        "Inactive (inactiveFlag) is left out"
    );
    let fields = connector::lookup_choices(&cw.host, "addition-custom-fields").unwrap();
    assert_eq!(fields[0].label, "Subscription Name (AgreementAddition)");
    assert_eq!(fields[2].label, "Region (Company)");
}

#[test]
fn an_older_server_gives_a_warning_not_an_error() {
    let cw = start();
    let summary = connector::activate(&cw.host).unwrap();
    assert!(!summary.contains("warning"), "{summary}");
    assert!(summary.contains("version v2026.4"), "{summary}");

    let old = start_with(SandboxConfig {
        version: "v2025.1".into(),
        ..SandboxConfig::default()
    });
    let summary = connector::activate(&old.host).unwrap();
    assert!(
        summary.contains(
            "warning: ConnectWise runs version v2025.1, older than the API version 2026.4"
        ),
        "{summary}"
    );

    // A setting naming an inactive record is a warning too.
    old.set("import-account-id", Some("2"));
    let summary = connector::activate(&old.host).unwrap();
    assert!(
        summary.contains("import-account-id names company status 2 (Inactive)"),
        "{summary}"
    );
}

/// The account `A-1` with a phone number and the name `name`.
fn acme(name: &str, phone: Option<&str>) -> Record {
    let mut record = account("A-1", "C-1");
    if let EntityData::Account(data) = &mut record.data {
        data.name = name.into();
        data.phone = phone.map(str::to_string);
    }
    record
}

#[test]
fn a_field_staff_set_survives_an_update_and_one_the_bss_cleared_is_removed() {
    let cw = start();
    let remote = cw.created(&acme("Acme", Some("555-0100")));
    let id: i64 = remote.parse().unwrap();
    // Staff fill the website and fax, which the BSS never set.
    cw.sandbox.patch(
        "company/companies",
        id,
        json!({"website": "acme.example", "faxNumber": "555-0199"}),
    );
    // The BSS renames the account and clears the phone it had set.
    let changed = updated(acme("Acme Ltd", None), &remote);
    let pushed = cw.push(&changed).unwrap();
    assert_eq!(pushed.change, Change::Updated);
    assert!(pushed.overwritten.is_empty(), "{:?}", pushed.overwritten);
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["name"], "Acme Ltd");
    assert_eq!(company["website"], "acme.example");
    assert_eq!(company["faxNumber"], "555-0199");
    assert!(
        company
            .get("phoneNumber")
            .is_none_or(|p| p.is_null() || p == ""),
        "{company}"
    );
    // The copy it stored is what a pull of the company maps to.
    let stored = pushed.stored.expect("a stored copy");
    let page = cw.pull(Entity::Account, None).unwrap();
    assert_eq!(page.records[0].data, stored.data);

    // A record pushed before the host kept its last push (no base) removes nothing.
    cw.last_pushed.borrow_mut().clear();
    cw.sandbox
        .patch("company/companies", id, json!({"phoneNumber": "555-0111"}));
    assert_eq!(cw.push(&changed).unwrap().change, Change::Unchanged);
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["phoneNumber"], "555-0111");
}

#[test]
fn a_field_both_sides_changed_follows_the_conflict_policy() {
    let cw = start();
    let remote = cw.created(&acme("Acme", None));
    let id: i64 = remote.parse().unwrap();
    cw.sandbox
        .patch("company/companies", id, json!({"name": "Acme (staff)"}));

    // Report: nothing is written, the record is held with the remote value.
    cw.conflicts.set(ConflictPolicy::Report);
    let pushed = cw
        .push(&updated(acme("Acme Ltd", Some("555-0100")), &remote))
        .unwrap();
    assert_eq!(pushed.change, Change::Held);
    assert_eq!(pushed.overwritten.len(), 1, "{:?}", pushed.overwritten);
    assert_eq!(pushed.overwritten[0].field, "name");
    assert_eq!(pushed.overwritten[0].remote_value, "Acme (staff)");
    assert_eq!(pushed.overwritten[0].last_pushed.as_deref(), Some("Acme"));
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["name"], "Acme (staff)");
    assert!(company.get("phoneNumber").is_none_or(Value::is_null) || company["phoneNumber"] == "");

    // BSS wins: written, and the overwritten value reported.
    cw.conflicts.set(ConflictPolicy::BssWins);
    let pushed = cw
        .push(&updated(acme("Acme Ltd", Some("555-0100")), &remote))
        .unwrap();
    assert_eq!(pushed.change, Change::Updated);
    assert_eq!(pushed.overwritten[0].remote_value, "Acme (staff)");
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["name"], "Acme Ltd");
    assert_eq!(company["phoneNumber"], "555-0100");

    // A staff change to a field the BSS did not change is no conflict, whatever the policy.
    cw.conflicts.set(ConflictPolicy::Report);
    cw.sandbox.patch(
        "company/companies",
        id,
        json!({"name": "Acme (staff again)"}),
    );
    let pushed = cw
        .push(&updated(acme("Acme Ltd", Some("555-0200")), &remote))
        .unwrap();
    assert_eq!(pushed.change, Change::Updated);
    let company = cw.sandbox.record("company/companies", id).unwrap();
    assert_eq!(company["name"], "Acme (staff again)");
    assert_eq!(company["phoneNumber"], "555-0200");
}
