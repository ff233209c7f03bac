//! Cross-site request forgery defences for the dashboard's forms.
//!
//! Two checks, both before a POST does anything:
//! - **Origin** (RFC 6454 §7, RFC 9110 §7.2 `Host`): a browser names the page's origin in
//!   `Origin` on every POST. When it is present it must be this site's own origin, the
//!   request's `Host` with the scheme the cookies imply (`https` with `secure_cookies`);
//!   another origin, or `null`, is refused. A request without `Origin` is not a browser's
//!   cross-site form and goes on to the token check.
//! - **Token**: every form of a session carries the session's CSRF token in a hidden field
//!   `csrf`; a missing or different token is refused. The comparison takes the same time
//!   wherever the first difference is.
//!
//! The session cookie is also `SameSite=Strict` (`super::sessions`), so a cross-site POST
//! carries no session in the first place; these checks hold where that attribute does not.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use http::{HeaderMap, header};

/// Why a POST was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// `Origin` names another site.
    #[error("the request comes from another origin ({0})")]
    ForeignOrigin(String),
    /// The request has no `Host` to compare `Origin` with.
    #[error("the request has no Host header")]
    NoHost,
    /// The form has no CSRF token.
    #[error("the form has no CSRF token")]
    MissingToken,
    /// The form's CSRF token is not the session's.
    #[error("the form's CSRF token is not this session's")]
    BadToken,
}

/// Checks `Origin` against the request's own origin.
pub fn check_origin(headers: &HeaderMap, secure: bool) -> Result<(), CsrfError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("(not ASCII)");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(CsrfError::NoHost)?;
    let scheme = if secure { "https" } else { "http" };
    let own = format!("{scheme}://{host}");
    if origin.eq_ignore_ascii_case(&own) {
        Ok(())
    } else {
        Err(CsrfError::ForeignOrigin(origin.chars().take(100).collect()))
    }
}

/// Checks the form's token against the session's.
pub fn check_token(given: Option<&str>, expected: &str) -> Result<(), CsrfError> {
    let given = given
        .filter(|g| !g.is_empty())
        .ok_or(CsrfError::MissingToken)?;
    verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).map_err(|_| CsrfError::BadToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(host: Option<&'static str>, origin: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_static(host));
        }
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn origins_good_and_bad() {
        let good: &[(Option<&'static str>, Option<&'static str>, bool)] = &[
            (Some("dash.example"), Some("https://dash.example"), true),
            (
                Some("dash.example:8480"),
                Some("https://dash.example:8480"),
                true,
            ),
            (Some("127.0.0.1:8480"), Some("http://127.0.0.1:8480"), false),
            (Some("dash.example"), None, true),
        ];
        for (host, origin, secure) in good {
            assert_eq!(
                check_origin(&headers(*host, *origin), *secure),
                Ok(()),
                "{host:?} {origin:?}"
            );
        }
        let bad: &[(Option<&'static str>, Option<&'static str>, bool, &str)] = &[
            (
                Some("dash.example"),
                Some("https://evil.example"),
                true,
                "another host",
            ),
            (
                Some("dash.example"),
                Some("http://dash.example"),
                true,
                "plain http to a TLS site",
            ),
            (
                Some("dash.example"),
                Some("https://dash.example:444"),
                true,
                "another port",
            ),
            (Some("dash.example"), Some("null"), true, "an opaque origin"),
            (None, Some("https://dash.example"), true, "no Host"),
        ];
        for (host, origin, secure, why) in bad {
            assert!(
                check_origin(&headers(*host, *origin), *secure).is_err(),
                "{why}"
            );
        }
    }

    #[test]
    fn tokens_good_and_bad() {
        assert_eq!(check_token(Some("abc"), "abc"), Ok(()));
        assert_eq!(check_token(None, "abc"), Err(CsrfError::MissingToken));
        assert_eq!(check_token(Some(""), "abc"), Err(CsrfError::MissingToken));
        assert_eq!(check_token(Some("abd"), "abc"), Err(CsrfError::BadToken));
        assert_eq!(
            check_token(Some("abcd"), "abc"),
            Err(CsrfError::BadToken),
            "longer"
        );
    }
}
