//! The ConnectWise connector, second half: products, invoices and orders with their lines,
//! payments and subscriptions, pushed by the built component against the sandbox over loopback.

mod common;
mod cw;

use bss_host::contract::bindings::connector::{Change, Pushed};
use bss_host::contract::bindings::types::{
    ConnectorError, Entity, EntityData, Invoice, Line, Order, Payment, Product, Record, Reference,
    Subscription,
};
use cw::*;
use serde_json::Value;

fn product(code: &str, name: &str, kind: &str, unit: Option<&str>) -> Product {
    Product {
        code: code.into(),
        name: name.into(),
        description: Some(format!("{name} (internal)")),
        customer_description: Some(format!("{name} for customers")),
        product_type: Some(kind.into()),
        unit_type: unit.map(str::to_string),
        price: Some("19.99".into()),
        cost: Some("7.5".into()),
        taxable: Some(true),
        extra: vec![],
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

fn line(id: &str, product: &str, quantity: &str, price: &str) -> Line {
    Line {
        line_id: id.into(),
        product: Some(product.into()),
        description: Some(format!("line {id}")),
        quantity: quantity.into(),
        unit_price: price.into(),
        unit_cost: Some("1.25".into()),
        extra: vec![],
    }
}

/// An account and two products pushed, with their remote ids.
struct Setup {
    cw: Cw,
    account: String,
    products: [String; 2],
}

async fn setup() -> Setup {
    let cw = start().await;
    let ctx = context(&cw);
    let account = push_ok(
        &cw,
        &ctx,
        &account_record("A-1", account("A-1", "Buyer Inc")),
    )
    .await
    .remote_id;
    let p1 = push_ok(
        &cw,
        &ctx,
        &record(
            Entity::Product,
            "P-1",
            EntityData::Product(product("SKU-1", "Router", "Hardware", None)),
            vec![],
        ),
    )
    .await;
    let p2 = push_ok(
        &cw,
        &ctx,
        &record(
            Entity::Product,
            "P-2",
            EntityData::Product(product("SKU-2", "Backup", "Recurring", Some("Month"))),
            vec![],
        ),
    )
    .await;
    Setup {
        cw,
        account,
        products: [p1.remote_id, p2.remote_id],
    }
}

fn line_refs(s: &Setup, lines: &[Line]) -> Vec<Reference> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bss = l.product.clone().unwrap();
            let remote = if bss == "P-1" {
                &s.products[0]
            } else {
                &s.products[1]
            };
            reference(&format!("lines/{i}/product"), Entity::Product, &bss, remote)
        })
        .collect()
}

fn items_of(cw: &Cw, parent_field: &str, parent: &str) -> Vec<Value> {
    let id: i64 = parent.parse().unwrap();
    let mut items: Vec<Value> = cw
        .sandbox
        .records("procurement/products")
        .into_iter()
        .filter(|i| i[parent_field]["id"] == id)
        .collect();
    items.sort_by_key(|i| i["integrationXRef"].as_str().unwrap_or("").to_string());
    items
}

