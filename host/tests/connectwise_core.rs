//! The ConnectWise connector, first half: the built component run by the host's runtime against
//! the ConnectWise sandbox over loopback HTTP — activation, lookup choices, accounts and contacts
//! both ways, fault mapping, and per-record errors within a batch.

mod common;
mod cw;

use bss_host::contract::bindings::connector::Change;
use bss_host::contract::bindings::types::{ConnectorError, Entity, EntityData};
use cw::*;
use cw_sandbox::Faults;
use serde_json::{Value, json};

fn field_errors(result: Result<String, ConnectorError>) -> Vec<String> {
    match result {
        Err(ConnectorError::InvalidSettings(fields)) => {
            fields.into_iter().map(|f| f.field).collect()
        }
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

#[tokio::test]
async fn activate_accepts_good_settings_and_names_each_bad_one() {
    let cw = start().await;
    let summary = cw.connector.activate(&context(&cw)).await.unwrap().unwrap();
    assert!(
        summary.starts_with("Connected to ConnectWise company"),
        "{summary}"
    );

    let cases: &[(&str, &str)] = &[
        ("url", "http://127.0.0.1:1"),
        ("company-id", "nobody"),
        ("private-key", "wrong-private"),
        ("codebase", "v2019_3"),
        ("import-account-id", "999"),
        ("product-category", "999"),
        ("product-subcategory", "999"),
        ("product-unit-of-measure", "999"),
        ("sales-representative", "999"),
        ("subscription-name-field-id", "999"),
        ("subscription-id-field-id", "998"),
    ];
    for (key, value) in cases {
        let ctx = context_with(&cw, &[(key, Some(value))]);
        let result = cw.connector.activate(&ctx).await.unwrap();
        assert_eq!(
            field_errors(result),
            vec![key.to_string()],
            "setting {key} = {value}"
        );
    }
    // A wrong public key cannot be told from a wrong private key: ConnectWise refuses the pair.
    let ctx = context_with(&cw, &[("public-key", Some("wrong-public"))]);
    assert_eq!(
        field_errors(cw.connector.activate(&ctx).await.unwrap()),
        vec!["private-key"]
    );
}

#[tokio::test]
async fn lookup_choices_list_every_table() {
    let cw = start().await;
    let ctx = context(&cw);
    let tables = [
        ("company-statuses", "company/companies/statuses"),
        ("company-types", "company/companies/types"),
        ("currencies", "finance/currencies"),
        ("product-categories", "procurement/categories"),
        ("product-subcategories", "procurement/subcategories"),
        ("product-types", "procurement/types"),
        ("units-of-measure", "procurement/unitOfMeasures"),
        ("billing-statuses", "finance/billingStatuses"),
        ("order-statuses", "sales/orders/statuses"),
        ("members", "system/members"),
        ("agreement-types", "finance/agreements/types"),
        ("addition-custom-fields", "system/userDefinedFields"),
    ];
    for (key, resource) in tables {
        let choices = cw
            .connector
            .lookup_choices(&ctx, key)
            .await
            .unwrap()
            .unwrap();
        // Inactive values are left out, so an admin cannot map to one.
        let stored: Vec<Value> = cw
            .sandbox
            .records(resource)
            .into_iter()
            .filter(|r| r["inactiveFlag"] != true && r["disabled"] != true)
            .collect();
        assert!(!choices.is_empty(), "{key}");
        assert_eq!(
            choices.len(),
            stored.len(),
            "{key} lists every active record of {resource}"
        );
        for (choice, record) in choices.iter().zip(&stored) {
            assert_eq!(choice.value, record["id"].to_string(), "{key}");
            assert!(
                !choice.label.is_empty() && choice.label != choice.value,
                "{key}: {}",
                choice.label
            );
        }
    }
    let members = cw
        .connector
        .lookup_choices(&ctx, "members")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(members[0].label, "John Smith");
    let currencies = cw
        .connector
        .lookup_choices(&ctx, "currencies")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(currencies[0].label, "USD (US Dollar)");
    let types = cw
        .connector
        .lookup_choices(&ctx, "invoice-types")
        .await
        .unwrap()
        .unwrap();
    let values: Vec<&str> = types.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "Agreement",
            "CreditMemo",
            "DownPayment",
            "Miscellaneous",
            "Progress",
            "Standard",
            "Consolidated"
        ]
    );
    let unknown = cw.connector.lookup_choices(&ctx, "planets").await.unwrap();
    assert!(matches!(unknown, Err(ConnectorError::Unsupported(_))));
}

