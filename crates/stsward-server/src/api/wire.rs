//! What travels over the REST API: request bodies read into the domain service's inputs
//! (every refusal names its field), and errors as JSON with the HTTP status they map to
//! (RFC 9110 §15 status codes; RFC 6750 §3 for the bearer challenge on 401).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Map, Value};
use stsward_store::StoreError;

use super::table::{ADD_FIELDS, PATCH_FIELDS, names};
use crate::domains::{AddDomain, DomainError, DomainOptions, MxInput, PolicyChange};

/// The media type of every body, in and out.
pub const JSON: &str = "application/json";

/// A refusal or failure, sent as `{"error": {"code", "message", "field"?}}`. Refusals of
/// input say why, naming the field; failures of the store or the resolver say what failed
/// and leave their internals to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid`, `not_found`, `already_hosted`, …).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The input field at fault, when there is one.
    pub field: Option<String>,
    /// The methods of the resource, for a 405's `Allow` header.
    pub allow: Option<String>,
}

impl ApiError {
    /// A refusal with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            allow: None,
        }
    }

    /// 400 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            field: Some(field.to_owned()),
            allow: None,
        }
    }

    /// The JSON response.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let mut inner = Map::new();
        inner.insert("code".into(), Value::from(self.code));
        inner.insert("message".into(), Value::from(self.message.clone()));
        if let Some(f) = &self.field {
            inner.insert("field".into(), Value::from(f.clone()));
        }
        let mut outer = Map::new();
        outer.insert("error".into(), Value::Object(inner));
        let mut r = json_response(self.status, &Value::Object(outer));
        let headers = r.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a protected resource answers 401 with the Bearer challenge.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stsward\""),
            );
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            headers.insert(header::ALLOW, allow);
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The body was not read to its end: the connection cannot carry another request.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// The error and its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = chain(&e);
        let with = |status, code: &'static str, field: Option<&str>| ApiError {
            status,
            code,
            message: message.clone(),
            field: field.map(str::to_owned),
            allow: None,
        };
        match &e {
            DomainError::Name(_) => with(StatusCode::BAD_REQUEST, "invalid", Some("domain")),
            DomainError::Invalid { field, .. } => {
                with(StatusCode::BAD_REQUEST, "invalid", Some(field))
            }
            DomainError::NoMx { .. } => with(StatusCode::BAD_REQUEST, "no_mx", Some("mx")),
            DomainError::Import { .. } => with(StatusCode::BAD_REQUEST, "invalid", Some("line")),
            DomainError::ImportStopped { .. } => {
                tracing::warn!(error = %message, "REST API: import stopped by the store");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
            }
            DomainError::NotFound { .. } => with(StatusCode::NOT_FOUND, "not_found", None),
            DomainError::Removing { .. } => with(StatusCode::CONFLICT, "removing", None),
            DomainError::Dns { .. } => {
                // The lookup is of the caller's own domain: SERVFAIL, REFUSED or a timeout
                // is most often that domain's DNS, and giving `mx` explicitly needs no
                // lookup. So 422 (RFC 9110 §15.5.21: the request cannot be processed as it
                // is), not a 5xx that monitors would count against this server. The
                // resolver's details stay in the log; the client learns what failed.
                tracing::info!(error = %message, "REST API: MX lookup failed");
                ApiError {
                    field: Some("mx".into()),
                    ..ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "dns_failed",
                        format!("{e}; fix the domain's DNS, or give the mx patterns"),
                    )
                }
            }
            DomainError::NoDns { .. } | DomainError::NotConfigured { .. } => {
                with(StatusCode::SERVICE_UNAVAILABLE, "not_configured", None)
            }
            DomainError::Store(s) => match s {
                StoreError::DomainTaken { .. } => {
                    with(StatusCode::CONFLICT, "already_hosted", Some("domain"))
                }
                StoreError::DomainNotFound { .. } => with(StatusCode::NOT_FOUND, "not_found", None),
                StoreError::VersionConflict { .. } => {
                    with(StatusCode::CONFLICT, "version_conflict", None)
                }
                StoreError::TooLarge { field, .. } | StoreError::NulCharacter { field } => {
                    with(StatusCode::BAD_REQUEST, "invalid", Some(field.as_str()))
                }
                _ => {
                    // Database internals are logged, never sent.
                    tracing::warn!(error = %message, "REST API: store failure");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the store did not answer; the server log has the details",
                    )
                }
            },
        }
    }
}

/// A failure of the store (or of what stands behind it): logged, and answered 503 without
/// its internals.
pub fn store_failure(e: &dyn std::error::Error) -> ApiError {
    tracing::warn!(error = %chain(e), "REST API: store failure");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store did not answer; the server log has the details",
    )
}