#[tokio::test]
async fn products_take_lookups_and_setting_defaults() {
    let s = setup().await;
    let cw = &s.cw;
    let router = stored(cw, "procurement/catalog", &s.products[0]);
    assert_eq!(router["identifier"], "SKU-1");
    assert_eq!(router["description"], "Router");
    assert_eq!(router["customerDescription"], "Router for customers");
    assert_eq!(router["price"], 19.99);
    assert_eq!(router["cost"], 7.5);
    assert_eq!(router["taxableFlag"], true);
    assert_eq!(router["type"]["id"], 1, "Product Type lookup");
    assert_eq!(
        router["subcategory"]["id"], 6,
        "no Unit Type: the Product SubCategory default"
    );
    assert_eq!(router["category"]["id"], 3, "the Product Category default");
    assert_eq!(
        router["unitOfMeasure"]["id"], 1,
        "the Product Unit of measure default"
    );

    let backup = stored(cw, "procurement/catalog", &s.products[1]);
    assert_eq!(backup["type"]["id"], 3);
    assert_eq!(
        backup["subcategory"]["id"], 5,
        "Unit Type lookup: Month -> Subscriptions"
    );
    assert_eq!(
        backup["category"]["id"], 2,
        "the mapped subcategory's own category"
    );

    let ctx = context(cw);
    let mut changed = product("SKU-1", "Router", "Hardware", None);
    changed.price = Some("24.50".into());
    let mut update = record(Entity::Product, "P-1", EntityData::Product(changed), vec![]);
    update.remote_id = Some(s.products[0].clone());
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Updated);
    assert_eq!(
        stored(cw, "procurement/catalog", &s.products[0])["price"],
        24.5
    );
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Unchanged);

    let untyped = record(
        Entity::Product,
        "P-3",
        EntityData::Product(product("SKU-3", "Thing", "Unknown", None)),
        vec![],
    );
    let outcome = push(cw, &ctx, Entity::Product, &[untyped]).await.remove(0);
    assert!(
        matches!(&outcome, Err(ConnectorError::Rejected(f)) if f[0].field == "product-type"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn invoices_carry_their_lines_and_updates_reconcile_them() {
    let s = setup().await;
    let cw = &s.cw;
    let ctx = context(cw);
    let lines = vec![
        line("L1", "P-1", "2", "100.00"),
        line("L2", "P-2", "3", "15.50"),
    ];
    let invoice = Invoice {
        number: "INV-1001".into(),
        account: "A-1".into(),
        invoice_type: Some("Credit".into()),
        stage: Some("Draft".into()),
        date: Some("2026-03-01".into()),
        due_date: Some("2026-03-31".into()),
        terms: Some("Net 30".into()),
        currency: Some("USD".into()),
        lines: lines.clone(),
        extra: vec![],
    };
    let mut references = vec![reference("account", Entity::Account, "A-1", &s.account)];
    references.extend(line_refs(&s, &lines));
    let rec = record(
        Entity::Invoice,
        "I-1",
        EntityData::Invoice(invoice.clone()),
        references.clone(),
    );
    let created = push_ok(cw, &ctx, &rec).await;
    let stored_invoice = stored(cw, "finance/invoices", &created.remote_id);
    assert_eq!(stored_invoice["invoiceNumber"], "INV-1001");
    assert_eq!(stored_invoice["type"], "CreditMemo", "Invoice Type lookup");
    assert_eq!(stored_invoice["status"]["id"], 1, "Invoice Stage lookup");
    assert_eq!(stored_invoice["company"]["id"].to_string(), s.account);
    assert!(
        stored_invoice["date"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-01")
    );
    assert!(
        stored_invoice["dueDate"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-31")
    );
    assert_eq!(stored_invoice["billingTerms"]["id"], 1);
    assert_eq!(stored_invoice["currency"]["id"], 1);
    let items = items_of(cw, "invoice", &created.remote_id);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["catalogItem"]["id"].to_string(), s.products[0]);
    assert_eq!(items[0]["quantity"], 2.0);
    assert_eq!(items[0]["price"], 100.0);
    assert_eq!(items[0]["cost"], 1.25);
    assert_eq!(items[0]["description"], "line L1");
    assert_eq!(
        items[0]["billableOption"], "Billable",
        "the Product Billable Option setting"
    );
    assert_eq!(items[1]["catalogItem"]["id"].to_string(), s.products[1]);
    assert_eq!(items[1]["quantity"], 3.0);

    // Update: line 1 changes quantity, line 2 is dropped, line 3 is new.
    let new_lines = vec![
        line("L1", "P-1", "5", "100.00"),
        line("L3", "P-2", "1", "9.00"),
    ];
    let mut changed = invoice;
    changed.lines = new_lines.clone();
    changed.stage = Some("Posted".into());
    let mut references = vec![reference("account", Entity::Account, "A-1", &s.account)];
    references.extend(line_refs(&s, &new_lines));
    let mut update = record(
        Entity::Invoice,
        "I-1",
        EntityData::Invoice(changed),
        references,
    );
    update.remote_id = Some(created.remote_id.clone());
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Updated);
    assert_eq!(
        stored(cw, "finance/invoices", &created.remote_id)["status"]["id"],
        2
    );
    let after = items_of(cw, "invoice", &created.remote_id);
    let xrefs: Vec<&str> = after
        .iter()
        .map(|i| i["integrationXRef"].as_str().unwrap())
        .collect();
    assert_eq!(xrefs, ["bss:L1", "bss:L3"]);
    assert_eq!(
        after[0]["id"], items[0]["id"],
        "line L1 kept its product item"
    );
    assert_eq!(after[0]["quantity"], 5.0);
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Unchanged);

    // An invoice of an account that was not pushed yet names the missing account.
    let orphan = record(
        Entity::Invoice,
        "I-2",
        EntityData::Invoice(Invoice {
            account: "A-404".into(),
            lines: vec![],
            ..update_invoice()
        }),
        vec![],
    );
    let outcome = push(cw, &ctx, Entity::Invoice, &[orphan]).await.remove(0);
    assert!(
        matches!(&outcome, Err(ConnectorError::MissingReference(m)) if m.bss_id == "A-404" && m.entity == Entity::Account),
        "{outcome:?}"
    );
    // A line whose product was not pushed yet names the product.
    let lines = vec![line("L1", "P-404", "1", "1")];
    let missing_product = record(
        Entity::Invoice,
        "I-3",
        EntityData::Invoice(Invoice {
            lines,
            ..update_invoice()
        }),
        vec![reference("account", Entity::Account, "A-1", &s.account)],
    );
    let outcome = push(cw, &ctx, Entity::Invoice, &[missing_product])
        .await
        .remove(0);
    assert!(
        matches!(&outcome, Err(ConnectorError::MissingReference(m)) if m.bss_id == "P-404" && m.entity == Entity::Product),
        "{outcome:?}"
    );
    assert_eq!(
        cw.sandbox.records("finance/invoices").len(),
        1,
        "nothing half-made was left behind"
    );
}

fn update_invoice() -> Invoice {
    Invoice {
        number: "INV-2".into(),
        account: "A-1".into(),
        invoice_type: None,
        stage: None,
        date: None,
        due_date: None,
        terms: None,
        currency: None,
        lines: vec![],
        extra: vec![],
    }
}

#[tokio::test]
async fn orders_carry_contact_stage_sales_rep_and_lines() {
    let s = setup().await;
    let cw = &s.cw;
    let ctx = context(cw);
    let mut contact_rec = contact_record("K-1", contact(Some("A-1"), "Olga"));
    contact_rec.references = vec![reference("account", Entity::Account, "A-1", &s.account)];
    let contact_id = push_ok(cw, &ctx, &contact_rec).await.remote_id;
    let lines = vec![line("O1", "P-1", "1", "250.00")];
    let order = Order {
        number: "SO-1".into(),
        account: "A-1".into(),
        contact: Some("K-1".into()),
        stage: Some("Open".into()),
        order_date: Some("2026-04-02".into()),
        due_date: Some("2026-04-30".into()),
        po_number: Some("PO-77".into()),
        terms: Some("Net 15".into()),
        currency: Some("EUR".into()),
        lines: lines.clone(),
        extra: vec![],
    };
    let mut references = vec![
        reference("account", Entity::Account, "A-1", &s.account),
        reference("contact", Entity::Contact, "K-1", &contact_id),
    ];
    references.extend(line_refs(&s, &lines));
    let created = push_ok(
        cw,
        &ctx,
        &record(
            Entity::Order,
            "O-1",
            EntityData::Order(order.clone()),
            references.clone(),
        ),
    )
    .await;
    let stored_order = stored(cw, "sales/orders", &created.remote_id);
    assert_eq!(stored_order["company"]["id"].to_string(), s.account);
    assert_eq!(stored_order["contact"]["id"].to_string(), contact_id);
    assert_eq!(stored_order["status"]["id"], 1);
    assert_eq!(
        stored_order["salesRep"]["id"], 3,
        "the Sales Representative setting"
    );
    assert_eq!(stored_order["poNumber"], "PO-77");
    assert_eq!(stored_order["billingTerms"]["id"], 3);
    assert_eq!(stored_order["currency"]["id"], 2);
    assert!(
        stored_order["orderDate"]
            .as_str()
            .unwrap()
            .starts_with("2026-04-02")
    );
    let items = items_of(cw, "salesOrder", &created.remote_id);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["price"], 250.0);

    let mut changed = order;
    changed.stage = Some("Confirmed".into());
    changed.po_number = Some("PO-78".into());
    let mut update = record(Entity::Order, "O-1", EntityData::Order(changed), references);
    update.remote_id = Some(created.remote_id.clone());
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Updated);
    let stored_order = stored(cw, "sales/orders", &created.remote_id);
    assert_eq!(
        (
            stored_order["status"]["id"].as_i64(),
            stored_order["poNumber"].as_str()
        ),
        (Some(2), Some("PO-78"))
    );
}

