//! RFC 8460 §5.4 — reports delivered by HTTPS POST (`rua=https://…`), on the policy host's
//! TLS listeners.
//!
//! RFC 8460 §5.4: "The report MAY be delivered by POST to HTTPS.  If compressed, the report
//! SHOULD use the media type "application/tlsrpt+gzip"; otherwise it SHOULD use the media
//! type "application/tlsrpt+json"", and "The receiving system MUST return a "successful"
//! response from its HTTPS server, typically a 200 or 201 HTTP code [RFC7231].  Other codes
//! could indicate a delivery failure and may be retried". §5.5 has the sender retry for up to
//! 24 hours.
//!
//! ```text
//! POST <path>  (any name the TLS listener holds a certificate for)
//!   method other than POST                                → 405, Allow: POST
//!   max_concurrent POSTs already in flight                 → 503, Retry-After
//!   Content-Type not tlsrpt+gzip / tlsrpt+json (or none)  → 415
//!   Content-Length over max_body_bytes                    → 413 before any body is read
//!   body (chunked or not) grows past max_body_bytes       → 413, reading stops there
//!   body not complete within body_timeout                 → 408
//!   gzip that inflates past max_decompressed_bytes        → 413
//!   sink: Ok(Stored { stored > 0 })                       → 201 Created
//!   sink: Ok(Stored { stored: 0 }) (all duplicates)       → 200 OK
//!   sink: Ok(Quarantined { reason })                      → 400, the reason in plain text
//!   sink: Err(_)                                          → 503, Retry-After
//! ```
//!
//! 201 when the POST stored at least one new report (something was created, RFC 9110
//! §15.3.2, paraphrased), 200 when every report in it was already stored: both are the
//! "successful" answer §5.4 asks for, and a sender that retried after a lost answer learns
//! that the first attempt had landed. Quarantined input was committed (kept with its reason)
//! but can never be read, so it gets a 4xx: a retry would not help.
//!
//! The route answers on every name the TLS listener completed a handshake for, i.e. every
//! hosted `mta-sts.<domain>` with a certificate; it keeps nothing per host, so the `Host`
//! header is not compared with the TLS name as the policy path does (the origin recorded
//! with the submission names the TLS name).
//!
//! The decompressed size is the sink's to bound too (it decompresses to parse); this module
//! counts the inflated bytes of a gzip body first, without keeping them, so that a gzip bomb
//! is refused at the door with the configured cap instead of reaching the store. A body that
//! is not valid gzip is handed on: judging it is the sink's job (it quarantines it).

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use super::sink::{Channel, Outcome, ReportSink, Submission, SubmissionKind};

/// RFC 8460 §6.5: the media type of a gzip-compressed report.
pub const TLSRPT_GZIP: &str = "application/tlsrpt+gzip";
/// RFC 8460 §6.4: the media type of an uncompressed report.
pub const TLSRPT_JSON: &str = "application/tlsrpt+json";
/// The default path of the route (`rua=https://<host>/tlsrpt`).
pub const DEFAULT_PATH: &str = "/tlsrpt";
/// Default bound of a request body as sent (compressed or not): 10 MiB, far above any real
/// report (a large sender's daily gzip report is tens of kilobytes).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default bound of a gzip body once inflated: 16 MiB (the mail extractor's default too).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 16 * 1024 * 1024;
/// Default time for the whole body to arrive after the request head.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of POSTs read and stored at once: with [`DEFAULT_MAX_BODY_BYTES`], at
/// most 160 MiB of bodies are held in memory.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;
/// Seconds a sender is asked to wait after a 503 (RFC 8460 §5.5 leaves the schedule to it).
pub const RETRY_AFTER_SECONDS: u64 = 300;

/// The bounds of the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsIntakeLimits {
    /// The largest body accepted as sent, in octets.
    pub max_body_bytes: u64,
    /// The largest size a gzip body may inflate to, in octets.
    pub max_decompressed_bytes: u64,
    /// Time for the whole body to arrive once the head was read.
    pub body_timeout: Duration,
    /// POSTs read and stored at once; more get 503 at once. Bounds the memory that bodies
    /// hold to `max_concurrent × max_body_bytes`.
    pub max_concurrent: usize,
}

