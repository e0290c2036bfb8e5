//! Test support: canonical records as the BSS hands them to `bss-host push` (JSON, one a line in
//! an NDJSON file): numbered accounts and contacts whose ids, codes and e-mail addresses follow
//! the number, with the account type and currency the ConnectWise test instances have lookups
//! for, so any number of distinct, valid records can be made.

use std::path::Path;

use serde_json::{Value, json};

/// Account `A{i:04}` (code `C{i:04}`), a USD customer with a billing address in Austin.
pub fn account(i: usize) -> Value {
    json!({
        "id": format!("A{i:04}"), "code": format!("C{i:04}"), "name": format!("Account {i}"),
        "account-type": "Customer", "currency": "USD",
        "billing-address": { "line1": format!("{i} Main Street"), "city": "Austin", "country": "United States" }
    })
}

/// Contact `K{i:04}` of `account` (a BSS account id), or of none.
pub fn contact(i: usize, account: Option<&str>) -> Value {
    json!({
        "id": format!("K{i:04}"), "account": account, "first-name": format!("First{i}"),
        "last-name": "Doe", "email": format!("k{i}@example.com")
    })
}

/// Writes `records` to `path` as NDJSON.
pub fn write_ndjson(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}