#[tokio::test]
async fn payments_of_configured_methods_only() {
    let s = setup().await;
    let cw = &s.cw;
    let ctx = context(cw);
    let invoice = Invoice {
        number: "INV-9".into(),
        ..update_invoice()
    };
    let invoice_id = push_ok(
        cw,
        &ctx,
        &record(
            Entity::Invoice,
            "I-9",
            EntityData::Invoice(invoice),
            vec![reference("account", Entity::Account, "A-1", &s.account)],
        ),
    )
    .await
    .remote_id;
    let payment = |method: &str, amount: &str| Payment {
        invoice: "I-9".into(),
        account: Some("A-1".into()),
        amount: amount.into(),
        payment_date: "2026-05-05".into(),
        method: method.into(),
        reference: None,
        extra: vec![],
    };
    let refs = || vec![reference("invoice", Entity::Invoice, "I-9", &invoice_id)];
    let by_card = push_ok(
        cw,
        &ctx,
        &record(
            Entity::Payment,
            "PAY-1",
            EntityData::Payment(payment("cc", "120.00")),
            refs(),
        ),
    )
    .await;
    let by_bank = push_ok(
        cw,
        &ctx,
        &record(
            Entity::Payment,
            "PAY-2",
            EntityData::Payment(payment("bank", "30.00")),
            refs(),
        ),
    )
    .await;
    assert!(by_card.remote_id.starts_with(&format!("{invoice_id}/")));
    let payments: Vec<Value> = cw.sandbox.records("finance/invoices/payments");
    assert_eq!(payments.len(), 2);
    assert_eq!(payments[0]["type"], "CreditCard");
    assert_eq!(payments[0]["amount"], 120.0);
    assert!(
        payments[0]["paymentDate"]
            .as_str()
            .unwrap()
            .starts_with("2026-05-05")
    );
    assert_eq!(payments[1]["type"], "BankDeposit");
    assert_eq!(by_bank.change, Change::Created);

    let before = cw.sandbox.request_count();
    let cash = push(
        cw,
        &ctx,
        Entity::Payment,
        &[record(
            Entity::Payment,
            "PAY-3",
            EntityData::Payment(payment("cash", "5")),
            refs(),
        )],
    )
    .await;
    match &cash[0] {
        Err(ConnectorError::Unsupported(message)) => {
            assert!(
                message.starts_with("not synchronised: payment method cash is not configured"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cw.sandbox.request_count(),
        before,
        "nothing was sent for it"
    );
}

#[tokio::test]
async fn subscriptions_share_one_agreement_per_customer_and_cycle() {
    let s = setup().await;
    let cw = &s.cw;
    let ctx = context(cw);
    let mut contact_rec = contact_record("K-1", contact(Some("A-1"), "Sam"));
    contact_rec.references = vec![reference("account", Entity::Account, "A-1", &s.account)];
    let contact_id = push_ok(cw, &ctx, &contact_rec).await.remote_id;
    let subscription = |name: &str, cycle: &str| Subscription {
        account: "A-1".into(),
        product: "P-2".into(),
        name: name.into(),
        billing_cycle: cycle.into(),
        quantity: "10".into(),
        unit_price: "4.50".into(),
        unit_cost: Some("2.00".into()),
        start_date: Some("2026-06-01".into()),
        cancelled_date: None,
        bill_customer: Some("Billable".into()),
        description: Some(format!("{name} seats")),
        extra: vec![],
    };
    let refs = || {
        vec![
            reference("account", Entity::Account, "A-1", &s.account),
            reference("product", Entity::Product, "P-2", &s.products[1]),
        ]
    };
    let push_sub = |bss: &'static str, data: Subscription| {
        record(
            Entity::Subscription,
            bss,
            EntityData::Subscription(data),
            refs(),
        )
    };
    let first: Pushed = push_ok(
        cw,
        &ctx,
        &push_sub("S-1", subscription("Backup Pro", "Monthly")),
    )
    .await;
    let second = push_ok(
        cw,
        &ctx,
        &push_sub("S-2", subscription("Backup Lite", "Monthly")),
    )
    .await;
    let annual = push_ok(
        cw,
        &ctx,
        &push_sub("S-3", subscription("Archive", "Annual")),
    )
    .await;

    let agreements = cw.sandbox.records("finance/agreements");
    assert_eq!(
        agreements.len(),
        2,
        "one agreement per cycle for this customer"
    );
    let monthly = agreements.iter().find(|a| a["type"]["id"] == 1).unwrap();
    assert_eq!(monthly["company"]["id"].to_string(), s.account);
    assert_eq!(monthly["contact"]["id"].to_string(), contact_id);
    let agreement_of = |p: &Pushed| p.remote_id.split('/').next().unwrap().to_string();
    assert_eq!(agreement_of(&first), monthly["id"].to_string());
    assert_eq!(
        agreement_of(&second),
        agreement_of(&first),
        "the agreement was reused"
    );
    assert_ne!(agreement_of(&annual), agreement_of(&first));

    let additions = cw.sandbox.records("finance/agreements/additions");
    assert_eq!(additions.len(), 3);
    let addition = &additions[0];
    assert_eq!(addition["product"]["id"].to_string(), s.products[1]);
    assert_eq!(addition["quantity"], 10.0);
    assert_eq!(addition["unitPrice"], 4.5);
    assert_eq!(addition["unitCost"], 2.0);
    assert_eq!(addition["billCustomer"], "Billable");
    assert_eq!(addition["invoiceDescription"], "Backup Pro seats");
    assert!(
        addition["effectiveDate"]
            .as_str()
            .unwrap()
            .starts_with("2026-06-01")
    );
    let custom: Vec<(i64, String)> = addition["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_i64().unwrap(),
                f["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        custom.contains(&(1, "Backup Pro".to_string())),
        "{custom:?}"
    );
    assert!(custom.contains(&(2, "S-1".to_string())), "{custom:?}");

    let mut changed = subscription("Backup Pro", "Monthly");
    changed.quantity = "12".into();
    changed.cancelled_date = Some("2026-12-31".into());
    let mut update = push_sub("S-1", changed);
    update.remote_id = Some(first.remote_id.clone());
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Updated);
    let addition = &cw.sandbox.records("finance/agreements/additions")[0];
    assert_eq!(addition["quantity"], 12.0);
    assert!(
        addition["cancelledDate"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-31")
    );
    assert_eq!(push_ok(cw, &ctx, &update).await.change, Change::Unchanged);
}
