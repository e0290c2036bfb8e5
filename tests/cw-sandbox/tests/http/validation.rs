//! Validation errors with ConnectWise's exact error body shape.

use serde_json::{Value, json};

use crate::fixtures::{self, company_body, start};

fn error(code: &str, message: &str, resource: &str, field: &str) -> Value {
    json!({"code": code, "message": message, "resource": resource, "field": field})
}

fn invalid(resource: &str, errors: Vec<Value>) -> Value {
    json!({"code": "InvalidObject", "message": format!("{resource} object is invalid"), "errors": errors})
}

#[tokio::test]
async fn required_fields() {
    let (_sb, c) = start().await;
    let r = c
        .post("company/companies", &json!({"city": "Tampa"}))
        .await
        .expect(400);
    assert_eq!(
        r.json(),
        invalid(
            "company",
            vec![
                error(
                    "MissingRequiredField",
                    "The identifier field is required.",
                    "company",
                    "identifier"
                ),
                error(
                    "MissingRequiredField",
                    "The name field is required.",
                    "company",
                    "name"
                ),
            ]
        )
    );
    let r = c
        .post(
            "procurement/catalog",
            &json!({"identifier": "X", "description": "d"}),
        )
        .await
        .expect(400);
    let body = r.json();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["subcategory", "type", "customerDescription"]);
    let r = c
        .post("sales/orders", &json!({"company": {"id": 999999}}))
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"],
        json!([
            error(
                "NotFound",
                "Company 999999 not found",
                "order",
                "company/id"
            ),
            error(
                "MissingRequiredField",
                "The status field is required.",
                "order",
                "status"
            ),
            error(
                "MissingRequiredField",
                "The salesRep field is required.",
                "order",
                "salesRep"
            ),
        ])
    );
    let r = c
        .post("company/contacts", &json!({"lastName": "Only"}))
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"][0],
        error(
            "MissingRequiredField",
            "The firstName field is required.",
            "contact",
            "firstName"
        )
    );
    let r = c
        .post(
            "company/companies",
            &json!({"identifier": "  ", "name": "x", "city": "y"}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"][0]["field"],
        "identifier",
        "blank counts as missing"
    );
}

#[tokio::test]
async fn max_lengths() {
    let (_sb, c) = start().await;
    let mut body = company_body(&"X".repeat(31));
    body["name"] = json!("N".repeat(51));
    let r = c.post("company/companies", &body).await.expect(400);
    assert_eq!(
        r.json(),
        invalid(
            "company",
            vec![
                error(
                    "MaxLengthField",
                    "The field identifier must be a string with a maximum length of 30.",
                    "company",
                    "identifier"
                ),
                error(
                    "MaxLengthField",
                    "The field name must be a string with a maximum length of 50.",
                    "company",
                    "name"
                ),
            ]
        )
    );
    c.post("company/companies", &company_body(&"X".repeat(30)))
        .await
        .expect(201);
    let r = c
        .post(
            "procurement/catalog",
            &json!({"identifier": "I".repeat(76), "description": "d", "customerDescription": "c",
                    "subcategory": {"id": 1}, "type": {"id": 1}}),
        )
        .await
        .expect(400);
    assert_eq!(r.json()["errors"][0]["code"], "MaxLengthField");
    assert_eq!(r.json()["errors"][0]["resource"], "catalogItem");
}

