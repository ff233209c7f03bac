//! The REST API's routes as data: every operation (method and path template), its
//! parameters, request body fields and answers. The router lets a request through only when
//! it matches an operation here (else `404 no_route`, or `405` with `Allow` naming the
//! methods of the path, RFC 9110 §15.5.6); the body readers refuse fields not listed here;
//! the OpenAPI document (`super::openapi`) is made from this table. So the document cannot
//! name a route that does not exist, or miss one that does.

use http::{Method, StatusCode};

use super::wire::ApiError;

/// What a parameter or body field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any string.
    Text,
    /// A string, or `null` to clear.
    NullableText,
    /// A domain name (A-label or U-label, a trailing dot allowed).
    Domain,
    /// A tenant's name (`crate::auth::check_name`).
    Name,
    /// A label for people, 1 to 64 characters (`crate::auth::check_label`).
    Label,
    /// `testing`, `enforce` or `none` (RFC 8461 §3.2).
    Mode,
    /// Seconds, a non-negative integer.
    Seconds,
    /// A page size from 1 to the given maximum.
    Limit(u32),
    /// A positive integer id.
    Id,
    /// `true` or `false`.
    Boolean,
    /// An array of strings.
    Strings,
}

/// A path or query parameter, or a field of a JSON request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether it must be given.
    pub required: bool,
    /// What it means.
    pub about: &'static str,
}

const fn field(name: &'static str, kind: Kind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        about,
    }
}

const fn required(name: &'static str, kind: Kind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        about,
    }
}

/// One operation.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path template, `{name}` for a path parameter (one segment).
    pub path: &'static str,
    /// The OpenAPI `operationId`.
    pub id: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Needs no bearer token (only the health check).
    pub public: bool,
    /// The path parameters, in order.
    pub params: &'static [Field],
    /// The query parameters.
    pub query: &'static [Field],
    /// The fields of the JSON body; empty: no body is read for meaning.
    pub body: &'static [Field],
    /// The status of a successful answer, and what its body is.
    pub success: (u16, &'static str),
    /// The error statuses it can answer with, besides 401 and 503 (every route).
    pub errors: &'static [u16],
}

const DOMAIN: &[Field] = &[required(
    "domain",
    Kind::Domain,
    "A hosted domain of the caller's tenant (percent-encoded U-labels allowed).",
)];
const NAME: &[Field] = &[required("name", Kind::Name, "The tenant's name.")];
const TOKEN_ID: &[Field] = &[required("id", Kind::Id, "The token's number.")];
const ALERT_QUERY: &[Field] = &[
    field(
        "open",
        Kind::Boolean,
        "true: open alerts only (default: open and resolved).",
    ),
    field(
        "limit",
        Kind::Limit(1000),
        "Alerts in the answer (default 100).",
    ),
];
const TENANT_QUERY: &[Field] = &[field(
    "tenant",
    Kind::Name,
    "Another tenant's name (install admin token only).",
)];

/// The fields of `POST /api/v1/domains`.
pub const ADD_FIELDS: &[Field] = &[
    required("domain", Kind::Domain, "The policy domain."),
    field("mode", Kind::Mode, "The policy mode (default testing)."),
    field("mx", Kind::Strings, "The mx patterns (RFC 8461 §3.2)."),
    field(
        "mx_from_dns",
        Kind::Boolean,
        "Take the mx patterns from the domain's MX records (the default without mx).",
    ),
    field("max_age", Kind::Seconds, "The policy max_age, seconds."),
    field(
        "follow_mx",
        Kind::Boolean,
        "Keep the mx patterns in step with the MX records.",
    ),
];

/// The fields of `PATCH /api/v1/domains/{domain}`.
pub const PATCH_FIELDS: &[Field] = &[
    field("mode", Kind::Mode, "The new policy mode."),
    field("mx", Kind::Strings, "The new mx patterns."),
    field(
        "mx_from_dns",
        Kind::Boolean,
        "Take the mx patterns from the MX records.",
    ),
    field("max_age", Kind::Seconds, "The new max_age, seconds."),
    field("note", Kind::Text, "Why, kept in the history."),
    field(
        "follow_mx",
        Kind::Boolean,
        "Keep the mx patterns in step with the MX records.",
    ),
    field(
        "tlsrpt_rua",
        Kind::NullableText,
        "This domain's TLS-RPT rua; null returns to the install's default.",
    ),
    field(
        "own_sts_txt",
        Kind::Boolean,
        "The owner keeps its own _mta-sts TXT (its id is watched).",
    ),
];

/// The fields of `POST /api/v1/tenants`.
pub const TENANT_FIELDS: &[Field] = &[required(
    "name",
    Kind::Name,
    "a-z 0-9 . _ @ -, at most 64 characters.",
)];