#[tokio::test]
async fn accounts_are_created_then_updated_field_by_field() {
    let cw = start().await;
    let ctx = context(&cw);
    let parent = push_ok(
        &cw,
        &ctx,
        &account_record("P-1", account("P-1", "Parent Holdings")),
    )
    .await;
    assert_eq!(parent.change, Change::Created);

    let mut child = account("A-1", "Acme Child");
    child.parent_account = Some("P-1".into());
    child.currency = Some("EUR".into());
    let mut record = account_record("A-1", child.clone());
    record.references = vec![reference(
        "parent-account",
        Entity::Account,
        "P-1",
        &parent.remote_id,
    )];
    let created = push_ok(&cw, &ctx, &record).await;
    assert_eq!(created.change, Change::Created);

    let company = stored(&cw, "company/companies", &created.remote_id);
    assert_eq!(company["identifier"], "A-1");
    assert_eq!(company["name"], "Acme Child");
    assert_eq!(company["accountNumber"], "C-A-1");
    assert_eq!(company["status"]["id"], 4, "Import Account Id");
    assert_eq!(
        company["types"][0]["id"], 1,
        "Account Type lookup: Customer -> Client"
    );
    assert_eq!(company["currency"]["id"], 2, "Currency lookup: EUR");
    assert_eq!(company["addressLine1"], "1 Main Street");
    assert_eq!(company["addressLine2"], "Suite 5");
    assert_eq!(company["city"], "Sacramento");
    assert_eq!(company["state"], "CA", "state name resolved");
    assert_eq!(company["zip"], "95814");
    assert_eq!(company["country"]["id"], 1, "country name resolved");
    assert_eq!(company["phoneNumber"], "+1 916 555 0100");
    assert_eq!(company["website"], "https://example.com");
    assert_eq!(company["parentCompany"]["id"].to_string(), parent.remote_id);
    // Who is billed is ConnectWise's to decide: the BSS documentation maps no bill-to company.
    assert!(company.get("billToCompany").is_none_or(Value::is_null));
    assert!(company.get("faxNumber").is_none_or(Value::is_null));

    // The same record again changes nothing.
    let mut again = record.clone();
    again.remote_id = Some(created.remote_id.clone());
    assert_eq!(push_ok(&cw, &ctx, &again).await.change, Change::Unchanged);

    // An update: new name, phone removed, fax added, another type, a moved address.
    let mut changed = child;
    changed.name = "Acme Child Ltd".into();
    changed.phone = None;
    changed.fax = Some("+1 916 555 0199".into());
    changed.account_type = Some("Reseller".into());
    changed.billing_address.as_mut().unwrap().state = Some("NY".into());
    changed.billing_address.as_mut().unwrap().city = Some("Albany".into());
    let mut update = again.clone();
    update.data = EntityData::Account(changed);
    let updated = push_ok(&cw, &ctx, &update).await;
    assert_eq!(
        (updated.change, updated.remote_id.as_str()),
        (Change::Updated, created.remote_id.as_str())
    );
    let company = stored(&cw, "company/companies", &created.remote_id);
    assert_eq!(company["name"], "Acme Child Ltd");
    assert!(
        company
            .get("phoneNumber")
            .is_none_or(|p| p.is_null() || p == ""),
        "{company}"
    );
    assert_eq!(company["faxNumber"], "+1 916 555 0199");
    assert_eq!(company["city"], "Albany");
    assert_eq!(company["state"], "NY");
    assert_eq!(company["status"]["id"], 4, "status untouched by updates");
    let type_ids: Vec<i64> = company["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        type_ids,
        vec![4],
        "the BSS-managed type was replaced through type associations"
    );
    let patches: Vec<_> = cw
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "one JSON Patch for the company's fields");
}