/// A store error of the tenant and token routes: refused values name their field (400),
/// anything else is a [`store_failure`].
pub fn store_error(e: StoreError) -> ApiError {
    match &e {
        StoreError::TooLarge { field, .. }
        | StoreError::NulCharacter { field }
        | StoreError::Invalid { field, .. } => ApiError::invalid(field.as_str(), e.to_string()),
        StoreError::TenantTaken { .. } => ApiError {
            field: Some("name".into()),
            ..ApiError::new(StatusCode::CONFLICT, "tenant_exists", e.to_string())
        },
        _ => store_failure(&e),
    }
}

/// `value` as a JSON response with `status`.
pub fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "REST API: cannot write JSON");
            let mut r = Response::new(Full::new(Bytes::from_static(
                br#"{"error":{"code":"internal","message":"cannot write the answer as JSON"}}"#,
            )));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            r
        }
    }
}

/// The body as a JSON object (an empty body is an empty object).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(
            "body",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Refuses keys other than `known`, naming the first.
pub fn only(map: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            k,
            format!("unknown field {k:?}; expected one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

pub fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(key, format!("{key} must be a string"))),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be true or false"),
        )),
    }
}

fn seconds(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            ApiError::invalid(
                key,
                format!("{key} must be a whole, non-negative number of seconds, not {n}"),
            )
        }),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be a number of seconds"),
        )),
    }
}

fn strings(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::invalid(
                    key,
                    format!("{key} must be a list of strings"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be a list of strings"),
        )),
    }
}

/// `mx` and `mx_from_dns` together: patterns as given, the MX records in DNS, or unset.
fn mx(map: &Map<String, Value>) -> Result<Option<MxInput>, ApiError> {
    let patterns = strings(map, "mx")?;
    let from_dns = boolean(map, "mx_from_dns")?;
    match (patterns, from_dns) {
        (Some(_), Some(true)) => Err(ApiError::invalid(
            "mx",
            "give either mx patterns or \"mx_from_dns\": true, not both",
        )),
        (Some(p), _) => Ok(Some(MxInput::Patterns(p))),
        (None, Some(true)) => Ok(Some(MxInput::FromDns)),
        (None, Some(false)) => Err(ApiError::invalid(
            "mx",
            "\"mx_from_dns\": false needs the mx patterns",
        )),
        (None, None) => Ok(None),
    }
}

/// `POST /api/v1/domains`: `{"domain", "mode"?, "mx"?, "mx_from_dns"?, "max_age"?,
/// "follow_mx"?}`, the inputs of `stsward domain add`.
pub fn add_request(map: &Map<String, Value>) -> Result<AddDomain, ApiError> {
    only(map, &names(ADD_FIELDS))?;
    let domain =
        string(map, "domain")?.ok_or_else(|| ApiError::invalid("domain", "domain is required"))?;
    Ok(AddDomain {
        domain,
        mode: string(map, "mode")?,
        mx: mx(map)?,
        max_age: seconds(map, "max_age")?,
        follow_mx: boolean(map, "follow_mx")?.unwrap_or(false),
    })
}

