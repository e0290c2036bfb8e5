//! What ConnectWise users own and the server derives: custom fields on every screen that has them, agreement and
//! invoice statuses, the server's clock (`Date`) and version (`/login/companyinfo`, `system/info`).

use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::client::Client;
use crate::fixtures::{self, start};

/// The value of custom field `id` in a record's `customFields`.
fn custom(record: &Value, id: i64) -> Option<Value> {
    record["customFields"]
        .as_array()
        .expect("customFields")
        .iter()
        .find(|f| f["id"] == id)
        .and_then(|f| f.get("value").cloned())
}

#[tokio::test]
async fn every_screen_lists_its_own_custom_fields() {
    let (_sb, c) = start().await;
    let w = fixtures::world(&c).await;
    let screens = [
        (format!("company/companies/{}", w.company), vec![3, 4, 5, 6]),
        (format!("company/contacts/{}", w.contact), vec![7, 8]),
        (format!("procurement/catalog/{}", w.catalog), vec![9]),
        (format!("finance/invoices/{}", w.invoice), vec![10]),
        (format!("sales/orders/{}", w.order), vec![11]),
        (format!("procurement/products/{}", w.product), vec![12]),
        (format!("finance/agreements/{}", w.agreement), vec![13]),
    ];
    for (path, ids) in screens {
        let record = c.get(&path).await.expect(200).json();
        let listed: Vec<i64> = record["customFields"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {record}"))
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect();
        assert_eq!(listed, ids, "{path}");
        for field in record["customFields"].as_array().unwrap() {
            assert!(
                field["caption"].is_string() && field["type"].is_string(),
                "{field}"
            );
        }
    }
}

#[tokio::test]
async fn custom_field_values_are_typed_and_belong_to_their_screen() {
    let (sb, c) = start().await;
    let company = fixtures::company(&c, "ACME").await;
    let path = format!("company/companies/{company}");
    let patched = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "customFields", "value": [
                {"id": 3, "value": "West"}, {"id": 4, "value": "12"}, {"id": 5, "value": true},
                {"id": 6, "value": "2026-09-01"}]}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(custom(&patched, 3), Some(json!("West")));
    assert_eq!(
        custom(&patched, 4),
        Some(json!(12.0)),
        "numeric text becomes a number"
    );
    assert_eq!(custom(&patched, 5), Some(json!(true)));
    assert_eq!(custom(&patched, 6), Some(json!("2026-09-01T00:00:00Z")));

    // A value of the wrong type, and a field of another screen, are refused.
    let refused = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "customFields", "value": [{"id": 4, "value": "many"}]}]),
        )
        .await
        .expect(400)
        .json();
    assert_eq!(
        refused["errors"][0]["field"], "customFields/value",
        "{refused}"
    );
    let refused = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "customFields", "value": [{"id": 7, "value": "fr"}]}]),
        )
        .await
        .expect(400)
        .json();
    assert_eq!(
        refused["errors"][0]["field"], "customFields/id",
        "{refused}"
    );

    // A patch of another field keeps the values; a staff edit through the handle shows on reads.
    let kept = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "name", "value": "Acme 2"}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(custom(&kept, 3), Some(json!("West")));
    sb.patch(
        "company/companies",
        company,
        json!({"customFields": [{"id": 3, "value": "East"}]}),
    );
    let read = c.get(&path).await.expect(200).json();
    assert_eq!(custom(&read, 3), Some(json!("East")));
    assert_eq!(
        custom(&read, 4),
        None,
        "the handle's edit replaced the list"
    );
}

#[tokio::test]
async fn agreements_carry_their_status_to_additions() {
    let (sb, c) = start().await;
    let w = fixtures::world(&c).await;
    let agreement = format!("finance/agreements/{}", w.agreement);
    let addition = format!("{agreement}/additions/{}", w.addition);
    assert_eq!(c.get(&agreement).await.json()["agreementStatus"], "Active");
    assert_eq!(c.get(&addition).await.json()["agreementStatus"], "Active");

    // Staff let one expire; cancelling another through the API marks it Cancelled, dated.
    sb.patch(
        "finance/agreements",
        w.agreement,
        json!({"agreementStatus": "Expired", "endDate": "2020-12-31T00:00:00Z"}),
    );
    assert_eq!(c.get(&addition).await.json()["agreementStatus"], "Expired");
    let expired = c
        .get(&fixtures_query(
            "finance/agreements",
            "agreementStatus='Active'",
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(expired, json!([]));
    let other = fixtures::agreement(&c, w.company, w.contact).await;
    let cancelled = c
        .patch(
            &format!("finance/agreements/{other}"),
            &json!([{"op": "replace", "path": "cancelledFlag", "value": true}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(cancelled["agreementStatus"], "Cancelled");
    assert!(cancelled["dateCancelled"].is_string(), "{cancelled}");
}

fn fixtures_query(path: &str, conditions: &str) -> String {
    crate::client::q(path, &[("conditions", conditions)])
}

#[tokio::test]
async fn a_closed_billing_status_records_who_closed_the_invoice() {
    let (sb, c) = start().await;
    let w = fixtures::world(&c).await;
    let path = format!("finance/invoices/{}", w.invoice);
    let open = c.get(&path).await.expect(200).json();
    assert_eq!(open["status"]["isClosed"], false);
    assert!(open.get("closedBy").is_none());
    // Staff post it as paid.
    sb.patch("finance/invoices", w.invoice, json!({"status": {"id": 4}}));
    let closed = c.get(&path).await.expect(200).json();
    assert_eq!(closed["status"]["isClosed"], true);
    assert_eq!(closed["status"]["name"], "Paid");
    assert_eq!(closed["closedBy"], "jsmith");
    // Reopened through the API, it is no longer closed by anyone.
    let reopened = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "status", "value": {"id": 2}}]),
        )
        .await
        .expect(200)
        .json();
    assert!(reopened.get("closedBy").is_none(), "{reopened}");
}

#[tokio::test]
async fn the_server_tells_its_clock_and_version() {
    let sb = Sandbox::start(SandboxConfig {
        version: "v2025.1".into(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = Client::new(&sb);
    sb.set_clock(784_111_777);
    let info = c.get("system/info").await.expect(200);
    assert_eq!(info.header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert!(
        info.json()["version"]
            .as_str()
            .unwrap()
            .starts_with("v2025.1."),
        "{}",
        info.text()
    );
    let company = c
        .get(&format!("/login/companyinfo/{}", sb.company_id()))
        .await
        .expect(200)
        .json();
    assert_eq!(company["VersionCode"], "v2025.1");
    c.post("system/info", &json!({})).await.expect(405);
    let anonymous = Client {
        authorization: None,
        ..c.clone()
    };
    anonymous.get("system/info").await.expect(401);
}
