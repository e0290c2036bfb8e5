//! Exactly once against the sandbox: the connector built natively, over a small blocking HTTP
//! host, pushing to `cw-sandbox` on loopback. A lost answer is the sandbox's `stall_post` fault
//! (the POST is applied, its answer never sent) met by a read timeout; the retry carries
//! `maybe_created` and no remote id, as the host sends it. Each entity must end with one remote
//! record, found again; several candidates, or a unique value held by a record without this
//! record's key, fail with field `bss-id` and a message starting `ambiguous:` / `in use:`.

mod common;

use common::*;
use plugin_connectwise::exports::{Change, Pushed};
use plugin_connectwise::types::{ConnectorError, EntityData};
use serde_json::{Value, json};

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
    assert_eq!(orders[0]["description"], "BSS order SO-O-1 (BSS id O-1)");
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