/// `PATCH /api/v1/domains/{domain}`: the policy fields of `stsward domain set` (a new
/// version) and its per-domain options (none). `"tlsrpt_rua": null` returns to the install's
/// default.
pub fn patch_request(map: &Map<String, Value>) -> Result<(PolicyChange, DomainOptions), ApiError> {
    only(map, &names(PATCH_FIELDS))?;
    let change = PolicyChange {
        mode: string(map, "mode")?,
        mx: mx(map)?,
        max_age: seconds(map, "max_age")?,
        note: string(map, "note")?,
    };
    let options = DomainOptions {
        follow_mx: boolean(map, "follow_mx")?,
        tlsrpt_rua: match map.get("tlsrpt_rua") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                return Err(ApiError::invalid(
                    "tlsrpt_rua",
                    "tlsrpt_rua must be a string, or null for the install's default",
                ));
            }
        },
        own_sts_txt: boolean(map, "own_sts_txt")?,
    };
    let policy_fields = change.mode.is_some() || change.mx.is_some() || change.max_age.is_some();
    if change.note.is_some() && !policy_fields {
        return Err(ApiError::invalid(
            "note",
            "a note goes with a change of mode, mx or max_age",
        ));
    }
    if !policy_fields && options.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "nothing to change: give mode, mx, mx_from_dns, max_age, follow_mx, tlsrpt_rua or \
             own_sts_txt",
        ));
    }
    Ok((change, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Map<String, Value> {
        object(text.as_bytes()).expect("object")
    }

    #[test]
    fn add_reads_every_field_and_names_the_bad_one() {
        let add = add_request(&obj(
            r#"{"domain":"a.test","mode":"enforce","mx":["mx.a.test"],"max_age":86400}"#,
        ))
        .expect("valid");
        assert_eq!(add.mode.as_deref(), Some("enforce"));
        assert_eq!(add.mx, Some(MxInput::Patterns(vec!["mx.a.test".into()])));
        assert_eq!(add.max_age, Some(86400));
        assert_eq!(
            add_request(&obj(r#"{"domain":"a.test","mx_from_dns":true}"#))
                .expect("dns")
                .mx,
            Some(MxInput::FromDns)
        );
        for (text, field) in [
            (r#"{}"#, "domain"),
            (r#"{"domain":"a.test","max_age":-1}"#, "max_age"),
            (r#"{"domain":"a.test","max_age":1.5}"#, "max_age"),
            (r#"{"domain":"a.test","max_age":"1"}"#, "max_age"),
            (r#"{"domain":"a.test","mx":"mx.a.test"}"#, "mx"),
            (r#"{"domain":"a.test","mx":["a"],"mx_from_dns":true}"#, "mx"),
            (r#"{"domain":"a.test","colour":"red"}"#, "colour"),
            (r#"{"domain":7}"#, "domain"),
        ] {
            let err = add_request(&obj(text)).expect_err(text);
            assert_eq!(err.field.as_deref(), Some(field), "{text}: {err:?}");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            object(b"[1]").expect_err("array").field.as_deref(),
            Some("body")
        );
        assert_eq!(
            object(b"{").expect_err("broken").field.as_deref(),
            Some("body")
        );
    }

    #[test]
    fn patch_splits_policy_and_options() {
        let (change, options) = patch_request(&obj(
            r#"{"mode":"none","tlsrpt_rua":null,"follow_mx":true}"#,
        ))
        .expect("valid");
        assert_eq!(change.mode.as_deref(), Some("none"));
        assert_eq!(options.tlsrpt_rua, Some(None));
        assert_eq!(options.follow_mx, Some(true));
        for (text, field) in [
            (r#"{}"#, "body"),
            (r#"{"note":"why"}"#, "note"),
            (r#"{"tlsrpt_rua":5}"#, "tlsrpt_rua"),
            (r#"{"domain":"b.test"}"#, "domain"),
        ] {
            let err = patch_request(&obj(text)).expect_err(text);
            assert_eq!(err.field.as_deref(), Some(field), "{text}: {err:?}");
        }
    }

    /// One row per kind of service failure: (error, status, code, field, why).
    #[test]
    fn service_errors_map_to_one_status_each() {
        use stsward_store::Field;
        let taken = || StoreError::DomainTaken {
            domain: "a.test".into(),
        };
        let table: Vec<(DomainError, u16, &str, Option<&str>, &str)> = vec![
            (
                DomainError::Invalid {
                    field: "max_age",
                    reason: "too large".into(),
                },
                400,
                "invalid",
                Some("max_age"),
                "input names its field",
            ),
            (
                DomainError::NotFound {
                    domain: "a.test".into(),
                },
                404,
                "not_found",
                None,
                "not this tenant's",
            ),
            (
                DomainError::Store(taken()),
                409,
                "already_hosted",
                Some("domain"),
                "hosted once",
            ),
            (
                DomainError::Store(StoreError::VersionConflict {
                    domain: "a.test".into(),
                    expected: 3,
                }),
                409,
                "version_conflict",
                None,
                "another writer came first",
            ),
            (
                DomainError::Store(StoreError::TooLarge {
                    field: Field::Note,
                    len: 9000,
                    max: 4096,
                }),
                400,
                "invalid",
                Some("note"),
                "a value over the store's bound",
            ),
            (
                DomainError::Removing {
                    domain: "a.test".into(),
                    gone_at: 0,
                },
                409,
                "removing",
                None,
                "RFC 8461 §8.3 removal in progress",
            ),
        ];
        for (e, status, code, field, why) in table {
            let api = ApiError::from(e);
            assert_eq!(
                (api.status.as_u16(), api.code, api.field.as_deref()),
                (status, code, field),
                "{why}"
            );
        }
        let internal = ApiError::from(DomainError::Store(StoreError::Corrupt {
            field: Field::State,
            value: "internal-detail".into(),
        }));
        assert_eq!(internal.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !internal.message.contains("internal-detail"),
            "store internals stay in the log: {}",
            internal.message
        );
    }

    #[test]
    fn errors_are_json_with_code_message_and_field() {
        let r = ApiError::invalid("max_age", "too large").response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static(JSON))
        );
    }
}
