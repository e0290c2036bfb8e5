//! JSON Patch as ConnectWise takes it. Owns applying a PATCH body — an array of `{"op", "path", "value"}` — to a
//! record. Ops `add`, `replace` and `remove`; paths with or without a leading `/` (`status/id`, `/name`), `~0`/`~1`
//! escapes, array indexes and `-` (append). Like ConnectWise (whose reads omit empty fields), `replace` of an absent
//! field adds it, missing intermediate objects are created, and `remove` of an absent field does nothing.

use serde_json::{Map, Value};

/// Applies the operations to `doc` in order.
pub(crate) fn apply(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a PATCH body must be a JSON array of operations, e.g. [{\"op\":\"replace\",\"path\":\"name\",\"value\":\"x\"}]")?;
    for (i, op) in ops.iter().enumerate() {
        let kind = op["op"]
            .as_str()
            .ok_or(format!("operation {i} has no \"op\""))?;
        let path = op["path"]
            .as_str()
            .ok_or(format!("operation {i} has no \"path\""))?;
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("operation {i} has an invalid path \"{path}\""));
        }
        match kind.to_ascii_lowercase().as_str() {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .ok_or(format!("operation {i} ({kind} {path}) has no \"value\""))?;
                set(doc, &segments, value.clone())
                    .map_err(|e| format!("operation {i} ({kind} {path}): {e}"))?;
            }
            "remove" => {
                remove(doc, &segments).map_err(|e| format!("operation {i} (remove {path}): {e}"))?
            }
            other => {
                return Err(format!(
                    "operation {i}: unsupported op \"{other}\" (use add, replace or remove)"
                ));
            }
        }
    }
    Ok(())
}

fn set(doc: &mut Value, segments: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = segments.split_last().ok_or("empty path")?;
    let mut current = doc;
    for seg in parents {
        current = match current {
            Value::Object(map) => {
                let slot = map.entry(seg.clone()).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                slot
            }
            Value::Array(items) => {
                let idx: usize = seg
                    .parse()
                    .map_err(|_| format!("'{seg}' is not an array index"))?;
                items
                    .get_mut(idx)
                    .ok_or(format!("index {idx} is out of range"))?
            }
            _ => return Err(format!("'{seg}' is not inside an object or array")),
        };
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let idx: usize = last
                .parse()
                .map_err(|_| format!("'{last}' is not an array index"))?;
            match idx.cmp(&items.len()) {
                std::cmp::Ordering::Less => items[idx] = value,
                std::cmp::Ordering::Equal => items.push(value),
                std::cmp::Ordering::Greater => return Err(format!("index {idx} is out of range")),
            }
            Ok(())
        }
        _ => Err(format!("cannot set '{last}' inside a non-object")),
    }
}

fn remove(doc: &mut Value, segments: &[String]) -> Result<(), String> {
    let (last, parents) = segments.split_last().ok_or("empty path")?;
    let mut current = doc;
    for seg in parents {
        let next = match current {
            Value::Object(map) => map.get_mut(seg.as_str()),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => current = n,
            None => return Ok(()),
        }
    }
    match current {
        Value::Object(map) => {
            map.remove(last.as_str());
        }
        Value::Array(items) => {
            let idx: usize = last
                .parse()
                .map_err(|_| format!("'{last}' is not an array index"))?;
            if idx < items.len() {
                items.remove(idx);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_connectwise_style_paths() {
        let mut doc =
            json!({"name": "A", "status": {"id": 1, "name": "Active"}, "items": [{"v": 1}]});
        apply(
            &mut doc,
            &json!([
                {"op": "replace", "path": "name", "value": "B"},
                {"op": "replace", "path": "status/id", "value": 2},
                {"op": "replace", "path": "/country", "value": {"id": 3}},
                {"op": "add", "path": "items/-", "value": {"v": 2}},
                {"op": "replace", "path": "items/0/v", "value": 9},
                {"op": "replace", "path": "currency/id", "value": 4},
                {"op": "remove", "path": "nothing"},
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"name": "B", "status": {"id": 2, "name": "Active"}, "country": {"id": 3},
                   "items": [{"v": 9}, {"v": 2}], "currency": {"id": 4}})
        );
        apply(&mut doc, &json!([{"op": "remove", "path": "status"}])).unwrap();
        assert!(doc.get("status").is_none());
    }

    #[test]
    fn rejects_bad_bodies() {
        let mut doc = json!({});
        assert!(
            apply(&mut doc, &json!({"name": "x"}))
                .unwrap_err()
                .contains("array")
        );
        assert!(
            apply(&mut doc, &json!([{"op": "move", "path": "a"}]))
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(
            apply(&mut doc, &json!([{"op": "replace", "path": "a"}]))
                .unwrap_err()
                .contains("value")
        );
        assert!(
            apply(&mut doc, &json!([{"path": "a", "value": 1}]))
                .unwrap_err()
                .contains("op")
        );
    }
}
