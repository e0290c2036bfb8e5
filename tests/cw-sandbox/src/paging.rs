//! List queries. Owns reading the list parameters (`conditions`, `orderBy`, `fields`, `page`, `pageSize`, `pageId`;
//! names case-insensitive; `childConditions` and `customFieldConditions` are accepted and ignored), checking the
//! field names they mention against the resource's schema, ordering, the two paging modes — numbered pages (default
//! size 25, at most 1000, `Link` header with `first`/`prev`/`next`/`last`) and forward-only paging (request header
//! `pagination-type: forward-only`: ordered by id, records with id > `pageId`, `Link` `next` carrying the last id;
//! `orderBy` is refused) — and the `fields` projection. The caller walks the stored records in id order and tests
//! the conditions (a forward-only page needs only the matches up to one past the page); this module orders what it
//! is given, cuts the page and writes the links.

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
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub link: Option<String>,
}

impl ListParams {
    pub(crate) fn forward_only(&self) -> bool {
        self.forward_only
    }

    /// Forward-only paging lists the records with an id above this.
    pub(crate) fn page_id(&self) -> i64 {
        self.page_id
    }

    pub(crate) fn page_size(&self) -> usize {
        self.page_size as usize
    }

    /// The field paths `orderBy` reads.
    pub(crate) fn order_paths(&self) -> impl Iterator<Item = &[String]> {
        self.order.iter().map(|(path, _)| path.as_slice())
    }

    /// A returned record as the `fields` parameter trims it.
    pub(crate) fn shape(&self, record: Value) -> Value {
        match &self.fields {
            Some(fields) => project(&record, fields),
            None => record,
        }
    }
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

/// A forward-only page. `matches` are the records satisfying the conditions with an id above `pageId`, in id
/// order; only the first pageSize + 1 are needed (the one past the page says whether there is a next). `url` is the
/// list URL without query; `query` the request's parameters, kept in the link.
pub(crate) fn forward_page<T>(
    mut matches: Vec<T>,
    id_of: impl Fn(&T) -> i64,
    p: &ListParams,
    url: &str,
    query: &[(String, String)],
) -> Page<T> {
    let size = p.page_size();
    let more = matches.len() > size;
    matches.truncate(size);
    let link = match (more, matches.last().map(id_of)) {
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
    Page {
        items: matches,
        link,
    }
}

/// A numbered page. `matches` are all the records satisfying the conditions, in id order; `doc_of` gives the record
/// `orderBy` reads. Ordered by `orderBy`, then id (the stable sort keeps id order among equals).
pub(crate) fn numbered_page<T>(
    mut matches: Vec<T>,
    doc_of: impl Fn(&T) -> &Value,
    p: &ListParams,
    url: &str,
    query: &[(String, String)],
) -> Page<T> {
    if !p.order.is_empty() {
        // Sort keys are made once per record, not once per comparison (lowercasing text is the costly part).
        let mut keyed: Vec<(Vec<SortKey>, T)> = matches
            .into_iter()
            .map(|m| {
                let doc = doc_of(&m);
                let keys = p
                    .order
                    .iter()
                    .map(|(path, _)| SortKey::of(first(doc, path)))
                    .collect();
                (keys, m)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, y), (_, desc)) in a.iter().zip(b).zip(&p.order) {
                let o = x.cmp(y);
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        matches = keyed.into_iter().map(|(_, m)| m).collect();
    }
    let size = p.page_size();
    let total = matches.len();
    let last_page = total.div_ceil(size).max(1) as u64;
    let start = ((p.page - 1) as usize).saturating_mul(size).min(total);
    let items: Vec<T> = matches.drain(start..(start + size).min(total)).collect();
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
    Page {
        items,
        link: (!rels.is_empty()).then(|| rels.join(", ")),
    }
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

/// A value as ordering sees it: missing first, then numbers, then text (case-insensitive), then booleans, then
/// anything else (objects, arrays), which tie. The variant order is that order.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Missing,
    Number(f64),
    Text(String),
    Bool(bool),
    Other,
}

impl SortKey {
    fn of(v: Option<&Value>) -> SortKey {
        match v {
            None => SortKey::Missing,
            Some(Value::Number(n)) => n.as_f64().map_or(SortKey::Other, SortKey::Number),
            Some(Value::String(s)) => SortKey::Text(s.to_lowercase()),
            Some(Value::Bool(b)) => SortKey::Bool(*b),
            Some(_) => SortKey::Other,
        }
    }

    fn cmp(&self, other: &SortKey) -> Ordering {
        // Numbers from JSON are never NaN, so only incomparable-looking pairs tie.
        self.partial_cmp(other).unwrap_or(Ordering::Equal)
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
        let pg = numbered_page(records(35), |r| r, &p, "http://h/x", &query);
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
        let pg = numbered_page(records(5), |r| r, &p, "u", &[]);
        assert_eq!(pg.items[0]["id"], 5);
        assert!(pg.link.is_none());
        assert!(parse(&q(&[("pageSize", "1001")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "nope asc")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "id sideways")]), false, m).is_err());
        assert!(parse(&q(&[("orderBy", "id asc")]), true, m).is_err());
    }

    #[test]
    fn forward_only_links_the_last_id() {
        let m = model(SchemaSource::OpenApi("Company"));
        let query = q(&[("pageSize", "2"), ("pageId", "2")]);
        let p = parse(&query, true, m).unwrap();
        assert_eq!(p.page_id(), 2);
        let id_of = |r: &Value| r["id"].as_i64().unwrap();
        let after: Vec<Value> = records(5).into_iter().filter(|r| id_of(r) > 2).collect();
        let pg = forward_page(after, id_of, &p, "u", &query);
        let ids: Vec<_> = pg.items.iter().map(id_of).collect();
        assert_eq!(ids, [3, 4]);
        assert_eq!(pg.link.unwrap(), "<u?pageSize=2&pageId=4>; rel=\"next\"");
        let last = forward_page(records(5).split_off(3), id_of, &p, "u", &query);
        assert_eq!(last.items.len(), 2);
        assert!(
            last.link.is_none(),
            "no next without a record past the page"
        );
    }

    #[test]
    fn ordering_keys() {
        let m = model(SchemaSource::OpenApi("Company"));
        let rows = vec![
            json!({"id": 1, "name": "b"}),
            json!({"id": 2, "name": "B"}),
            json!({"id": 3}),
            json!({"id": 4, "name": 10}),
            json!({"id": 5, "name": true}),
            json!({"id": 6, "name": "a"}),
            json!({"id": 7, "name": 9.5}),
            json!({"id": 8, "name": {"x": 1}}),
        ];
        let p = parse(&q(&[("orderBy", "name")]), false, m).unwrap();
        let pg = numbered_page(rows.clone(), |r| r, &p, "u", &[]);
        let ids: Vec<_> = pg.items.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [3, 7, 4, 6, 1, 2, 5, 8]);
        let p = parse(&q(&[("orderBy", "name desc")]), false, m).unwrap();
        let pg = numbered_page(rows, |r| r, &p, "u", &[]);
        let ids: Vec<_> = pg.items.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [8, 5, 1, 2, 6, 4, 7, 3], "equal keys stay in id order");
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
