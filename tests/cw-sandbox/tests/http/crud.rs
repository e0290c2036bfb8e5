//! Create, read, update, delete and count, per entity.

use serde_json::{Value, json};

use crate::client::Client;
use crate::fixtures::{self, company_body, id_of, start};

async fn count(c: &Client, path: &str) -> i64 {
    c.get(&format!("{path}/count")).await.expect(200).json()["count"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn company_lifecycle() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600); // 2026-01-01T00:00:00Z
    assert_eq!(count(&c, "company/companies").await, 0);
    let r = c
        .post("company/companies", &company_body("ACME"))
        .await
        .expect(201);
    let created = r.json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(id, 250);
    assert_eq!(created["identifier"], "ACME");
    assert_eq!(created["_info"]["lastUpdated"], "2026-01-01T00:00:00Z");
    assert_eq!(created["_info"]["updatedBy"], "SandboxAPI");
    assert_eq!(created["status"]["id"], 1);
    assert_eq!(created["status"]["name"], "Active");
    let href = created["status"]["_info"]["status_href"].as_str().unwrap();
    assert!(
        href.ends_with("/v4_6_release/apis/3.0/company/companies/statuses/1"),
        "{href}"
    );
    assert_eq!(
        created["types"],
        json!([{"id": 1, "name": "Client", "_info": {"type_href": format!("{}/company/companies/types/1", sb.api_url())}}])
    );
    assert_eq!(created["country"]["name"], "United States");
    assert_eq!(created["country"]["identifier"], "US");
    assert_eq!(created["currency"]["currencyCode"], "USD");
    assert_eq!(created["currency"]["symbol"], "$");
    assert_eq!(
        c.get(&format!("company/companies/{id}"))
            .await
            .expect(200)
            .json(),
        created
    );
    assert_eq!(count(&c, "company/companies").await, 1);

    sb.advance_clock(60);
    let patched = c
        .patch(
            &format!("company/companies/{id}"),
            &json!([
                {"op": "replace", "path": "name", "value": "Acme Corporation"},
                {"op": "replace", "path": "status/id", "value": 4},
                {"op": "remove", "path": "faxNumber"},
            ]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched["name"], "Acme Corporation");
    assert_eq!(patched["status"]["name"], "Imported");
    assert!(patched.get("faxNumber").is_none());
    assert_eq!(patched["_info"]["lastUpdated"], "2026-01-01T00:01:00Z");
    assert_eq!(patched["_info"]["dateEntered"], "2026-01-01T00:00:00Z");

    let mut put = company_body("ACME");
    put.as_object_mut().unwrap().remove("phoneNumber");
    put["name"] = json!("Acme Inc");
    let replaced = c
        .put(&format!("company/companies/{id}"), &put)
        .await
        .expect(200)
        .json();
    assert_eq!(replaced["name"], "Acme Inc");
    assert!(
        replaced.get("phoneNumber").is_none(),
        "PUT replaces the whole record"
    );
    assert_eq!(
        replaced["types"][0]["id"], 1,
        "unchanged types are fine on PUT"
    );

    c.delete(&format!("company/companies/{id}"))
        .await
        .expect(204);
    let r = c.get(&format!("company/companies/{id}")).await.expect(404);
    assert_eq!(
        r.json(),
        json!({"code": "NotFound", "message": "Company with id 250 was not found."})
    );
    assert_eq!(count(&c, "company/companies").await, 0);
    c.delete(&format!("company/companies/{id}"))
        .await
        .expect(404);
}

#[tokio::test]
async fn type_associations_back_company_types() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600);
    let company = fixtures::company(&c, "ACME").await;
    let base = format!("company/companies/{company}/typeAssociations");
    let list = c.get(&base).await.expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["type"]["name"], "Client");
    assert_eq!(list[0]["company"]["identifier"], "ACME");

    sb.advance_clock(5);
    let assoc = id_of(&c.post(&base, &json!({"type": {"id": 2}})).await.expect(201));
    let shown = c
        .get(&format!("company/companies/{company}"))
        .await
        .expect(200)
        .json();
    let names: Vec<&str> = shown["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Client", "Prospect"]);
    assert_eq!(
        shown["_info"]["lastUpdated"], "2026-01-01T00:00:05Z",
        "the company counts as changed"
    );
    assert_eq!(count(&c, &base).await, 2);

    let dup = c
        .post(&base, &json!({"type": {"id": 2}}))
        .await
        .expect(400)
        .json();
    assert_eq!(dup["errors"][0]["field"], "type/id");

    c.delete(&format!("{base}/{assoc}")).await.expect(204);
    let shown = c
        .get(&format!("company/companies/{company}"))
        .await
        .expect(200)
        .json();
    assert_eq!(shown["types"].as_array().unwrap().len(), 1);
    c.get(&format!("{base}/{assoc}")).await.expect(404);
    let r = c
        .get("company/companies/9999/typeAssociations")
        .await
        .expect(404);
    assert_eq!(r.json()["message"], "Company with id 9999 was not found.");
    assert_eq!(sb.records("company/companies/typeAssociations").len(), 1);
    assert_eq!(sb.records(&base).len(), 1);
}