impl Default for HttpsIntakeLimits {
    fn default() -> Self {
        HttpsIntakeLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
        }
    }
}

/// Why the route could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsIntakeError {
    /// The path is not an absolute path without query, or it is the policy's own path.
    #[error("intake_https.path {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The clock of the route: Unix seconds.
pub type UnixClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The HTTPS POST route: where it is, its bounds, and the sink it hands reports to. Cheap to
/// clone; give it to [`crate::host::HostServer::with_https_intake`].
#[derive(Clone)]
pub struct HttpsIntake {
    path: Arc<str>,
    limits: HttpsIntakeLimits,
    sink: Arc<dyn ReportSink>,
    clock: UnixClock,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for HttpsIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsIntake")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpsIntake {
    /// A route at `path` (e.g. [`DEFAULT_PATH`]) handing reports to `sink`, with the system
    /// clock.
    pub fn new(
        path: &str,
        limits: HttpsIntakeLimits,
        sink: Arc<dyn ReportSink>,
    ) -> Result<HttpsIntake, HttpsIntakeError> {
        check_path(path)?;
        let slots = limits
            .max_concurrent
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Ok(HttpsIntake {
            path: Arc::from(path),
            limits,
            sink,
            clock: Arc::new(system_now),
            in_flight: Arc::new(tokio::sync::Semaphore::new(slots)),
        })
    }

    /// The same route reading `clock` for [`Submission::received_at`].
    pub fn with_clock(mut self, clock: UnixClock) -> HttpsIntake {
        self.clock = clock;
        self
    }

    /// The path served.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether `request` is for this route (compared as sent, like the policy path; a query
    /// string is allowed, since an `rua` URI may carry one).
    pub fn matches<B>(&self, request: &Request<B>) -> bool {
        request.uri().path() == &*self.path
    }

    /// Answers one request for this route, from `peer` on the TLS name `host`.
    pub async fn answer<B>(
        &self,
        request: Request<B>,
        host: &str,
        peer: IpAddr,
    ) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.method() != Method::POST {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let kind = match content_kind(request.headers().get(CONTENT_TYPE)) {
            Some(kind) => kind,
            None => {
                return text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Type must be {TLSRPT_GZIP} or {TLSRPT_JSON} (RFC 8460 §5.4)\n"
                    ),
                );
            }
        };
        let max = self.limits.max_body_bytes;
        // Held until the sink has answered: the body stays in memory that long.
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            return retry_later("too many reports arrive at once; retry later\n");
        };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > max) {
            // Not a byte of the body is read; the connection closes after this answer.
            return too_large(max, "body");
        }
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let read = Limited::new(request.into_body(), limit).collect();
        let raw = match tokio::time::timeout(self.limits.body_timeout, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) if error.is::<LengthLimitError>() => return too_large(max, "body"),
            Ok(Err(error)) => {
                tracing::debug!(%error, %peer, "intake_https: reading the body failed");
                return closing(text(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read\n",
                ));
            }
            Err(_) => {
                return closing(text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the body did not arrive within {} seconds\n",
                        self.limits.body_timeout.as_secs()
                    ),
                ));
            }
        };
        if kind == SubmissionKind::Gzip {
            let cap = self.limits.max_decompressed_bytes;
            let body = raw.clone();
            // Inflating is CPU work: off the reactor. It stops one byte past the cap.
            let inflated = tokio::task::spawn_blocking(move || inflated_len(&body, cap)).await;
            if matches!(inflated, Ok(Some(len)) if len > cap) {
                return too_large(cap, "decompressed report");
            }
        }
        let submission = Submission {
            channel: Channel::Https,
            kind,
            raw,
            received_at: (self.clock)(),
            peer: Some(peer),
            origin: format!("https POST https://{host}{} from {peer}", self.path),
            require_dkim: false,
        };
        match self.sink.submit(submission).await {
            Ok(Outcome::Stored { stored, duplicates }) => {
                let (status, words) = if stored > 0 {
                    (StatusCode::CREATED, "stored")
                } else {
                    (StatusCode::OK, "already stored")
                };
                text(
                    status,
                    format!("{words}: {stored} new, {duplicates} duplicate\n"),
                )
            }
            Ok(Outcome::Quarantined { reason }) => text(
                StatusCode::BAD_REQUEST,
                format!("report refused (kept for review): {reason}\n"),
            ),
            Err(error) => {
                tracing::warn!(%error, %peer, "intake_https: the report could not be stored");
                retry_later("the report could not be stored now; retry later\n")
            }
        }
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn check_path(path: &str) -> Result<(), HttpsIntakeError> {
    let bad = |reason| {
        Err(HttpsIntakeError::Path {
            path: path.to_owned(),
            reason,
        })
    };
    if !path.starts_with('/') {
        return bad("must start with \"/\"");
    }
    if path.contains(['?', '#']) || path.bytes().any(|b| !b.is_ascii_graphic()) {
        return bad("must be a plain path: printable ASCII, no query, no fragment");
    }
    if path == crate::host::WELL_KNOWN_PATH || path.starts_with(crate::host::ACME_CHALLENGE_PREFIX)
    {
        return bad("is taken by the policy host");
    }
    Ok(())
}

