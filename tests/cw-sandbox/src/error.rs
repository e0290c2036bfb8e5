//! ConnectWise error responses. Owns [`ApiError`], the status code plus the JSON body ConnectWise sends on failure
//! (`{"code", "message", "errors": [{"code", "message", "resource", "field"}]}`, the `ErrorResponseMessage` and
//! `ValidationError` models), and the constructors for the codes the sandbox uses: `InvalidObject` (validation,
//! with per-field `MissingRequiredField`, `MaxLengthField`, `NotFound`, `InvalidField`), `NotFound`,
//! `Unauthorized`, `InvalidConditions`, `BadRequest`, `UnsupportedMediaType`, `MethodNotAllowed`,
//! `TooManyRequests` and `ConnectWiseApi` (injected server errors).

use serde_json::{Value, json};

/// One entry of `errors` in an error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub code: String,
    pub message: String,
    pub resource: String,
    pub field: String,
}

impl FieldError {
    pub fn new(code: &str, message: impl Into<String>, resource: &str, field: &str) -> FieldError {
        FieldError {
            code: code.to_string(),
            message: message.into(),
            resource: resource.to_string(),
            field: field.to_string(),
        }
    }
}

/// An HTTP error status with a ConnectWise error body.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 400 `InvalidObject`: "`<resource> object is invalid`" with the field errors.
    pub fn invalid_object(resource: &str, errors: Vec<FieldError>) -> ApiError {
        ApiError {
            status: 400,
            code: "InvalidObject".to_string(),
            message: format!("{resource} object is invalid"),
            errors,
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "NotFound", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(401, "Unauthorized", message)
    }

    pub fn body(&self) -> Value {
        let mut body = json!({ "code": self.code, "message": self.message });
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(
                self.errors
                    .iter()
                    .map(|e| {
                        json!({
                            "code": e.code,
                            "message": e.message,
                            "resource": e.resource,
                            "field": e.field,
                        })
                    })
                    .collect(),
            );
        }
        body
    }
}
