//! A policy web server on loopback: tokio-rustls + hyper, answering by Host header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n";

#[derive(Clone, Debug)]
pub enum Reply {
    Policy,
    Redirect(String),
    Status(u16),
    ContentType(&'static str),
    /// A body of this size with a Content-Length header.
    Oversize(usize),
    /// A chunked body of this size, no Content-Length.
    OversizeChunked(usize),
    Slow(Duration),
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

async fn answer(
    req: Request<Incoming>,
    route: fn(&str) -> Reply,
) -> Result<Response<Body>, Infallible> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if req.uri().path() != "/.well-known/mta-sts.txt" {
        return Ok(Response::builder()
            .status(404)
            .body(full("not here"))
            .unwrap());
    }
    let plain = |b: Body| {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(b)
            .unwrap()
    };
    Ok(match route(&host) {
        Reply::Policy => plain(full(POLICY)),
        Reply::Redirect(to) => Response::builder()
            .status(StatusCode::MOVED_PERMANENTLY)
            .header("location", to)
            .body(full(""))
            .unwrap(),
        Reply::Status(code) => Response::builder().status(code).body(full("no")).unwrap(),
        Reply::ContentType(ct) => Response::builder()
            .status(200)
            .header("content-type", ct)
            .body(full(POLICY))
            .unwrap(),
        Reply::Oversize(n) => plain(full(vec![b'#'; n])),
        Reply::OversizeChunked(n) => {
            let chunks = (0..n.div_ceil(8192))
                .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'#'; 8192]))));
            plain(StreamBody::new(futures::stream::iter(chunks)).boxed())
        }
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            plain(full(POLICY))
        }
    })
}

/// Serves on `ip`:0 with the given certificate; returns the bound address.
pub async fn spawn(
    ip: &str,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    route: fn(&str) -> Reply,
) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(super::server_config(chain, key, &[b"http/1.1"]));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(move |r| answer(r, route)))
                    .await;
            });
        }
    });
    addr
}
