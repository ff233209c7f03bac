//! The OpenAPI 3.0.3 document of the REST API (`GET /api/v1/openapi.json`), made from the
//! route table (`super::table`) that also gates the router and the body readers, so that
//! the document and the routes cannot drift apart. Bearer tokens are RFC 6750 §2.1.

use serde_json::{Map, Value, json};

use super::table::{Field, Kind, OPERATIONS, Operation};

/// A host name in A-labels, a trailing dot allowed (U-labels are accepted too, percent-encoded
/// in paths, and converted; the document shows the plain form).
const DOMAIN_PATTERN: &str = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$";

/// The most characters a free-text field may have in the document's schemas.
const MAX_TEXT: u64 = 1000;

fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({"type": "string", "maxLength": MAX_TEXT}),
        Kind::NullableText => json!({"type": "string", "nullable": true, "maxLength": MAX_TEXT}),
        Kind::Domain => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": 254,
            "pattern": DOMAIN_PATTERN,
            "example": "example.com",
        }),
        Kind::Name => json!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._@-]{0,63}$",
            "example": "acme",
        }),
        Kind::Label => json!({"type": "string", "minLength": 1, "maxLength": 64}),
        Kind::Mode => json!({"type": "string", "enum": ["testing", "enforce", "none"]}),
        Kind::Seconds => json!({"type": "integer", "minimum": 0}),
        Kind::Limit(max) => json!({"type": "integer", "minimum": 1, "maximum": max}),
        Kind::Id => json!({"type": "integer", "minimum": 1}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Strings => json!({"type": "array", "items": {"type": "string", "maxLength": 255}}),
    }
}

fn parameter(f: &Field, at: &str) -> Value {
    json!({
        "name": f.name,
        "in": at,
        "required": f.required || at == "path",
        "description": f.about,
        "schema": schema(f.kind),
    })
}

fn body(fields: &[Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut s = schema(f.kind);
            if let Value::Object(m) = &mut s {
                m.insert("description".into(), Value::from(f.about));
            }
            (f.name.to_owned(), s)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut object = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if let (false, Value::Object(m)) = (required.is_empty(), &mut object) {
        m.insert("required".into(), json!(required));
    }
    json!({"required": true, "content": {"application/json": {"schema": object}}})
}

fn error_reason(status: u16) -> &'static str {
    match status {
        400 => "Invalid input; `field` names the culprit.",
        401 => "No bearer token, or a wrong or revoked one (RFC 6750 §3).",
        403 => "The token may not do this (install admin only).",
        404 => "Not found, or another tenant's.",
        409 => "Conflicts with the stored state.",
        413 => "The body is larger than the API accepts.",
        415 => "The body is not application/json.",
        422 => "The domain's MX records could not be looked up; give the mx patterns.",
        429 => "Too many of this tenant's checks run now; see Retry-After.",
        503 => "The store or the server is busy or down; see Retry-After where given.",
        _ => "An error.",
    }
}

fn operation(op: &Operation) -> Value {
    let mut parameters: Vec<Value> = op.params.iter().map(|f| parameter(f, "path")).collect();
    parameters.extend(op.query.iter().map(|f| parameter(f, "query")));
    let mut responses = Map::new();
    responses.insert(
        op.success.0.to_string(),
        json!({
            "description": op.success.1,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }),
    );
    let mut errors: Vec<u16> = op.errors.to_vec();
    if !op.public {
        errors.push(401);
    }
    errors.push(503);
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": error_reason(status),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }),
        );
    }
    let mut out = json!({
        "operationId": op.id,
        "summary": op.summary,
        "responses": responses,
    });
    if let Value::Object(m) = &mut out {
        if !parameters.is_empty() {
            m.insert("parameters".into(), Value::Array(parameters));
        }
        if !op.body.is_empty() {
            m.insert("requestBody".into(), body(op.body));
        }
        if op.public {
            m.insert("security".into(), json!([]));
        }
    }
    out
}

/// The whole document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in OPERATIONS {
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = item {
            m.insert(op.method.to_ascii_lowercase(), operation(op));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "stsward REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Hosted MTA-STS policies (RFC 8461), TLS-RPT reports (RFC 8460), \
                checks and readiness, per tenant. See docs/api.md.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_once_with_its_body_fields() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let count: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, Map::len))
            .sum();
        assert_eq!(count, OPERATIONS.len());
        for op in OPERATIONS {
            let o = &doc["paths"][op.path][op.method.to_ascii_lowercase()];
            assert_eq!(o["operationId"], op.id);
            let schema = &o["requestBody"]["content"]["application/json"]["schema"];
            let mut documented: Vec<&str> = schema["properties"]
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            documented.sort_unstable();
            let mut fields = super::super::table::names(op.body);
            fields.sort_unstable();
            assert_eq!(documented, fields, "{}", op.id);
            assert!(
                o["responses"][op.success.0.to_string()].is_object(),
                "{}",
                op.id
            );
            assert_eq!(o["responses"]["401"].is_object(), !op.public, "{}", op.id);
        }
        assert_eq!(doc["paths"]["/api/v1/health"]["get"]["security"], json!([]));
    }
}
