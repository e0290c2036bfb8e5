//! List queries. Owns reading the list parameters (`conditions`, `orderBy`, `fields`, `page`, `pageSize`, `pageId`;
//! names case-insensitive; `childConditions` and `customFieldConditions` are accepted and ignored), checking the
//! field names they mention against the resource's schema, ordering, the two paging modes — numbered pages (default
//! size 25, at most 1000, `Link` header with `first`/`prev`/`next`/`last`) and forward-only paging (request header
//! `pagination-type: forward-only`: ordered by id, records with id > `pageId`, `Link` `next` carrying the last id;
//! `orderBy` is refused) — and the `fields` projection.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::conditions::{self, Expr};
use crate::error::ApiError;
use crate::schema::Model;

pub(crate) const DEFAULT_PAGE_SIZE: u64 = 25;
pub(crate) const MAX_PAGE_SIZE: u64 = 1000;

#[derive(Debug)]
pub(crate) struct ListParams {
    pub conditions: Option<Expr>,
    order: Vec<(Vec<String>, bool)>,
    fields: Option<Vec<Vec<String>>>,
    page: u64,
    page_size: u64,
    page_id: i64,
    forward_only: bool,
}

/// A page of results and its `Link` header.
#[derive(Debug)]
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub link: Option<String>,
}

/// The value of query parameter `name` (case-insensitive; the last one wins).
pub(crate) fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the conditions parameter alone (for `/count`).
pub(crate) fn parse_conditions(
    query: &[(String, String)],
    model: &Model,
) -> Result<Option<Expr>, ApiError> {
    let Some(text) = param(query, "conditions").filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let expr = conditions::parse(text)
        .map_err(|e| ApiError::new(400, "InvalidConditions", format!("conditions: {e}")))?;
    for path in conditions::paths(&expr) {
        check_field(model, path).map_err(|f| {
            ApiError::new(
                400,
                "InvalidConditions",
                format!("conditions: unknown field '{f}'"),
            )
        })?;
    }
    Ok(Some(expr))
}

pub(crate) fn parse(
    query: &[(String, String)],
    forward_only: bool,
    model: &Model,
) -> Result<ListParams, ApiError> {
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        param(query, name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be an integer, not '{v}'"))
                })
            })
            .transpose()
    };
    let page_size = match number("pageSize")? {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if n < 1 => {
            return Err(ApiError::bad_request(format!(
                "pageSize must be at least 1, not {n}"
            )));
        }
        Some(n) if n as u64 > MAX_PAGE_SIZE => {
            return Err(ApiError::bad_request(format!(
                "pageSize must be at most {MAX_PAGE_SIZE}, not {n}"
            )));
        }
        Some(n) => n as u64,
    };
    let page = match number("page")? {
        None => 1,
        Some(n) if n < 1 => {
            return Err(ApiError::bad_request(format!(
                "page must be at least 1, not {n}"
            )));
        }
        Some(n) => n as u64,
    };
    let page_id = number("pageId")?.unwrap_or(0);
    let mut order = Vec::new();
    if let Some(text) = param(query, "orderBy").filter(|t| !t.trim().is_empty()) {
        if forward_only {
            return Err(ApiError::bad_request(
                "orderBy cannot be used with forward-only pagination (pagination-type: forward-only); results are ordered by id",
            ));
        }
        for part in text.split(',') {
            let mut words = part.split_whitespace();
            let field = words
                .next()
                .ok_or_else(|| ApiError::bad_request(format!("orderBy: empty term in '{text}'")))?;
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "orderBy: expected asc or desc after {field}, not '{other}'"
                    )));
                }
            };
            if words.next().is_some() {
                return Err(ApiError::bad_request(format!(
                    "orderBy: unexpected text in '{}'",
                    part.trim()
                )));
            }
            let path: Vec<String> = field.split('/').map(String::from).collect();
            check_field(model, &path)
                .map_err(|f| ApiError::bad_request(format!("orderBy: unknown field '{f}'")))?;
            order.push((path, desc));
        }
    }
    let fields = fields_param(query);
    Ok(ListParams {
        conditions: parse_conditions(query, model)?,
        order,
        fields,
        page,
        page_size,
        page_id,
        forward_only,
    })
}

/// A field path must start with a declared field (`lastUpdated` and `_info` always exist).
fn check_field(model: &Model, path: &[String]) -> Result<(), String> {
    let first = path.first().map(String::as_str).unwrap_or_default();
    if model.has(first) || first == "lastUpdated" || first == "_info" || first == "id" {
        Ok(())
    } else {
        Err(path.join("/"))
    }
}