/// The submission kind of a `Content-Type` (media type compared without case, parameters
/// ignored), or `None` when it is neither TLS-RPT type.
fn content_kind(value: Option<&HeaderValue>) -> Option<SubmissionKind> {
    let value = value?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(TLSRPT_GZIP) {
        Some(SubmissionKind::Gzip)
    } else if media.eq_ignore_ascii_case(TLSRPT_JSON) {
        Some(SubmissionKind::Json)
    } else {
        None
    }
}

/// How many bytes `gzip` inflates to, counting no further than `cap + 1`; `None` when it is
/// not valid gzip (the sink judges that).
fn inflated_len(gzip: &[u8], cap: u64) -> Option<u64> {
    let decoder = flate2::read::MultiGzDecoder::new(gzip);
    std::io::copy(
        &mut decoder.take(cap.saturating_add(1)),
        &mut std::io::sink(),
    )
    .ok()
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Asks hyper to close the connection after this answer: the rest of the body is never read.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 503 with `Retry-After` (RFC 8460 §5.5: the sender retries).
fn retry_later(why: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, why);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

fn too_large(limit: u64, what: &str) -> Response<Full<Bytes>> {
    closing(text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the {what} is larger than {limit} octets\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_5_4_content_types() {
        // (Content-Type, expected kind)
        let table = [
            ("application/tlsrpt+gzip", Some(SubmissionKind::Gzip)),
            ("application/tlsrpt+json", Some(SubmissionKind::Json)),
            (
                "Application/TLSRPT+JSON; charset=utf-8",
                Some(SubmissionKind::Json),
            ),
            (" application/tlsrpt+gzip ;x=y", Some(SubmissionKind::Gzip)),
            // bad: a generic type is not a TLS-RPT report type
            ("application/json", None),
            ("application/gzip", None),
            ("text/plain", None),
            ("", None),
        ];
        for (value, want) in table {
            let header = HeaderValue::from_str(value).expect("fixture header");
            assert_eq!(content_kind(Some(&header)), want, "{value:?}");
        }
        assert_eq!(content_kind(None), None, "a missing Content-Type");
    }

    #[test]
    fn paths_are_checked() {
        for good in ["/tlsrpt", "/reports/tls-rpt", "/"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        // (path, why it is refused)
        let bad = [
            ("tlsrpt", "relative"),
            ("/tlsrpt?x=1", "a query"),
            ("/tls rpt", "a space"),
            ("/.well-known/mta-sts.txt", "the policy path"),
            ("/.well-known/acme-challenge/x", "the ACME path"),
        ];
        for (path, why) in bad {
            assert!(check_path(path).is_err(), "{why}");
        }
    }

    #[test]
    fn inflating_stops_past_the_cap() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b'{'; 1 << 20]).expect("compress");
        let gzip = encoder.finish().expect("finish");
        assert_eq!(inflated_len(&gzip, 10 << 20), Some(1 << 20));
        assert_eq!(
            inflated_len(&gzip, 1000),
            Some(1001),
            "stops one past the cap"
        );
        assert_eq!(inflated_len(b"not gzip", 1000), None);
    }
}
