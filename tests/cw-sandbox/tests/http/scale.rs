//! Ten thousand companies, as the push-then-pull benchmark leaves the sandbox: writes stay cheap however large the
//! table, and a forward-only pull walks the records once instead of scanning (and rendering) the table per page.
//!
//! The companies are seeded through the test handle: over HTTP a debug build spends about half a millisecond per
//! request whatever the table size, so ten thousand POSTs would make this the slowest test by far without testing
//! more (the handle's inserts go through the same store and indexes). Reads and the writes at scale are HTTP.

use serde_json::json;

use crate::client::q;
use crate::fixtures::{company_body, link, path_of, start};

const COMPANIES: usize = 10_000;
const PAGE: usize = 1000;

#[tokio::test]
async fn ten_thousand_companies_pulled_forward_only() {
    let (sb, c) = start().await;
    sb.set_clock(1_767_225_600); // 2026-01-01T00:00:00Z
    // Changed before the pull's cutoff: the condition must leave these out.
    for i in 0..3 {
        c.post("company/companies", &company_body(&format!("OLD{i}")))
            .await
            .expect(201);
    }
    sb.advance_clock(3600);
    let cutoff = "lastUpdated>=[2026-01-01T01:00:00Z]";
    let created: Vec<i64> = (0..COMPANIES)
        .map(|i| {
            sb.insert(
                "company/companies",
                json!({
                    "identifier": format!("BULK{i:05}"), "name": format!("Bulk {i}"), "city": "Austin",
                    "status": {"id": 1}, "types": [{"id": 1}],
                }),
            )
        })
        .collect();

    // Writes at this size: identifiers stay unique (ignoring case), and a company's types are its own.
    c.post("company/companies", &company_body("bulk04321"))
        .await
        .expect(400);
    let r = c
        .get(&format!("company/companies/{}", created[COMPANIES / 2]))
        .await
        .expect(200);
    assert_eq!(
        r.json()["types"],
        json!([{"id": 1, "name": "Client",
        "_info": {"type_href": format!("{}/company/companies/types/1", sb.api_url())}}])
    );

    let forward = c.clone().with_header("pagination-type", "forward-only");
    let mut path = q(
        "company/companies",
        &[("pageSize", &PAGE.to_string()), ("conditions", cutoff)],
    );
    let mut pulled = Vec::new();
    let mut pages = 0;
    loop {
        let r = forward.get(&path).await.expect(200);
        pages += 1;
        let items = r.json();
        let items = items.as_array().unwrap();
        assert!(items.len() <= PAGE);
        for item in items {
            assert!(item["identifier"].as_str().unwrap().starts_with("BULK"));
            assert_eq!(
                item["types"][0]["name"], "Client",
                "pulled records are rendered"
            );
            pulled.push(item["id"].as_i64().unwrap());
        }
        match link(&r, "next") {
            Some(url) => path = path_of(&url),
            None => break,
        }
    }
    assert_eq!(pulled.len(), COMPANIES);
    assert_eq!(pulled, created, "every record once, in id order");
    assert_eq!(
        pages,
        COMPANIES / PAGE,
        "the last full page has no next link"
    );

    let count = |conditions: Option<&str>| {
        let path = match conditions {
            Some(cond) => q("company/companies/count", &[("conditions", cond)]),
            None => "company/companies/count".to_string(),
        };
        let c = c.clone();
        async move { c.get(&path).await.expect(200).json()["count"].clone() }
    };
    assert_eq!(count(Some(cutoff)).await, COMPANIES);
    assert_eq!(count(None).await, COMPANIES + 3);
    assert_eq!(
        count(Some("types/name='Client' and city='Austin'")).await,
        COMPANIES
    );
}
