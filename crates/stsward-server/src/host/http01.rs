//! RFC 8555 §8.3 — answering ACME HTTP-01 challenges on the plain-HTTP listener.
//!
//! ```text
//! GET/HEAD /.well-known/acme-challenge/<token>, token registered  → 200, the key authorization
//! anything else (other path, unknown token, query, other method)  → 404
//! ```
//!
//! The answer does not depend on `Host`: tokens are unique per challenge, and the CA asks for
//! `mta-sts.<domain>` under whatever name the customer's CNAME chain resolves. Nothing else is
//! served over plain HTTP, not even a redirect to HTTPS: RFC 8461 senders only ever fetch the
//! policy over HTTPS (§3.3), so a redirect would help no one and would be one more thing to
//! get wrong.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::challenges::{Challenges, is_base64url};
use super::policy::plain;

/// RFC 8555 §8.3: the path prefix of HTTP-01 challenge resources.
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Answers one request on the HTTP listener.
pub(crate) fn answer<B>(request: &Request<B>, challenges: &Challenges) -> Response<Full<Bytes>> {
    let not_found = || plain(StatusCode::NOT_FOUND, "not found\n");
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return not_found();
    }
    let uri = request.uri();
    if uri.query().is_some() {
        return not_found();
    }
    let Some(token) = uri.path().strip_prefix(ACME_CHALLENGE_PREFIX) else {
        return not_found();
    };
    if token.is_empty() || !is_base64url(token) {
        return not_found();
    }
    let Some(key_authorization) = challenges.http01(token) else {
        return not_found();
    };
    let mut response = Response::new(Full::new(key_authorization));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8555_8_3_answer_table() {
        let c = Challenges::new();
        c.set_http01("tok-1_A", "tok-1_A.thumb").unwrap();
        let cases = [
            (
                "GET",
                "/.well-known/acme-challenge/tok-1_A",
                200,
                "registered",
            ),
            ("HEAD", "/.well-known/acme-challenge/tok-1_A", 200, "HEAD"),
            (
                "GET",
                "/.well-known/acme-challenge/other",
                404,
                "unknown token",
            ),
            ("GET", "/.well-known/acme-challenge/", 404, "no token"),
            ("GET", "/.well-known/acme-challenge/tok-1_A?x", 404, "query"),
            (
                "GET",
                "/.well-known/acme-challenge/tok-1_A/",
                404,
                "trailing slash",
            ),
            (
                "GET",
                "/.well-known/acme-challenge/../mta-sts.txt",
                404,
                "traversal",
            ),
            (
                "GET",
                "/.well-known/mta-sts.txt",
                404,
                "the policy is HTTPS only",
            ),
            ("POST", "/.well-known/acme-challenge/tok-1_A", 404, "POST"),
        ];
        for (method, target, status, why) in cases {
            let r = Request::builder()
                .method(method)
                .uri(target)
                .body(())
                .unwrap();
            let got = answer(&r, &c);
            assert_eq!(got.status().as_u16(), status, "{why}: {method} {target}");
        }
    }
}
