//! The field model of each resource, read from the reference documents shipped in `reference/`. Owns loading
//! `openapi-2026.4-get-subset.json`, `models-2025.1.json` and `sandbox-extra-schemas.json` (compiled into the
//! binary) and turning a schema into a `Model`: for every declared field its type (string with optional enum,
//! `date-time` format and maximum length, integer, number, boolean, object, array, any) and the required fields.
//! Where models-2025.1 describes the same model, its maximum lengths and required fields win over the 2026.4
//! document's (models-2025.1 is the write-side reference; e.g. a company identifier is at most 30 characters there,
//! 156 in the 2026.4 GET document). Writes drop fields a model does not declare, as the real API's JSON binder does.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde_json::Value;

const OPENAPI: &str = include_str!("../reference/openapi-2026.4-get-subset.json");
const MODELS: &str = include_str!("../reference/models-2025.1.json");
const EXTRA: &str = include_str!("../reference/sandbox-extra-schemas.json");

/// Which reference document describes a resource, and under which schema name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaSource {
    /// `components/schemas/<name>` of the 2026.4 OpenAPI document.
    OpenApi(&'static str),
    /// A model of `models-2025.1.json`.
    Models(&'static str),
    /// `components/schemas/<name>` of `sandbox-extra-schemas.json`.
    Extra(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldType {
    String {
        date_time: bool,
        enum_values: Option<Vec<String>>,
        max_len: Option<usize>,
    },
    Integer,
    Number,
    Boolean,
    Object,
    Array(Box<FieldType>),
    Any,
}

#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub fields: BTreeMap<String, FieldType>,
    pub required: Vec<String>,
}

impl Model {
    pub(crate) fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }
}

struct Docs {
    openapi: Value,
    models: Value,
    extra: Value,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| Docs {
        openapi: serde_json::from_str(OPENAPI).expect("reference OpenAPI document parses"),
        models: serde_json::from_str(MODELS).expect("reference models document parses"),
        extra: serde_json::from_str(EXTRA).expect("sandbox extra schemas parse"),
    })
}

/// The model of a schema source (parsed once per process).
pub(crate) fn model(source: SchemaSource) -> &'static Model {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<SchemaSource, &'static Model>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = cache.get(&source) {
        return m;
    }
    let built: &'static Model = Box::leak(Box::new(build(source)));
    cache.insert(source, built);
    built
}

fn build(source: SchemaSource) -> Model {
    let d = docs();
    let mut model = match source {
        SchemaSource::OpenApi(name) => {
            from_json_schema(&d.openapi["components"]["schemas"][name], name)
        }
        SchemaSource::Extra(name) => {
            from_json_schema(&d.extra["components"]["schemas"][name], name)
        }
        SchemaSource::Models(name) => {
            from_models(name).unwrap_or_else(|| panic!("no model {name} in models-2025.1"))
        }
    };
    if let SchemaSource::OpenApi(name) | SchemaSource::Extra(name) = source
        && let Some(write_side) = from_models(name)
    {
        for (field, ty) in &mut model.fields {
            if let (
                FieldType::String { max_len, .. },
                Some(FieldType::String {
                    max_len: Some(m), ..
                }),
            ) = (ty, write_side.fields.get(field))
            {
                *max_len = Some(*m);
            }
        }
        for r in write_side.required {
            if !model.required.contains(&r) {
                model.required.push(r);
            }
        }
    }
    model
}

fn from_json_schema(schema: &Value, name: &str) -> Model {
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} has properties"));
    let fields = props
        .iter()
        .map(|(k, v)| (k.clone(), json_type(v)))
        .collect();
    let required = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Model { fields, required }
}

fn json_type(p: &Value) -> FieldType {
    if p.get("$ref").is_some() {
        return FieldType::Object;
    }
    match p["type"].as_str() {
        Some("string") => FieldType::String {
            date_time: p["format"].as_str() == Some("date-time"),
            enum_values: p["enum"].as_array().map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            }),
            max_len: p["description"].as_str().and_then(max_len_of),
        },
        Some("integer") => FieldType::Integer,
        Some("number") => FieldType::Number,
        Some("boolean") => FieldType::Boolean,
        Some("array") => FieldType::Array(Box::new(json_type(&p["items"]))),
        Some("object")
            if p.get("properties").is_some() || p.get("additionalProperties").is_some() =>
        {
            FieldType::Object
        }
        _ => FieldType::Any,
    }
}

/// "... Max length: 50; ..." → 50.
fn max_len_of(description: &str) -> Option<usize> {
    let rest = &description[description.find("Max length:")? + "Max length:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn from_models(name: &str) -> Option<Model> {
    let fields = docs().models.get(name)?.as_array()?;
    let mut model = Model {
        fields: BTreeMap::new(),
        required: Vec::new(),
    };
    for f in fields {
        let field = f["json"].as_str().unwrap_or_default().to_string();
        let doc = f["doc"].as_str().unwrap_or_default();
        let mut ty = go_type(f["type"].as_str().unwrap_or_default());
        if let FieldType::String { max_len, .. } = &mut ty {
            *max_len = max_len_of(doc);
        }
        if f["required"].as_bool() == Some(true) {
            model.required.push(field.clone());
        }
        model.fields.insert(field, ty);
    }
    Some(model)
}

/// The Go client's type spelling in models-2025.1.json → field type.
fn go_type(t: &str) -> FieldType {
    let t = t.trim_start_matches('*');
    if let Some(inner) = t.strip_prefix("[]") {
        return FieldType::Array(Box::new(go_type(inner)));
    }
    let t = t.strip_prefix("Nullable").unwrap_or(t);
    match t {
        "int32" | "Int32" | "int64" | "Int64" => FieldType::Integer,
        "float64" | "Float64" | "float32" | "Float32" => FieldType::Number,
        "string" | "String" => FieldType::String {
            date_time: false,
            enum_values: None,
            max_len: None,
        },
        "bool" | "Bool" => FieldType::Boolean,
        "time.Time" | "Time" => FieldType::String {
            date_time: true,
            enum_values: None,
            max_len: None,
        },
        "map[string]interface{}" => FieldType::Any,
        _ => FieldType::Object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_uses_write_side_lengths() {
        let m = model(SchemaSource::OpenApi("Company"));
        assert!(m.required.contains(&"identifier".to_string()));
        assert!(matches!(
            m.fields["identifier"],
            FieldType::String {
                max_len: Some(30),
                ..
            }
        ));
        assert!(matches!(m.fields["types"], FieldType::Array(_)));
        assert!(matches!(
            m.fields["dateAcquired"],
            FieldType::String {
                date_time: true,
                ..
            }
        ));
    }

    #[test]
    fn models_document_is_read() {
        let m = model(SchemaSource::Models("BillingTerm"));
        assert_eq!(m.fields["dueDays"], FieldType::Integer);
        assert!(m.required.contains(&"dueDays".to_string()));
        let p = model(SchemaSource::OpenApi("ProductItem"));
        match &p.fields["billableOption"] {
            FieldType::String {
                enum_values: Some(v),
                ..
            } => assert_eq!(v.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_schemas_load() {
        for name in [
            "Country",
            "State",
            "CompanyTypeAssociation",
            "ContactCommunication",
            "CommunicationType",
            "UserDefinedField",
            "CallbackEntry",
        ] {
            assert!(model(SchemaSource::Extra(name)).has("id"), "{name}");
        }
    }
}
