//! RFC 8461 §3.3 — answering a policy request on the HTTPS listener.
//!
//! ```text
//! Host (or the absolute-form authority) missing or repeated  → 400
//! Host a bare IP, malformed, or no hosted policy host        → 404
//! Host a hosted name other than the TLS SNI name             → 421 Misdirected Request
//! path other than /.well-known/mta-sts.txt, or any query     → 404
//! method other than GET or HEAD                              → 405, Allow: GET, HEAD
//! no policy set for the domain (certificate only)            → 404
//! otherwise                                                  → 200, the policy body
//! ```
//!
//! RFC 8461 §3.2: the policy is "served via the HTTPS GET method from the fixed "well-known"
//! [RFC5785] path of ".well-known/mta-sts.txt"", and "senders SHOULD validate that the media
//! type is "text/plain"", where "All parameters other than charset=utf-8 or charset=us-ascii
//! are ignored". The body is ASCII, so [`POLICY_CONTENT_TYPE`] is both true and accepted.
//! §3.3: "HTTP 3xx redirects MUST NOT be followed": this host never sends one. §3.3 also
//! forbids senders to use HTTP caching; the 200 carries `Cache-Control: no-store` so that no
//! cache between sender and host keeps an old body after a change (§8.1 has the body change
//! before the TXT id).
//!
//! Choices:
//! - The path is compared as sent, before any percent-decoding or dot-segment removal, so
//!   `/.well-known/../mta-sts.txt` and `/%2e%2e/...` are simply other paths. A query string
//!   makes it another resource too: the RFC names one fixed URL.
//! - The `Host` must equal the SNI name. A client that sends one name in TLS and another in
//!   HTTP gets 421 (RFC 9110 §15.5.20): the certificate it checked is not the one of the
//!   host it asks for, so serving that host's policy would skip RFC 8461 §3.3's check.
//! - Only a GET that gets 200 is counted as a fetch; HEAD is not.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::counts::FetchCounter;
use super::name;
use super::sites::Sites;

/// RFC 8461 §3.2: the well-known path of the policy.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// The media type of every answer (RFC 8461 §3.2: "text/plain"; `charset=utf-8` is one of the
/// two parameters a sender may look at).
pub const POLICY_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What the handler knows about the connection.
#[derive(Debug, Clone)]
pub(crate) struct TlsConn {
    /// The normalized SNI name (every handshake that reaches HTTP had one).
    pub(crate) sni: Arc<str>,
    /// The client's address.
    pub(crate) peer: IpAddr,
}

/// Answers one request on the HTTPS listener.
pub(crate) fn answer<B>(
    request: &Request<B>,
    conn: &TlsConn,
    sites: &Sites,
    counter: &FetchCounter,
    now: SystemTime,
) -> Response<Full<Bytes>> {
    let authority = match request_authority(request) {
        Ok(a) => a,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
    };
    let Some(host) = name::authority_host(&authority) else {
        return plain(StatusCode::NOT_FOUND, "unknown host\n");
    };
    if host != *conn.sni {
        if sites.get(&host).is_none() {
            return plain(StatusCode::NOT_FOUND, "unknown host\n");
        }
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "the Host header does not match the TLS server name\n",
        );
    }
    let Some(site) = sites.get(&host) else {
        return plain(StatusCode::NOT_FOUND, "unknown host\n");
    };
    let uri = request.uri();
    if uri.path() != WELL_KNOWN_PATH || uri.query().is_some() {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(policy) = site.policy.clone() else {
        return plain(StatusCode::NOT_FOUND, "no policy\n");
    };
    if method == Method::GET {
        counter.record(&site.domain, conn.peer, now);
    }
    let mut response = Response::new(Full::new(policy));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(POLICY_CONTENT_TYPE));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The authority the request is for: the absolute-form target's when there is one (RFC 9112
/// §3.2.2 has the server ignore `Host` then), else the one `Host` header.
fn request_authority<B>(request: &Request<B>) -> Result<String, &'static str> {
    if let Some(authority) = request.uri().authority() {
        return Ok(authority.as_str().to_owned());
    }
    let mut hosts = request.headers().get_all(HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Err("exactly one Host header is required\n");
    };
    host.to_str()
        .map(str::to_owned)
        .map_err(|_| "the Host header is not ASCII\n")
}