/// Orders, pages and projects `records` (rendered, already filtered by conditions). `url` is the list URL without
/// query; `query` the request's parameters, kept in the links.
pub(crate) fn page(
    mut records: Vec<Value>,
    p: &ListParams,
    url: &str,
    query: &[(String, String)],
) -> Page {
    let size = p.page_size as usize;
    let (items, link) = if p.forward_only {
        records.retain(|r| r["id"].as_i64().unwrap_or_default() > p.page_id);
        records.sort_by_key(|r| r["id"].as_i64().unwrap_or_default());
        let more = records.len() > size;
        records.truncate(size);
        let link = match (more, records.last().and_then(|r| r["id"].as_i64())) {
            (true, Some(last)) => Some(format!(
                "<{}>; rel=\"next\"",
                link_url(
                    url,
                    query,
                    &["page", "pageId"],
                    ("pageId", last.to_string())
                )
            )),
            _ => None,
        };
        (records, link)
    } else {
        records.sort_by(|a, b| {
            for (path, desc) in &p.order {
                let o = compare(first(a, path), first(b, path));
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a["id"].as_i64().cmp(&b["id"].as_i64())
        });
        let total = records.len();
        let last_page = total.div_ceil(size).max(1) as u64;
        let start = ((p.page - 1) as usize).saturating_mul(size).min(total);
        let items: Vec<Value> = records.drain(start..(start + size).min(total)).collect();
        let mut rels = Vec::new();
        let to = |n: u64| link_url(url, query, &["page"], ("page", n.to_string()));
        if p.page > 1 {
            rels.push(format!("<{}>; rel=\"first\"", to(1)));
            rels.push(format!(
                "<{}>; rel=\"prev\"",
                to((p.page - 1).min(last_page))
            ));
        }
        if p.page < last_page {
            rels.push(format!("<{}>; rel=\"next\"", to(p.page + 1)));
            rels.push(format!("<{}>; rel=\"last\"", to(last_page)));
        }
        (items, (!rels.is_empty()).then(|| rels.join(", ")))
    };
    let items = match &p.fields {
        Some(fields) => items.iter().map(|r| project(r, fields)).collect(),
        None => items,
    };
    Page { items, link }
}

/// Keeps only the listed paths of a record.
pub(crate) fn project(record: &Value, fields: &[Vec<String>]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in fields {
        let mut src = record;
        let mut found = true;
        for seg in path {
            match src.get(seg.as_str()) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                dst[seg.as_str()] = src.clone();
            } else {
                if !dst[seg.as_str()].is_object() {
                    dst[seg.as_str()] = Value::Object(Map::new());
                }
                dst = &mut dst[seg.as_str()];
            }
        }
    }
    out
}

/// Parses `fields` for a single-record GET.
pub(crate) fn fields_param(query: &[(String, String)]) -> Option<Vec<Vec<String>>> {
    param(query, "fields")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            f.split(',')
                .map(|p| p.trim().split('/').map(String::from).collect::<Vec<_>>())
                .filter(|p| !p[0].is_empty())
                .collect()
        })
}

fn first<'a>(record: &'a Value, path: &[String]) -> Option<&'a Value> {
    conditions::lookup(record, path).into_iter().next()
}

/// Missing first, then numbers, then text (case-insensitive), then booleans.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) => rank(x).cmp(&rank(y)),
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Bool(_) => 3,
        _ => 4,
    }
}

/// `url` with the request's parameters, minus `drop`, plus `set`.
fn link_url(url: &str, query: &[(String, String)], drop: &[&str], set: (&str, String)) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        if !drop.iter().any(|d| d.eq_ignore_ascii_case(k)) {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair(set.0, &set.1);
    format!("{url}?{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SchemaSource, model};
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn records(n: i64) -> Vec<Value> {
        (1..=n)
            .map(|i| json!({"id": i, "name": format!("c{:02}", (n - i))}))
            .collect()
    }

    #[test]
    fn numbered_pages_and_links() {
        let m = model(SchemaSource::OpenApi("Company"));
        let query = q(&[("pageSize", "10"), ("page", "2"), ("conditions", "id>0")]);
        let p = parse(&query, false, m).unwrap();
        let pg = page(records(35), &p, "http://h/x", &query);
        assert_eq!(pg.items.len(), 10);
        assert_eq!(pg.items[0]["id"], 11);
        let link = pg.link.unwrap();
        assert!(
            link.contains("<http://h/x?pageSize=10&conditions=id%3E0&page=3>; rel=\"next\""),
            "{link}"
        );
        assert!(link.contains("page=4>; rel=\"last\""), "{link}");
        assert!(link.contains("page=1>; rel=\"first\""), "{link}");
        assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    }

    #[test]
    fn ordering_and_limits() {
        let m = model(SchemaSource::OpenApi("Company"));
        let p = parse(&q(&[("orderBy", "name asc")]), false, m).unwrap();
        let pg = page(records(5), &p, "u", &[]);
        assert_eq!(pg.items[0]["id"], 5);
        assert!(pg.link.is_none());
        assert!(parse(&q(&[("pageSize", "1001")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "nope asc")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "id sideways")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "id asc")]), true, m).is_err());
    }

    #[test]
    fn forward_only_uses_page_id() {
        let m = model(SchemaSource::OpenApi("Company"));
        let query = q(&[("pageSize", "2"), ("pageId", "2")]);
        let p = parse(&query, true, m).unwrap();
        let pg = page(records(5), &p, "u", &query);
        let ids: Vec<_> = pg.items.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [3, 4]);
        assert_eq!(pg.link.unwrap(), "<u?pageSize=2&pageId=4>; rel=\"next\"");
    }

    #[test]
    fn projection() {
        let r = json!({"id": 1, "name": "A", "status": {"id": 2, "name": "Active"}});
        let fields = vec![
            vec!["id".to_string()],
            vec!["status".to_string(), "name".to_string()],
        ];
        assert_eq!(
            project(&r, &fields),
            json!({"id": 1, "status": {"name": "Active"}})
        );
    }
}