#[tokio::test]
async fn contacts_and_their_communications() {
    let (sb, c) = start().await;
    let company = fixtures::company(&c, "ACME").await;
    let contact = fixtures::contact(&c, company).await;
    let shown = c
        .get(&format!("company/contacts/{contact}"))
        .await
        .expect(200)
        .json();
    assert_eq!(shown["company"]["identifier"], "ACME");
    assert_eq!(shown["company"]["name"], "ACME Ltd");
    let items = shown["communicationItems"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"]["name"], "Email");
    assert_eq!(items[0]["communicationType"], "Email");
    assert_eq!(items[0]["defaultFlag"], true);
    assert_eq!(items[1]["communicationType"], "Phone");
    let email_id = items[0]["id"].as_i64().unwrap();

    let comms = format!("company/contacts/{contact}/communications");
    let listed = c.get(&comms).await.expect(200).json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["contactId"], contact);
    assert_eq!(listed[0]["id"], email_id);

    // An update reuses ids; a new item gets one; a dropped item disappears.
    let patched = c
        .patch(
            &format!("company/contacts/{contact}"),
            &json!([
                {"op": "replace", "path": "communicationItems/0/value", "value": "ada@newmail.example"},
                {"op": "remove", "path": "communicationItems/1"},
                {"op": "add", "path": "communicationItems/-", "value": {"type": {"id": 3}, "value": "813-555-0198"}},
            ]),
        )
        .await
        .expect(200)
        .json();
    let items = patched["communicationItems"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], email_id);
    assert_eq!(items[0]["value"], "ada@newmail.example");
    assert_eq!(items[1]["communicationType"], "Fax");
    assert_eq!(
        items[1]["defaultFlag"], true,
        "first of its kind becomes the default"
    );

    // Through the sub-resource: a new default email takes over.
    let new_email = c
        .post(
            &comms,
            &json!({"type": {"id": 1}, "value": "lovelace@example.com", "defaultFlag": true}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(new_email["communicationType"], "Email");
    let shown = c
        .get(&format!("company/contacts/{contact}"))
        .await
        .expect(200)
        .json();
    let defaults: Vec<&Value> = shown["communicationItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["communicationType"] == "Email" && i["defaultFlag"] == true)
        .collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["value"], "lovelace@example.com");
    assert_eq!(sb.records("company/contacts/communications").len(), 3);

    c.delete(&format!("company/contacts/{contact}"))
        .await
        .expect(204);
    assert!(
        sb.records("company/contacts/communications").is_empty(),
        "deletes cascade"
    );
}

#[tokio::test]
async fn every_entity_round_trips() {
    let (sb, c) = start().await;
    let w = fixtures::world(&c).await;
    for (path, id) in [
        ("company/companies", w.company),
        ("company/contacts", w.contact),
        ("procurement/catalog", w.catalog),
        ("procurement/products", w.product),
        ("finance/invoices", w.invoice),
        ("sales/orders", w.order),
        ("finance/agreements", w.agreement),
    ] {
        let r = c.get(&format!("{path}/{id}")).await.expect(200).json();
        assert_eq!(r["id"], id);
        assert_eq!(count(&c, path).await, 1, "{path}");
        assert_eq!(
            c.get(path)
                .await
                .expect(200)
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let invoice = c
        .get(&format!("finance/invoices/{}", w.invoice))
        .await
        .expect(200)
        .json();
    assert_eq!(invoice["invoiceNumber"], w.invoice.to_string());
    assert_eq!(invoice["status"]["name"], "New");
    assert_eq!(invoice["status"]["isClosed"], false);
    let payment = c
        .get(&format!(
            "finance/invoices/{}/payments/{}",
            w.invoice, w.payment
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(payment["invoice"]["identifier"], w.invoice.to_string());
    assert_eq!(payment["invoice"]["billingType"], "Standard");
    assert_eq!(payment["amount"], 37.5);
    assert_eq!(
        count(&c, &format!("finance/invoices/{}/payments", w.invoice)).await,
        1
    );
    c.get(&format!(
        "finance/invoices/{}/payments/{}",
        w.invoice + 1,
        w.payment
    ))
    .await
    .expect(404);

    let product = c
        .get(&format!("procurement/products/{}", w.product))
        .await
        .expect(200)
        .json();
    assert_eq!(product["catalogItem"]["identifier"], "O365-E3");
    assert_eq!(product["invoice"]["id"], w.invoice);

    let addition = c
        .get(&format!(
            "finance/agreements/{}/additions/{}",
            w.agreement, w.addition
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(addition["agreementId"], w.agreement);
    assert_eq!(addition["product"]["identifier"], "O365-E3");
    assert_eq!(
        addition["customFields"],
        json!([
            {"id": 1, "caption": "Subscription Name", "type": "Text", "entryMethod": "EntryField", "numberOfDecimals": 0, "value": "Office 365 E3"},
            {"id": 2, "caption": "Subscription ID", "type": "Text", "entryMethod": "EntryField", "numberOfDecimals": 0, "value": "SUB-0001"},
        ])
    );
    let additions = sb.records("finance/agreements/additions");
    assert_eq!(additions.len(), 1);
    assert_eq!(additions[0]["agreementId"], w.agreement);
    assert_eq!(
        sb.records(&format!("finance/agreements/{}/additions", w.agreement))
            .len(),
        1
    );
    assert!(
        sb.records(&format!("finance/agreements/{}/additions", w.agreement + 1))
            .is_empty()
    );

    // A product item attached to the order shows in its productIds.
    let on_order = id_of(
        &c.post(
            "procurement/products",
            &json!({"catalogItem": {"id": w.catalog}, "billableOption": "Billable", "salesOrder": {"id": w.order}}),
        )
        .await
        .expect(201),
    );
    let order = c
        .get(&format!("sales/orders/{}", w.order))
        .await
        .expect(200)
        .json();
    assert_eq!(order["productIds"], json!([on_order]));
    assert_eq!(order["salesRep"]["identifier"], "rbrown");
    assert_eq!(order["salesRep"]["name"], "Robert Brown");
    let defaulted = c
        .get(&format!("procurement/products/{on_order}"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        defaulted["description"], "O365-E3 licence",
        "defaults come from the catalog item"
    );
    assert_eq!(defaulted["price"], 12.5);

    let agreement = c
        .get(&format!("finance/agreements/{}", w.agreement))
        .await
        .expect(200)
        .json();
    assert_eq!(agreement["type"]["name"], "Monthly Subscription");
    assert_eq!(agreement["contact"]["name"], "Ada Lovelace");

    // PATCH and DELETE on sub-resources and line items.
    let patched = c
        .patch(
            &format!(
                "finance/agreements/{}/additions/{}",
                w.agreement, w.addition
            ),
            &json!([{"op": "replace", "path": "quantity", "value": 7}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched["quantity"], 7);
    assert_eq!(
        patched["customFields"][1]["value"], "SUB-0001",
        "custom fields survive a patch"
    );
    c.delete(&format!("procurement/products/{}", w.product))
        .await
        .expect(204);
    c.delete(&format!("finance/agreements/{}", w.agreement))
        .await
        .expect(204);
    assert!(sb.records("finance/agreements/additions").is_empty());
}

#[tokio::test]
async fn bodies_must_be_json() {
    let (_sb, c) = start().await;
    let r = c
        .raw(
            "POST",
            "company/companies",
            Some(("text/plain", b"hello".to_vec())),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect(415);
    assert_eq!(r.json()["code"], "UnsupportedMediaType");
    let r = c
        .raw(
            "POST",
            "company/companies",
            Some(("application/json", b"{\"identifier\": ".to_vec())),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect(400);
    assert_eq!(r.json()["code"], "InvalidObject");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    c.send("PATCH", "company/companies", None).await.expect(405);
}
