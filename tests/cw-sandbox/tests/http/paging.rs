//! Numbered pages, Link headers, forward-only paging, orderBy and fields.

use cw_sandbox::Sandbox;
use serde_json::{Value, json};

use crate::client::{Client, q};
use crate::fixtures::{link, path_of, start};

/// 30 companies inserted directly: identifiers C01..C30, names in reverse order, cities cycling.
fn seed(sb: &Sandbox) -> Vec<i64> {
    sb.set_clock(1_767_225_600);
    (1..=30)
        .map(|i| {
            sb.advance_clock(1);
            let city = ["Austin", "Boston", "Chicago"][i % 3];
            sb.insert(
                "company/companies",
                json!({
                    "identifier": format!("C{i:02}"), "name": format!("Company {:02}", 31 - i),
                    "city": city, "addressLine1": "x",
                    "status": {"id": 1}, "types": [{"id": 1}],
                }),
            )
        })
        .collect()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn numbered_pages_with_links() {
    let (sb, c) = start().await;
    let all = seed(&sb);
    let first = c.get("company/companies").await.expect(200);
    assert_eq!(ids(&first.json()), all[..25]);
    let next = link(&first, "next").expect("next link");
    assert!(
        next.starts_with(&format!("{}/company/companies?", sb.api_url())),
        "{next}"
    );
    assert!(next.ends_with("page=2"), "{next}");
    assert!(link(&first, "last").unwrap().ends_with("page=2"));
    assert!(link(&first, "prev").is_none() && link(&first, "first").is_none());

    let mid = c
        .get(&q(
            "company/companies",
            &[("pageSize", "10"), ("page", "2")],
        ))
        .await
        .expect(200);
    assert_eq!(ids(&mid.json()), all[10..20]);
    for (rel, page) in [("first", 1), ("prev", 1), ("next", 3), ("last", 3)] {
        let url = link(&mid, rel).unwrap_or_else(|| panic!("{rel} in {:?}", mid.header("link")));
        assert!(
            url.contains("pageSize=10") && url.ends_with(&format!("page={page}")),
            "{rel}: {url}"
        );
    }
    let last = c
        .get(&q(
            "company/companies",
            &[("pageSize", "10"), ("page", "3")],
        ))
        .await
        .expect(200);
    assert!(link(&last, "next").is_none());
    let beyond = c
        .get(&q(
            "company/companies",
            &[("pageSize", "10"), ("page", "9")],
        ))
        .await
        .expect(200);
    assert_eq!(beyond.json(), json!([]));

    // Following next links visits everything once, keeping the other parameters.
    let mut seen = Vec::new();
    let mut path = q(
        "company/companies",
        &[("pageSize", "7"), ("conditions", "city!='Nowhere'")],
    );
    loop {
        let r = c.get(&path).await.expect(200);
        seen.extend(ids(&r.json()));
        match link(&r, "next") {
            Some(url) => path = path_of(&url),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn page_size_limits() {
    let (sb, c) = start().await;
    seed(&sb);
    let r = c
        .get(&q("company/companies", &[("pageSize", "1000")]))
        .await
        .expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 30);
    assert!(r.header("link").is_none());
    for bad in ["1001", "0", "-5", "ten"] {
        let r = c
            .get(&q("company/companies", &[("pageSize", bad)]))
            .await
            .expect(400);
        assert!(
            r.json()["message"].as_str().unwrap().contains("pageSize"),
            "{bad}"
        );
    }
    c.get(&q("company/companies", &[("page", "0")]))
        .await
        .expect(400);
    // Parameter names are case-insensitive, as on ConnectWise.
    let r = c
        .get(&q("company/companies", &[("pagesize", "3")]))
        .await
        .expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn forward_only_paging() {
    let (sb, c) = start().await;
    let all = seed(&sb);
    let fwd = c.clone().with_header("pagination-type", "forward-only");
    let mut seen = Vec::new();
    let mut path = q("company/companies", &[("pageSize", "7")]);
    let mut pages = 0;
    loop {
        let r = fwd.get(&path).await.expect(200);
        pages += 1;
        seen.extend(ids(&r.json()));
        assert!(link(&r, "last").is_none() && link(&r, "prev").is_none());
        match link(&r, "next") {
            Some(url) => {
                assert!(
                    url.contains(&format!("pageId={}", seen.last().unwrap())),
                    "{url}"
                );
                path = path_of(&url);
            }
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(pages, 5);
    let r = fwd
        .get(&q("company/companies", &[("pageId", &all[27].to_string())]))
        .await
        .expect(200);
    assert_eq!(ids(&r.json()), all[28..]);
    let r = fwd
        .get(&q("company/companies", &[("orderBy", "name asc")]))
        .await
        .expect(400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("forward-only")
    );
    // Conditions still apply.
    let r = fwd
        .get(&q(
            "company/companies",
            &[("conditions", "city='Boston'"), ("pageSize", "3")],
        ))
        .await
        .expect(200);
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["city"] == "Boston")
    );
    assert_eq!(
        sb.requests().last().unwrap().pagination_type.as_deref(),
        Some("forward-only")
    );
}

#[tokio::test]
async fn order_by() {
    let (sb, c) = start().await;
    let all = seed(&sb);
    let get = |order: &'static str| {
        let c: Client = c.clone();
        async move {
            ids(&c
                .get(&q(
                    "company/companies",
                    &[("orderBy", order), ("pageSize", "50")],
                ))
                .await
                .expect(200)
                .json())
        }
    };
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(get("id asc").await, all);
    assert_eq!(get("id desc").await, reversed);
    assert_eq!(get("name asc").await, reversed);
    assert_eq!(get("name").await, reversed);
    assert_eq!(get("lastUpdated desc").await, reversed);
    assert_eq!(get("_info/lastUpdated asc").await, all);
    let by_city = get("city asc, id desc").await;
    let cities: Vec<String> = by_city
        .iter()
        .map(|id| {
            sb.record("company/companies", *id).unwrap()["city"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = cities.clone();
    sorted.sort();
    assert_eq!(cities, sorted);
    assert!(by_city[0] > by_city[1], "ties broken by id desc");
    let r = c
        .get(&q("company/companies", &[("orderBy", "shoeSize asc")]))
        .await
        .expect(400);
    assert!(r.json()["message"].as_str().unwrap().contains("shoeSize"));
    c.get(&q("company/companies", &[("orderBy", "name upwards")]))
        .await
        .expect(400);
    // Ordering by a field only reads fill in (stored statuses are bare ids): "Active" before "Inactive".
    for id in [all[3], all[17]] {
        sb.patch("company/companies", id, json!({"status": {"id": 2}}));
    }
    let by_status = get("status/name desc, id asc").await;
    assert_eq!(by_status[..2], [all[3], all[17]]);
    assert_eq!(get("status/name").await[28..], [all[3], all[17]]);
}

#[tokio::test]
async fn fields_projection() {
    let (sb, c) = start().await;
    let all = seed(&sb);
    let r = c
        .get(&q(
            "company/companies",
            &[("fields", "id,identifier,status/name"), ("pageSize", "2")],
        ))
        .await;
    assert_eq!(
        r.expect(200).json(),
        json!([{"id": all[0], "identifier": "C01", "status": {"name": "Active"}},
               {"id": all[1], "identifier": "C02", "status": {"name": "Active"}}])
    );
    let one = c
        .get(&q(
            &format!("company/companies/{}", all[2]),
            &[("fields", "name")],
        ))
        .await
        .expect(200);
    assert_eq!(one.json(), json!({"name": "Company 28"}));
}

#[tokio::test]
async fn count_honours_conditions() {
    let (sb, c) = start().await;
    seed(&sb);
    let n = |cond: &'static str| {
        let c = c.clone();
        async move {
            c.get(&q("company/companies/count", &[("conditions", cond)]))
                .await
                .expect(200)
                .json()["count"]
                .clone()
        }
    };
    assert_eq!(n("city='Austin'").await, 10);
    assert_eq!(n("city='Austin' or city='Boston'").await, 20);
    assert_eq!(n("identifier like 'C1%'").await, 10);
    let r = c
        .get(&q("company/companies/count", &[("conditions", "city=")]))
        .await
        .expect(400);
    assert_eq!(r.json()["code"], "InvalidConditions");
}
