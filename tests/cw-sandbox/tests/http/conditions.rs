//! The conditions language over HTTP: each operator, nested paths, dates, logic, errors.

use cw_sandbox::Sandbox;
use serde_json::json;

use crate::client::{Client, q};
use crate::fixtures::start;

struct Data {
    acme: i64,
    globex: i64,
    initech: i64,
    obrien: i64,
}

fn seed(sb: &Sandbox) -> Data {
    sb.set_clock(1_767_225_600); // 2026-01-01T00:00:00Z
    let acme = sb.insert(
        "company/companies",
        json!({"identifier": "ACME", "name": "Acme Corp", "city": "Tampa", "country": {"id": 1},
               "leadFlag": false, "annualRevenue": 1000000.0, "numberOfEmployees": 50, "types": [{"id": 1}]}),
    );
    sb.advance_clock(86_400);
    let globex = sb.insert(
        "company/companies",
        json!({"identifier": "GLOBEX", "name": "Globex Corporation", "city": "Toronto", "country": {"id": 2},
               "leadFlag": true, "annualRevenue": 250000.5, "numberOfEmployees": 12, "types": [{"id": 2}, {"id": 4}]}),
    );
    sb.advance_clock(86_400);
    let initech = sb.insert(
        "company/companies",
        json!({"identifier": "INITECH", "name": "Initech", "city": "Austin", "country": {"id": 1},
               "numberOfEmployees": 300, "types": [{"id": 1}]}),
    );
    sb.advance_clock(86_400);
    let obrien = sb.insert(
        "company/companies",
        json!({"identifier": "OBRIEN", "name": "O'Brien & Sons", "city": "Dublin", "country": {"id": 3},
               "numberOfEmployees": 5, "types": [{"id": 3}]}),
    );
    sb.insert(
        "company/contacts",
        json!({"firstName": "Wile", "lastName": "Coyote", "company": {"id": acme}}),
    );
    sb.insert(
        "company/contacts",
        json!({"firstName": "Hank", "lastName": "Scorpio", "company": {"id": globex}}),
    );
    Data {
        acme,
        globex,
        initech,
        obrien,
    }
}

async fn matching(c: &Client, path: &str, cond: &str) -> Vec<i64> {
    let r = c
        .get(&q(path, &[("conditions", cond), ("pageSize", "100")]))
        .await;
    assert_eq!(r.status, 200, "{cond}: {}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn comparison_operators() {
    let (sb, c) = start().await;
    let d = seed(&sb);
    let all = vec![d.acme, d.globex, d.initech, d.obrien];
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("identifier='ACME'", vec![d.acme]),
        ("identifier = 'acme'", vec![d.acme]),
        ("name=\"Initech\"", vec![d.initech]),
        ("identifier!='ACME'", vec![d.globex, d.initech, d.obrien]),
        ("numberOfEmployees>12", vec![d.acme, d.initech]),
        ("numberOfEmployees>=12", vec![d.acme, d.globex, d.initech]),
        ("numberOfEmployees<12", vec![d.obrien]),
        ("numberOfEmployees<=12", vec![d.globex, d.obrien]),
        ("annualRevenue=250000.5", vec![d.globex]),
    ];
    for (cond, want) in cases {
        assert_eq!(
            matching(&c, "company/companies", cond).await,
            want,
            "{cond}"
        );
    }
    assert_eq!(
        matching(&c, "company/companies", &format!("id={}", d.globex)).await,
        [d.globex]
    );
    assert_eq!(matching(&c, "company/companies", "id>0").await, all);
}

#[tokio::test]
async fn text_operators_and_quoting() {
    let (sb, c) = start().await;
    let d = seed(&sb);
    for (cond, want) in [
        ("name like 'Glo%'", vec![d.globex]),
        ("name like '%corp%'", vec![d.acme, d.globex]),
        ("name like 'Initec_'", vec![d.initech]),
        ("name not like '%corp%'", vec![d.initech, d.obrien]),
        ("name contains 'tech'", vec![d.initech]),
        ("name not contains 'o'", vec![d.initech]),
        ("name='O''Brien & Sons'", vec![d.obrien]),
        ("name='O\\'Brien & Sons'", vec![d.obrien]),
        (
            "identifier in ('ACME', 'INITECH', 'NOPE')",
            vec![d.acme, d.initech],
        ),
        (
            "identifier not in ('ACME', 'INITECH')",
            vec![d.globex, d.obrien],
        ),
    ] {
        assert_eq!(
            matching(&c, "company/companies", cond).await,
            want,
            "{cond}"
        );
    }
    let ids = format!("id in ({}, {})", d.acme, d.obrien);
    assert_eq!(
        matching(&c, "company/companies", &ids).await,
        [d.acme, d.obrien]
    );
}