#[tokio::test]
async fn missing_references() {
    let (_sb, c) = start().await;
    let mut body = company_body("ACME");
    body["status"] = json!({"id": 999});
    body["country"] = json!({"id": 77});
    body["types"] = json!([{"id": 1}, {"id": 42}]);
    let r = c.post("company/companies", &body).await.expect(400);
    assert_eq!(
        r.json(),
        invalid(
            "company",
            vec![
                error(
                    "NotFound",
                    "CompanyStatus 999 not found",
                    "company",
                    "status/id"
                ),
                error(
                    "NotFound",
                    "CompanyType 42 not found",
                    "company",
                    "types/id"
                ),
                error("NotFound", "Country 77 not found", "company", "country/id"),
            ]
        )
    );
    // A reference may name its target instead of giving the id.
    let mut body = company_body("ACME");
    body["country"] = json!({"name": "canada"});
    body["status"] = json!({"name": "Imported"});
    let created = c.post("company/companies", &body).await.expect(201).json();
    assert_eq!(created["country"]["id"], 2);
    assert_eq!(created["status"]["id"], 4);
    let r = c
        .post(
            "company/contacts",
            &json!({"firstName": "A", "company": {"identifier": "NOPE"}}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"][0],
        error(
            "NotFound",
            "Company 'NOPE' not found",
            "contact",
            "company/identifier"
        )
    );
    let ok = c
        .post(
            "company/contacts",
            &json!({"firstName": "A", "company": {"identifier": "acme"}}),
        )
        .await
        .expect(201);
    assert_eq!(ok.json()["company"]["identifier"], "ACME");
}

#[tokio::test]
async fn a_company_needs_an_address_field() {
    let (_sb, c) = start().await;
    let r = c
        .post(
            "company/companies",
            &json!({"identifier": "A", "name": "A"}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json(),
        invalid(
            "company",
            vec![error(
                "MissingRequiredField",
                "At least one address field is required -- addressLine1, addressLine2, city, state, zip and/or country.",
                "company",
                "addressLine1"
            )]
        )
    );
    for (field, value) in [
        ("zip", json!("33602")),
        ("country", json!({"id": 1})),
        ("state", json!("FL")),
    ] {
        let mut body = json!({"identifier": format!("A-{field}"), "name": "A"});
        body[field] = value;
        c.post("company/companies", &body).await.expect(201);
    }
}

#[tokio::test]
async fn types_only_on_post() {
    let (_sb, c) = start().await;
    let id = fixtures::company(&c, "ACME").await;
    let path = format!("company/companies/{id}");
    let r = c
        .patch(
            &path,
            &json!([{"op": "replace", "path": "types", "value": [{"id": 2}]}]),
        )
        .await
        .expect(400);
    let body = r.json();
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(body["errors"][0]["code"], "InvalidField");
    assert_eq!(body["errors"][0]["field"], "types");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("typeAssociations")
    );
    let mut put = company_body("ACME");
    put["types"] = json!([{"id": 1}, {"id": 3}]);
    c.put(&path, &put).await.expect(400);
    // Sending back the types it has is fine.
    c.patch(
        &path,
        &json!([{"op": "replace", "path": "types", "value": [{"id": 1}]}]),
    )
    .await
    .expect(200);
    c.patch(
        &path,
        &json!([{"op": "replace", "path": "name", "value": "New name"}]),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn identifiers_are_unique() {
    let (_sb, c) = start().await;
    let id = fixtures::company(&c, "ACME").await;
    let r = c
        .post("company/companies", &company_body("acme"))
        .await
        .expect(400);
    assert_eq!(
        r.json(),
        invalid(
            "company",
            vec![error(
                "InvalidField",
                &format!("The identifier 'acme' is already in use by Company {id}."),
                "company",
                "identifier"
            )]
        )
    );
    c.put(&format!("company/companies/{id}"), &company_body("ACME"))
        .await
        .expect(200);
    fixtures::catalog_item(&c, "SKU-1").await;
    let r = c
        .post(
            "procurement/catalog",
            &json!({"identifier": "SKU-1", "description": "d", "customerDescription": "c",
                    "subcategory": {"id": 5}, "type": {"id": 1}}),
        )
        .await
        .expect(400);
    assert_eq!(r.json()["errors"][0]["field"], "identifier");
    assert_eq!(r.json()["errors"][0]["resource"], "catalogItem");
}

#[tokio::test]
async fn types_enums_and_dates() {
    let (_sb, c) = start().await;
    let company = fixtures::company(&c, "ACME").await;
    let r = c
        .post(
            "finance/invoices",
            &json!({"type": "Invoice", "company": {"id": company}, "date": "someday"}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"],
        json!([
            error(
                "InvalidField",
                "date must be a date-time like 2026-01-31T00:00:00Z, not 'someday'",
                "invoice",
                "date"
            ),
            error(
                "InvalidField",
                "type must be one of Agreement, CreditMemo, DownPayment, Miscellaneous, Progress, Standard, Consolidated, not 'Invoice'",
                "invoice",
                "type"
            ),
        ])
    );
    let mut body = company_body("TYPED");
    body["name"] = json!(5);
    body["numberOfEmployees"] = json!("many");
    let r = c.post("company/companies", &body).await.expect(400);
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["name", "numberOfEmployees"]);
    // Dates are normalised; unknown fields are dropped like the real binder does.
    let mut body = company_body("DATED");
    body["dateAcquired"] = json!("2026-03-01");
    body["favouriteColour"] = json!("teal");
    let created = c.post("company/companies", &body).await.expect(201).json();
    assert_eq!(created["dateAcquired"], "2026-03-01T00:00:00Z");
    assert!(created.get("favouriteColour").is_none());
    let r = c
        .post(
            "procurement/products",
            &json!({"catalogItem": {"id": 1}, "billableOption": "Sometimes"}),
        )
        .await
        .expect(400);
    let errs = r.json()["errors"].clone();
    assert_eq!(errs[0]["field"], "billableOption");
    assert_eq!(
        errs[1],
        error(
            "NotFound",
            "CatalogItem 1 not found",
            "productItem",
            "catalogItem/id"
        )
    );
}

#[tokio::test]
async fn resource_rules() {
    let (_sb, c) = start().await;
    let r = c
        .post(
            "procurement/catalog",
            &json!({"identifier": "X", "description": "d", "customerDescription": "c",
                    "subcategory": {"id": 1}, "category": {"id": 2}, "type": {"id": 1}}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"][0],
        error(
            "InvalidField",
            "Subcategory 1 does not belong to category 2",
            "catalogItem",
            "subcategory/id"
        )
    );
    let ok = c
        .post(
            "procurement/catalog",
            &json!({"identifier": "X", "description": "d", "customerDescription": "c",
                    "subcategory": {"id": 1}, "type": {"id": 1}}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(
        ok["category"]["name"], "Hardware",
        "the category follows the subcategory"
    );
    assert_eq!(ok["productClass"], "NonInventory");

    let company = fixtures::company(&c, "ACME").await;
    let r = c
        .post(
            "company/contacts",
            &json!({"firstName": "A", "company": {"id": company},
                    "communicationItems": [{"type": {"id": 1}}, {"value": "x"}, {"type": {"id": 99}, "value": "y"}]}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"],
        json!([
            error(
                "NotFound",
                "CommunicationType 99 not found",
                "contact",
                "communicationItems/type/id"
            ),
            error(
                "MissingRequiredField",
                "The communicationItems/value field is required.",
                "contact",
                "communicationItems/value"
            ),
            error(
                "MissingRequiredField",
                "The communicationItems/type field is required.",
                "contact",
                "communicationItems/type"
            ),
        ])
    );

    let contact = fixtures::contact(&c, company).await;
    let catalog = fixtures::catalog_item(&c, "SKU").await;
    let agreement = fixtures::agreement(&c, company, contact).await;
    let r = c
        .post(
            &format!("finance/agreements/{agreement}/additions"),
            &json!({"product": {"id": catalog}, "billCustomer": "Billable", "customFields": [{"id": 77, "value": "x"}]}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json()["errors"][0],
        error(
            "NotFound",
            "Custom field 77 is not defined for addition",
            "addition",
            "customFields/id"
        )
    );
    let r = c.post("sales/orders", &json!({"company": {"id": company}, "status": {"id": 1}, "salesRep": {"id": 1}, "productIds": [123456]})).await.expect(400);
    assert_eq!(r.json()["errors"][0]["field"], "productIds");
}

#[tokio::test]
async fn unknown_ids_and_bad_patches() {
    let (_sb, c) = start().await;
    let r = c.get("procurement/catalog/424242").await.expect(404);
    assert_eq!(
        r.json(),
        json!({"code": "NotFound", "message": "CatalogItem with id 424242 was not found."})
    );
    c.patch("finance/invoices/1", &json!([])).await.expect(404);
    c.put("sales/orders/1", &json!({})).await.expect(404);
    let id = fixtures::company(&c, "ACME").await;
    let r = c
        .patch(&format!("company/companies/{id}"), &json!({"name": "x"}))
        .await
        .expect(400);
    assert!(r.json()["message"].as_str().unwrap().contains("array"));
    let r = c
        .patch(
            &format!("company/companies/{id}"),
            &json!([{"op": "copy", "path": "name", "from": "x"}]),
        )
        .await
        .expect(400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("unsupported op")
    );
    // A patch that breaks a rule is refused as a whole.
    let r = c
        .patch(
            &format!("company/companies/{id}"),
            &json!([{"op": "replace", "path": "name", "value": "ok"}, {"op": "replace", "path": "status/id", "value": 404}]),
        )
        .await
        .expect(400);
    assert_eq!(r.json()["errors"][0]["field"], "status/id");
    let shown = c
        .get(&format!("company/companies/{id}"))
        .await
        .expect(200)
        .json();
    assert_eq!(shown["name"], "ACME Ltd");
}
