//! Credentials, clientId, companyinfo and routing.

use cw_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

use crate::client::Client;
use crate::fixtures::start;

#[tokio::test]
async fn good_credentials_are_accepted() {
    let (_sb, c) = start().await;
    let r = c.get("company/companies/statuses").await.expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 5);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let (sb, good) = start().await;
    let basic = |user: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user)
        )
    };
    for auth in [
        Some(basic("sandbox+sandbox-public:wrong")),
        Some(basic("other+sandbox-public:sandbox-private")),
        Some(basic("sandbox+other:sandbox-private")),
        Some(basic("sandbox-public:sandbox-private")),
        Some("Bearer abc".to_string()),
        None,
    ] {
        let c = Client {
            authorization: auth.clone(),
            ..good.clone()
        };
        let r = c.get("company/companies").await.expect(401);
        let body = r.json();
        assert_eq!(body["code"], "Unauthorized", "{auth:?}");
        assert!(body["message"].as_str().unwrap().len() > 10);
    }
    assert_eq!(sb.request_count(), 6);
}

#[tokio::test]
async fn missing_client_id_is_refused() {
    let (sb, good) = start().await;
    for client_id in [None, Some(String::new()), Some("   ".to_string())] {
        let c = Client {
            client_id,
            ..good.clone()
        };
        let r = c.get("company/companies").await.expect(401);
        assert_eq!(r.json()["code"], "Unauthorized");
        assert!(r.json()["message"].as_str().unwrap().contains("clientId"));
    }
    let seen = sb.requests();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.authorization && s.status == Some(401))
    );
    assert_eq!(seen[0].client_id, None);
}

#[tokio::test]
async fn configured_credentials_replace_the_defaults() {
    let config = SandboxConfig {
        company_id: "acme".into(),
        public_key: "pub123".into(),
        private_key: "priv456".into(),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    let c = Client::new(&sb);
    c.get("system/members").await.expect(200);
    use base64::Engine as _;
    let default = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("sandbox+sandbox-public:sandbox-private")
    );
    let old = Client {
        authorization: Some(default),
        ..c.clone()
    };
    old.get("system/members").await.expect(401);
    // The user name's company part is case-insensitive, like the login company.
    let upper = Client {
        authorization: Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ACME+pub123:priv456")
        )),
        ..c.clone()
    };
    upper.get("system/members").await.expect(200);
}

#[tokio::test]
async fn company_info_needs_no_credentials() {
    let (sb, good) = start().await;
    let anonymous = Client {
        authorization: None,
        client_id: None,
        ..good
    };
    let r = anonymous
        .get("/login/companyinfo/sandbox")
        .await
        .expect(200);
    let info = r.json();
    assert_eq!(info["Codebase"], "v4_6_release/");
    assert_eq!(info["CompanyID"], "sandbox");
    assert!(info["CompanyName"].is_string());
    assert!(info["VersionCode"].as_str().unwrap().starts_with('v'));
    anonymous
        .get("/login/companyinfo/SANDBOX")
        .await
        .expect(200);
    let r = anonymous.get("/login/companyinfo/nobody").await.expect(404);
    assert_eq!(r.json()["code"], "NotFound");
    assert_eq!(sb.request_count(), 0, "companyinfo is not an API request");
    assert_eq!(sb.requests().len(), 3);
}

#[tokio::test]
async fn unknown_paths_and_the_subcategories_slash() {
    let (_sb, c) = start().await;
    let r = c.get("company/nothing").await.expect(404);
    assert_eq!(r.json()["code"], "NotFound");
    c.get("/somewhere/else").await.expect(404);
    c.get("company/companies/abc").await.expect(404);
    let r = c.get("procurement/subcategories/").await.expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 9);
    c.get("procurement/subcategories").await.expect(404);
    c.get("procurement/subcategories/4").await.expect(200);
    let r = c.get("procurement/subcategories/count").await.expect(200);
    assert_eq!(r.json(), json!({"count": 9}));
}

#[tokio::test]
async fn setup_tables_are_read_only() {
    let (_sb, c) = start().await;
    let r = c
        .post("company/companies/statuses", &json!({"name": "New"}))
        .await
        .expect(405);
    assert_eq!(r.header("allow"), Some("GET"));
    c.delete("finance/currencies/1").await.expect(405);
    c.get("finance/currencies/1").await.expect(200);
    c.get("finance/currencies/99").await.expect(404);
}