/// The fields of `POST /api/v1/tokens`.
pub const TOKEN_FIELDS: &[Field] = &[
    required("name", Kind::Label, "What the token is for."),
    field(
        "tenant",
        Kind::Name,
        "Another tenant's name (install admin token only).",
    ),
];

const fn op(method: &'static str, path: &'static str, id: &'static str) -> Operation {
    Operation {
        method,
        path,
        id,
        summary: "",
        public: false,
        params: &[],
        query: &[],
        body: &[],
        success: (200, ""),
        errors: &[],
    }
}

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        summary: "Whether the store answers (no token needed).",
        public: true,
        success: (200, "The store answers."),
        ..op("GET", "/api/v1/health", "health")
    },
    Operation {
        summary: "This document.",
        success: (200, "The OpenAPI 3.0 document of this API."),
        ..op("GET", "/api/v1/openapi.json", "openapi")
    },
    Operation {
        summary: "One page of the tenant's domains, by name.",
        query: &[
            field("after", Kind::Text, "The last name of the previous page."),
            field(
                "limit",
                Kind::Limit(1000),
                "Domains in the page (default 100).",
            ),
        ],
        success: (200, "`{\"domains\": [...], \"next\"}`."),
        errors: &[400],
        ..op("GET", "/api/v1/domains", "listDomains")
    },
    Operation {
        summary: "Host a new domain (its first policy version).",
        body: ADD_FIELDS,
        success: (201, "The change: the domain and its first version."),
        errors: &[400, 409, 413, 415, 422],
        ..op("POST", "/api/v1/domains", "addDomain")
    },
    Operation {
        summary: "The domain: current policy, id, history, certificate, checks, fetches.",
        params: DOMAIN,
        success: (200, "The domain's detail."),
        errors: &[400, 404],
        ..op("GET", "/api/v1/domains/{domain}", "showDomain")
    },
    Operation {
        summary: "Change the policy (a new version and id) and the domain's options.",
        params: DOMAIN,
        body: PATCH_FIELDS,
        success: (200, "The change, or the domain when only options changed."),
        errors: &[400, 404, 409, 413, 415, 422],
        ..op("PATCH", "/api/v1/domains/{domain}", "patchDomain")
    },
    Operation {
        summary: "Remove the domain safely (RFC 8461 §8.3: mode none until old policies expire).",
        params: DOMAIN,
        success: (
            202,
            "The removal's version, state and when the domain is gone.",
        ),
        errors: &[400, 404, 409],
        ..op("DELETE", "/api/v1/domains/{domain}", "removeDomain")
    },
    Operation {
        summary: "Rebuild the mx patterns from the domain's MX records.",
        params: DOMAIN,
        success: (200, "The change (a new version when the patterns differ)."),
        errors: &[400, 404, 409, 422],
        ..op("POST", "/api/v1/domains/{domain}/sync-mx", "syncMx")
    },
    Operation {
        summary: "The DNS records to publish for the domain.",
        params: DOMAIN,
        success: (200, "The records, as zone-file lines and fields."),
        errors: &[400, 404],
        ..op("GET", "/api/v1/domains/{domain}/records", "domainRecords")
    },
    Operation {
        summary: "Check the domain now (stsward check), with the SSRF filter on.",
        params: DOMAIN,
        success: (201, "The stored run: verdict and findings."),
        errors: &[400, 404, 429],
        ..op("POST", "/api/v1/domains/{domain}/checks", "runCheck")
    },
    Operation {
        summary: "Past check runs, newest first.",
        params: DOMAIN,
        query: &[field(
            "limit",
            Kind::Limit(1000),
            "Runs in the answer (default 20).",
        )],
        success: (200, "`{\"domain\", \"runs\": [...]}`."),
        errors: &[400, 404],
        ..op("GET", "/api/v1/domains/{domain}/checks", "listChecks")
    },
    Operation {
        summary: "Whether the domain is ready for enforce, criterion by criterion.",
        params: DOMAIN,
        success: (
            200,
            "The verdict, its criteria with evidence, and the next step.",
        ),
        errors: &[400, 404],
        ..op("GET", "/api/v1/domains/{domain}/readiness", "readiness")
    },
    Operation {
        summary: "The domain's alerts, newest first (docs/alerts.md).",
        params: DOMAIN,
        query: ALERT_QUERY,
        success: (200, "`{\"alerts\": [...]}`."),
        errors: &[400, 404],
        ..op("GET", "/api/v1/domains/{domain}/alerts", "domainAlerts")
    },
    Operation {
        summary: "The tenant's alerts over all its domains, newest first.",
        query: ALERT_QUERY,
        success: (200, "`{\"alerts\": [...]}`."),
        errors: &[400],
        ..op("GET", "/api/v1/alerts", "listAlerts")
    },
    Operation {
        summary: "Every tenant (install admin token only).",
        success: (200, "`{\"tenants\": [...]}`."),
        errors: &[403],
        ..op("GET", "/api/v1/tenants", "listTenants")
    },
    Operation {
        summary: "Create a tenant (install admin token only).",
        body: TENANT_FIELDS,
        success: (201, "The tenant."),
        errors: &[400, 403, 409, 413, 415],
        ..op("POST", "/api/v1/tenants", "createTenant")
    },
    Operation {
        summary: "One tenant (install admin token only).",
        params: NAME,
        success: (200, "The tenant."),
        errors: &[403, 404],
        ..op("GET", "/api/v1/tenants/{name}", "showTenant")
    },
    Operation {
        summary: "The tenant's API tokens (digests are never shown).",
        query: TENANT_QUERY,
        success: (200, "`{\"tokens\": [...]}`."),
        errors: &[400, 403, 404],
        ..op("GET", "/api/v1/tokens", "listTokens")
    },
    Operation {
        summary: "A new API token; the secret is in this answer only.",
        body: TOKEN_FIELDS,
        success: (201, "The token as stored, with `token`: the secret."),
        errors: &[400, 403, 404, 409, 413, 415],
        ..op("POST", "/api/v1/tokens", "createToken")
    },
    Operation {
        summary: "Revoke one of the tenant's tokens.",
        params: TOKEN_ID,
        query: TENANT_QUERY,
        success: (200, "The token as stored now."),
        errors: &[400, 403, 404],
        ..op("DELETE", "/api/v1/tokens/{id}", "revokeToken")
    },
];