#[tokio::test]
async fn contacts_are_created_then_updated_reusing_item_ids() {
    let cw = start().await;
    let ctx = context(&cw);
    let company = push_ok(
        &cw,
        &ctx,
        &account_record("A-9", account("A-9", "Contact Holder")),
    )
    .await;

    let mut record = contact_record("K-1", contact(Some("A-9"), "Jane"));
    record.references = vec![reference(
        "account",
        Entity::Account,
        "A-9",
        &company.remote_id,
    )];
    let created = push_ok(&cw, &ctx, &record).await;
    let stored_contact = stored(&cw, "company/contacts", &created.remote_id);
    assert_eq!(stored_contact["firstName"], "Jane");
    assert_eq!(stored_contact["lastName"], "Doe");
    assert_eq!(stored_contact["title"], "CFO");
    assert_eq!(
        stored_contact["company"]["id"].to_string(),
        company.remote_id
    );
    let items = stored_contact["communicationItems"]
        .as_array()
        .unwrap()
        .clone();
    let by_type =
        |items: &[Value], type_id: i64| items.iter().find(|i| i["type"]["id"] == type_id).cloned();
    assert_eq!(items.len(), 3);
    assert_eq!(by_type(&items, 1).unwrap()["value"], "jane@example.com");
    assert_eq!(by_type(&items, 2).unwrap()["value"], "+1 916 555 0101");
    assert_eq!(by_type(&items, 4).unwrap()["value"], "+1 916 555 0102");

    let mut changed = contact(Some("A-9"), "Jane");
    changed.email = Some("jane.doe@example.com".into());
    changed.mobile = None;
    changed.fax = Some("+1 916 555 0103".into());
    let mut update = record.clone();
    update.remote_id = Some(created.remote_id.clone());
    update.data = EntityData::Contact(changed);
    assert_eq!(push_ok(&cw, &ctx, &update).await.change, Change::Updated);
    let after = stored(&cw, "company/contacts", &created.remote_id)["communicationItems"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(after.len(), 3, "email, phone, fax");
    let email = by_type(&after, 1).unwrap();
    assert_eq!(email["value"], "jane.doe@example.com");
    assert_eq!(
        email["id"],
        by_type(&items, 1).unwrap()["id"],
        "the e-mail item kept its id"
    );
    assert_eq!(
        by_type(&after, 2).unwrap()["id"],
        by_type(&items, 2).unwrap()["id"]
    );
    assert!(
        by_type(&after, 4).is_none(),
        "the mobile number was removed"
    );
    assert_eq!(by_type(&after, 3).unwrap()["value"], "+1 916 555 0103");
    assert_eq!(push_ok(&cw, &ctx, &update).await.change, Change::Unchanged);

    // A contact of an account that was not pushed yet names what is missing.
    let orphan = contact_record("K-2", contact(Some("A-404"), "Otto"));
    let outcome = push(&cw, &ctx, Entity::Contact, &[orphan]).await.remove(0);
    match outcome {
        Err(ConnectorError::MissingReference(missing)) => {
            assert_eq!(
                (
                    missing.field.as_str(),
                    missing.entity,
                    missing.bss_id.as_str()
                ),
                ("account", Entity::Account, "A-404")
            );
        }
        other => panic!("expected a missing reference, got {other:?}"),
    }
}

#[tokio::test]
async fn pull_follows_the_cursor_on_the_remote_clock() {
    let cw = start().await;
    let ctx = context(&cw);
    cw.sandbox.set_clock(1_780_000_000);
    let mut remote_ids = Vec::new();
    for i in 0..3 {
        let pushed = push_ok(
            &cw,
            &ctx,
            &account_record(
                &format!("R-{i}"),
                account(&format!("R-{i}"), &format!("Pulled {i}")),
            ),
        )
        .await;
        remote_ids.push(pushed.remote_id);
        cw.sandbox.advance_clock(10);
    }
    let company = remote_ids[0].clone();
    let mut record = contact_record("K-7", contact(Some("R-0"), "Paul"));
    record.references = vec![reference("account", Entity::Account, "R-0", &company)];
    push_ok(&cw, &ctx, &record).await;

    let page = cw
        .connector
        .pull(&ctx, Entity::Account, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.records.len(), 3);
    assert!(page.next_page_token.is_none());
    let first = &page.records[0];
    match &first.data {
        EntityData::Account(a) => {
            assert_eq!(a.name, "Pulled 0");
            assert_eq!(a.code, "C-R-0");
            assert_eq!(
                a.account_type.as_deref(),
                Some("Customer"),
                "reverse lookup"
            );
            assert_eq!(a.currency.as_deref(), Some("USD"));
            let address = a.billing_address.as_ref().unwrap();
            assert_eq!(
                (address.city.as_deref(), address.country.as_deref()),
                (Some("Sacramento"), Some("United States"))
            );
        }
        other => panic!("{other:?}"),
    }
    let cursor = page
        .records
        .iter()
        .map(|r| r.last_updated.clone())
        .max()
        .unwrap();

    // One remote change after the cursor: the next pull from the cursor returns it, and nothing
    // last updated before the cursor.
    cw.sandbox.advance_clock(30);
    cw.sandbox.patch(
        "company/companies",
        remote_ids[1].parse().unwrap(),
        json!({ "name": "Renamed remotely" }),
    );
    let page = cw
        .connector
        .pull(&ctx, Entity::Account, Some(&cursor), None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        page.records.iter().all(|r| r.last_updated >= cursor),
        "nothing before the cursor"
    );
    let changed: Vec<_> = page
        .records
        .iter()
        .filter(|r| r.last_updated > cursor)
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].remote_id, remote_ids[1]);
    assert!(matches!(&changed[0].data, EntityData::Account(a) if a.name == "Renamed remotely"));

    let contacts = cw
        .connector
        .pull(&ctx, Entity::Contact, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contacts.records.len(), 1);
    let pulled = &contacts.records[0];
    assert_eq!(pulled.references[0].remote_id, company);
    match &pulled.data {
        EntityData::Contact(c) => {
            assert_eq!(c.first_name, "Paul");
            assert_eq!(c.email.as_deref(), Some("paul@example.com"));
            assert_eq!(c.mobile.as_deref(), Some("+1 916 555 0102"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pull_pages_through_more_than_one_page() {
    let cw = start().await;
    let ctx = context(&cw);
    for i in 0..1005 {
        cw.sandbox.insert(
            "company/companies",
            json!({ "identifier": format!("B{i}"), "name": format!("Bulk {i}"), "city": "Austin" }),
        );
    }
    let mut seen = 0;
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = cw
            .connector
            .pull(&ctx, Entity::Account, None, token.as_deref())
            .await
            .unwrap()
            .unwrap();
        seen += page.records.len();
        pages += 1;
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!((seen, pages), (1005, 2));
}

#[tokio::test]
async fn injected_faults_map_to_actionable_errors() {
    let cw = start().await;
    let ctx = context(&cw);
    let records = [account_record("F-1", account("F-1", "Faulty"))];

    cw.sandbox
        .set_faults(Faults::default().with_rate_limit_every(1, 7));
    let outcome = push(&cw, &ctx, Entity::Account, &records).await.remove(0);
    assert!(
        matches!(outcome, Err(ConnectorError::RateLimited(Some(7000)))),
        "{outcome:?}"
    );

    cw.sandbox
        .set_faults(Faults::default().with_server_error_every(1));
    let outcome = push(&cw, &ctx, Entity::Account, &records).await.remove(0);
    assert!(
        matches!(&outcome, Err(ConnectorError::Transient(m)) if m.contains("500")),
        "{outcome:?}"
    );

    cw.sandbox.set_faults(
        Faults::default()
            .with_server_error_every(1)
            .with_server_error_status(503),
    );
    let outcome = cw
        .connector
        .pull(&ctx, Entity::Account, None, None)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Err(ConnectorError::Transient(m)) if m.contains("503")),
        "{outcome:?}"
    );

    cw.sandbox
        .set_faults(Faults::default().with_malformed_every(1));
    let outcome = cw
        .connector
        .pull(&ctx, Entity::Contact, None, None)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Err(ConnectorError::Transient(m)) if m.contains("not valid JSON")),
        "{outcome:?}"
    );

    cw.sandbox.set_faults(Faults::default());
    let ok = push(&cw, &ctx, Entity::Account, &records).await.remove(0);
    assert_eq!(ok.unwrap().change, Change::Created);
}

