//! The test handle: direct reads and edits, the clock, recorded requests.

use serde_json::json;

use crate::client::q;
use crate::fixtures::{self, company_body, start};

#[tokio::test]
async fn pinned_clock_gives_same_second_updates() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600);
    let a = c
        .post("company/companies", &company_body("A"))
        .await
        .expect(201)
        .json();
    let b = c
        .post("company/companies", &company_body("B"))
        .await
        .expect(201)
        .json();
    assert_eq!(a["_info"]["lastUpdated"], b["_info"]["lastUpdated"]);
    sb.advance_clock(3600);
    assert_eq!(sb.now(), 1_767_229_200);
    let b2 = c
        .patch(
            &format!("company/companies/{}", b["id"]),
            &json!([{"op": "replace", "path": "city", "value": "Miami"}]),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(b2["_info"]["lastUpdated"], "2026-01-01T01:00:00Z");
    sb.use_real_clock();
    assert!(sb.now() > 1_767_229_200 || sb.now() > 1_700_000_000);
}

#[tokio::test]
async fn insert_and_patch_act_as_a_remote_user() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600);
    let id = sb.insert(
        "company/companies",
        json!({"identifier": "REMOTE", "name": "Remote Co", "city": "Denver", "status": {"id": 1},
               "types": [{"id": 2}, {"id": 4}]}),
    );
    let rec = sb.record("company/companies", id).unwrap();
    assert_eq!(rec["_info"]["updatedBy"], "jsmith");
    assert_eq!(rec["types"][1]["name"], "Partner");
    assert_eq!(rec["status"]["name"], "Active");
    assert_eq!(
        c.get(&format!("company/companies/{id}"))
            .await
            .expect(200)
            .json(),
        rec
    );

    sb.advance_clock(10);
    sb.patch(
        "company/companies",
        id,
        json!({"name": "Remote Company", "city": null, "types": [{"id": 2}]}),
    );
    let rec = sb.record("company/companies", id).unwrap();
    assert_eq!(rec["name"], "Remote Company");
    assert!(rec.get("city").is_none());
    assert_eq!(rec["types"].as_array().unwrap().len(), 1);
    assert_eq!(rec["_info"]["lastUpdated"], "2026-01-01T00:00:10Z");
    assert_eq!(rec["_info"]["dateEntered"], "2026-01-01T00:00:00Z");

    // The pull side: a condition on lastUpdated finds the remote edit.
    let changed = c
        .get(&q(
            "company/companies",
            &[("conditions", "lastUpdated>[2026-01-01T00:00:05Z]")],
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(changed.as_array().unwrap().len(), 1);

    // Explicit ids replace; the next allocated id stays above them.
    let fixed = sb.insert(
        "company/companies",
        json!({"id": 600, "identifier": "FIXED", "name": "F", "zip": "1"}),
    );
    assert_eq!(fixed, 600);
    let next = fixtures::company(&c, "NEXT").await;
    assert_eq!(next, 601);
    assert!(sb.record("company/companies", 9999).is_none());
}

#[tokio::test]
async fn sub_resources_by_generic_or_concrete_name() {
    let (sb, c) = start().await;
    let w = fixtures::world(&c).await;
    let contact = sb.insert(
        "company/contacts",
        json!({"firstName": "Grace", "lastName": "Hopper", "company": {"id": w.company},
               "communicationItems": [{"type": {"id": 4}, "value": "555-0142"}]}),
    );
    let shown = sb.record("company/contacts", contact).unwrap();
    assert_eq!(shown["communicationItems"][0]["communicationType"], "Phone");
    assert_eq!(shown["communicationItems"][0]["defaultFlag"], true);
    let comm = sb.insert(
        &format!("company/contacts/{contact}/communications"),
        json!({"type": {"id": 1}, "value": "grace@example.com"}),
    );
    assert_eq!(
        sb.record("company/contacts/communications", comm).unwrap()["contactId"],
        contact
    );
    assert_eq!(
        sb.records(&format!(
            "/v4_6_release/apis/3.0/company/contacts/{contact}/communications"
        ))
        .len(),
        2
    );
    assert!(
        sb.record(
            &format!("company/contacts/{}/communications", w.contact),
            comm
        )
        .is_none()
    );

    let addition = sb.insert(
        "finance/agreements/additions",
        json!({"agreementId": w.agreement, "product": {"id": w.catalog}, "billCustomer": "DoNotBill"}),
    );
    let listed = c
        .get(&format!("finance/agreements/{}/additions", w.agreement))
        .await
        .expect(200)
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["id"], addition);
    let payments = sb.records("finance/invoices/payments");
    assert_eq!(payments[0]["invoice"]["id"], w.invoice);
    assert_eq!(sb.records("procurement/subcategories/").len(), 9);
}

#[tokio::test]
#[should_panic(expected = "no resource 'company/widgets'")]
async fn unknown_resource_names_panic() {
    let (sb, _c) = start().await;
    sb.records("company/widgets");
}

#[tokio::test]
async fn requests_are_recorded() {
    let (sb, c) = start().await;
    c.get(&q("company/companies", &[("conditions", "id>1")]))
        .await
        .expect(200);
    c.post("company/companies", &company_body("REC"))
        .await
        .expect(201);
    let seen = sb.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(sb.request_count(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v4_6_release/apis/3.0/company/companies");
    assert_eq!(seen[0].query.as_deref(), Some("conditions=id%3E1"));
    assert_eq!(
        seen[0].client_id.as_deref(),
        Some("3f1c9a52-0000-4000-8000-00000000c0de")
    );
    assert!(seen[0].authorization);
    assert_eq!(seen[0].status, Some(200));
    assert_eq!(seen[1].status, Some(201));
    assert_eq!(seen[1].body.as_ref().unwrap()["identifier"], "REC");
    sb.clear_requests();
    assert!(sb.requests().is_empty());
    assert_eq!(sb.request_count(), 0);
}