/// Whether `path` fits `template` segment by segment (`{x}` takes one non-empty segment).
fn fits(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let param = ts.starts_with('{') && ts.ends_with('}');
                if !(ps == ts || (param && !ps.is_empty())) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// `path` without one trailing `/` (the root stays as it is).
fn trimmed(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

/// Whether `path` is a route that needs no token (the health check), whatever the method.
pub fn is_public(path: &str) -> bool {
    let path = trimmed(path);
    OPERATIONS.iter().any(|op| op.public && fits(op.path, path))
}

/// The operation `method` on `path` is (one trailing `/` is ignored), or the refusal:
/// `404 no_route` when no template fits, `405` with the path's methods in `Allow`.
pub fn find(method: &Method, path: &str) -> Result<&'static Operation, ApiError> {
    let path = trimmed(path);
    let mut allow: Vec<&str> = Vec::new();
    for op in OPERATIONS {
        if fits(op.path, path) {
            if op.method == method.as_str() {
                return Ok(op);
            }
            allow.push(op.method);
        }
    }
    if allow.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!(
                "no such API path: {}",
                path.chars().take(200).collect::<String>()
            ),
        ));
    }
    Err(ApiError {
        allow: Some(allow.join(", ")),
        ..ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{method} is not allowed here; allowed: {}",
                allow.join(", ")
            ),
        )
    })
}

/// The names of `fields`, for the body readers' check against unknown fields.
pub fn names(fields: &[Field]) -> Vec<&'static str> {
    fields.iter().map(|f| f.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_found_by_its_own_method_and_path() {
        for op in OPERATIONS {
            let path = op
                .path
                .replace("{domain}", "example.com")
                .replace("{name}", "acme")
                .replace("{id}", "7");
            let method = Method::from_bytes(op.method.as_bytes()).expect("method");
            let found = find(&method, &path).expect(op.id);
            assert_eq!(found.id, op.id, "{path}");
            let slash = find(&method, &format!("{path}/")).expect(op.id);
            assert_eq!(slash.id, op.id, "{path}/");
        }
    }

    #[test]
    fn other_paths_are_404_and_other_methods_405_with_allow() {
        for path in [
            "/api/v1",
            "/api/v1/",
            "/api/v1/domain",
            "/api/v1/domains/example.com/nothing",
            "/api/v1/domains/example.com/checks/1",
            "/api/v1/domains//records",
            "/api/v2/domains",
            "/",
        ] {
            let e = find(&Method::GET, path).expect_err(path);
            assert_eq!((e.status.as_u16(), e.code), (404, "no_route"), "{path}");
        }
        let e = find(&Method::PUT, "/api/v1/domains/example.com").expect_err("PUT");
        assert_eq!(e.status.as_u16(), 405);
        assert_eq!(e.allow.as_deref(), Some("GET, PATCH, DELETE"));
        let e = find(&Method::GET, "/api/v1/tokens/3").expect_err("GET");
        assert_eq!(e.allow.as_deref(), Some("DELETE"));
    }

    #[test]
    fn operation_ids_are_unique_and_paths_start_with_the_prefix() {
        let mut ids: Vec<&str> = OPERATIONS.iter().map(|o| o.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate operationId");
        for op in OPERATIONS {
            assert!(op.path.starts_with(super::super::PREFIX), "{}", op.path);
            assert!(
                !op.summary.is_empty() && !op.success.1.is_empty(),
                "{}",
                op.id
            );
            let params: Vec<&str> = op
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(params, names(op.params), "{}", op.id);
        }
    }
}