/// A short plain-text answer.
pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(POLICY_CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::counts::FetchCounter;

    const BODY: &str = "version: STSv1\r\nmode: testing\r\nmx: mx.a.test\r\nmax_age: 86400\r\n";

    fn fixture() -> (Sites, FetchCounter, TlsConn) {
        let sites = Sites::new();
        sites.upsert_policy("a.test", BODY).unwrap();
        sites.upsert_policy("b.test", "other").unwrap();
        let conn = TlsConn {
            sni: Arc::from("mta-sts.a.test"),
            peer: "192.0.2.7".parse().unwrap(),
        };
        (sites, FetchCounter::new(10), conn)
    }

    fn request(method: &str, target: &str, host: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri(target);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn rfc8461_3_3_answer_table() {
        let (sites, counter, conn) = fixture();
        let p = WELL_KNOWN_PATH;
        let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
            ("GET", p, Some("mta-sts.a.test"), 200, "the policy"),
            (
                "GET",
                p,
                Some("MTA-STS.A.Test."),
                200,
                "case and trailing dot",
            ),
            ("GET", p, Some("mta-sts.a.test:443"), 200, "port"),
            ("HEAD", p, Some("mta-sts.a.test"), 200, "HEAD"),
            (
                "GET",
                "https://mta-sts.a.test/.well-known/mta-sts.txt",
                None,
                200,
                "absolute form",
            ),
            ("GET", p, None, 400, "no Host"),
            ("GET", p, Some("192.0.2.1"), 404, "bare IPv4 Host"),
            ("GET", p, Some("[::1]:443"), 404, "bare IPv6 Host"),
            ("GET", p, Some("mta-sts.unknown.test"), 404, "unknown host"),
            (
                "GET",
                p,
                Some("mta-sts.b.test"),
                421,
                "hosted, but not the SNI name",
            ),
            (
                "GET",
                "/.well-known/../mta-sts.txt",
                Some("mta-sts.a.test"),
                404,
                "dot segments",
            ),
            (
                "GET",
                "/.well-known/%2e%2e/.well-known/mta-sts.txt",
                Some("mta-sts.a.test"),
                404,
                "encoded dots",
            ),
            (
                "GET",
                "/.well-known/mta-sts%2etxt",
                Some("mta-sts.a.test"),
                404,
                "encoded dot",
            ),
            (
                "GET",
                "/.well-known/MTA-STS.TXT",
                Some("mta-sts.a.test"),
                404,
                "path is case-sensitive",
            ),
            (
                "GET",
                "//.well-known/mta-sts.txt",
                Some("mta-sts.a.test"),
                404,
                "double slash",
            ),
            (
                "GET",
                "/.well-known/mta-sts.txt?x=1",
                Some("mta-sts.a.test"),
                404,
                "query",
            ),
            ("GET", "/", Some("mta-sts.a.test"), 404, "other path"),
            ("POST", p, Some("mta-sts.a.test"), 405, "POST"),
            ("DELETE", p, Some("mta-sts.a.test"), 405, "DELETE"),
        ];
        for (method, target, host, status, why) in cases {
            let r = answer(
                &request(method, target, *host),
                &conn,
                &sites,
                &counter,
                SystemTime::UNIX_EPOCH,
            );
            assert_eq!(
                r.status().as_u16(),
                *status,
                "{why}: {method} {target} {host:?}"
            );
            assert_eq!(r.headers()[CONTENT_TYPE], POLICY_CONTENT_TYPE, "{why}");
        }
        // Four GETs answered 200 were counted; HEAD was not.
        let drained = counter.drain();
        assert_eq!(drained.counts.len(), 1);
        assert_eq!(drained.counts[0].fetches, 4);
    }

    #[test]
    fn two_host_headers_are_refused() {
        let (sites, counter, conn) = fixture();
        let mut r = request("GET", WELL_KNOWN_PATH, Some("mta-sts.a.test"));
        r.headers_mut()
            .append(HOST, HeaderValue::from_static("mta-sts.b.test"));
        let got = answer(&r, &conn, &sites, &counter, SystemTime::UNIX_EPOCH);
        assert_eq!(got.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn removed_site_is_unknown() {
        let (sites, counter, conn) = fixture();
        sites.remove("a.test").unwrap();
        let got = answer(
            &request("GET", WELL_KNOWN_PATH, Some("mta-sts.a.test")),
            &conn,
            &sites,
            &counter,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(got.status(), StatusCode::NOT_FOUND);
    }
}