#[tokio::test]
async fn nested_paths_booleans_nulls_and_dates() {
    let (sb, c) = start().await;
    let d = seed(&sb);
    for (cond, want) in [
        ("country/id=1", vec![d.acme, d.initech]),
        ("country/name='Canada'", vec![d.globex]),
        ("country/identifier='GB'", vec![d.obrien]),
        ("types/id=4", vec![d.globex]),
        ("types/name='Client'", vec![d.acme, d.initech]),
        ("status/name='Active'", vec![]),
        ("leadFlag=true", vec![d.globex]),
        ("leadFlag=false", vec![d.acme]),
        ("leadFlag=null", vec![d.initech, d.obrien]),
        ("leadFlag!=null", vec![d.acme, d.globex]),
        (
            "lastUpdated>[2026-01-02T00:00:00Z]",
            vec![d.initech, d.obrien],
        ),
        (
            "lastUpdated>=[2026-01-02T00:00:00Z]",
            vec![d.globex, d.initech, d.obrien],
        ),
        ("_info/lastUpdated<[2026-01-02T00:00:00Z]", vec![d.acme]),
        ("lastUpdated=[2026-01-03T00:00:00Z]", vec![d.initech]),
        (
            "_info/updatedBy='jsmith'",
            vec![d.acme, d.globex, d.initech, d.obrien],
        ),
    ] {
        assert_eq!(
            matching(&c, "company/companies", cond).await,
            want,
            "{cond}"
        );
    }
    let contacts = matching(&c, "company/contacts", "company/identifier='GLOBEX'").await;
    assert_eq!(contacts.len(), 1);
    let contact = sb.record("company/contacts", contacts[0]).unwrap();
    assert_eq!(contact["lastName"], "Scorpio");
    assert_eq!(
        matching(&c, "company/contacts", &format!("company/id={}", d.acme))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn logic_and_parentheses() {
    let (sb, c) = start().await;
    let d = seed(&sb);
    for (cond, want) in [
        ("country/id=1 and numberOfEmployees>100", vec![d.initech]),
        ("city='Tampa' or city='Dublin'", vec![d.acme, d.obrien]),
        ("not country/id=1", vec![d.globex, d.obrien]),
        (
            "NOT (city='Tampa' OR city='Dublin')",
            vec![d.globex, d.initech],
        ),
        (
            "(city='Tampa' or city='Toronto') and leadFlag=true",
            vec![d.globex],
        ),
        (
            "city='Tampa' or city='Toronto' and leadFlag=true",
            vec![d.acme, d.globex],
        ),
        ("not (not identifier='ACME')", vec![d.acme]),
        ("((identifier='ACME'))", vec![d.acme]),
    ] {
        assert_eq!(
            matching(&c, "company/companies", cond).await,
            want,
            "{cond}"
        );
    }
}

#[tokio::test]
async fn bad_conditions_are_400() {
    let (sb, c) = start().await;
    seed(&sb);
    for (cond, needle) in [
        ("name=", "expected a value at position 6"),
        ("name 'Acme'", "expected an operator after 'name'"),
        ("(name='Acme'", "expected ')'"),
        ("name='Acme", "unterminated string"),
        ("lastUpdated>[tomorrow]", "invalid date"),
        ("name='a' and", "expected a field name"),
        ("shoeSize=42", "unknown field 'shoeSize'"),
        ("name ~ 'x'", "unexpected character '~'"),
    ] {
        let r = c
            .get(&q("company/companies", &[("conditions", cond)]))
            .await
            .expect(400);
        let body = r.json();
        assert_eq!(body["code"], "InvalidConditions", "{cond}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{cond}: {message}");
    }
    // childConditions and customFieldConditions are accepted (and ignored).
    c.get(&q(
        "company/companies",
        &[
            ("childConditions", "types/id=1"),
            ("customFieldConditions", "caption='x'"),
        ],
    ))
    .await
    .expect(200);
}