#[tokio::test]
async fn a_batch_with_bad_records_fails_them_one_by_one() {
    let cw = start().await;
    let ctx = context(&cw);
    let mut nameless = account("BAD-1", "");
    nameless.name = String::new();
    let mut unmapped = account("BAD-3", "Unmapped Type");
    unmapped.account_type = Some("Martian".into());
    let long_id = "X".repeat(31);
    let batch = [
        account_record("OK-1", account("OK-1", "Good One")),
        account_record("BAD-1", nameless),
        account_record(&long_id, account(&long_id, "Too Long Identifier")),
        account_record("BAD-3", unmapped),
        account_record("OK-2", account("OK-2", "Good Two")),
    ];
    let outcomes = push(&cw, &ctx, Entity::Account, &batch).await;
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes[0].as_ref().unwrap().change, Change::Created);
    assert_eq!(outcomes[4].as_ref().unwrap().change, Change::Created);
    let rejected_field = |i: usize| match &outcomes[i] {
        Err(ConnectorError::Rejected(fields)) => fields[0].field.clone(),
        other => panic!("record {i}: expected a rejection, got {other:?}"),
    };
    assert_eq!(rejected_field(1), "name");
    assert_eq!(rejected_field(2), "bss-id");
    assert_eq!(rejected_field(3), "account-type");
    let names: Vec<String> = cw
        .sandbox
        .records("company/companies")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Good One", "Good Two"]);
}
