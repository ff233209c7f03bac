//! Shared by the REST API tests (`api`, `api_tenants`, `api_checks`): one HTTP/1.1 request
//! per connection, written by hand so that the tests control every byte, and the reply read
//! back as status, headers and JSON body.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a reply may take: a tenant's check answers within its 25 s deadline at most.
pub const REPLY_WITHIN: Duration = Duration::from_secs(40);

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The stable error `code` of a JSON error.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The `field` a JSON error names.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// One request on a new connection (`Connection: close`), read to the end.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &[u8],
) -> Reply {
    parse_reply(&send_raw(addr, method, path, headers, body).await)
}

/// One request on a new connection (`Connection: close`); the whole reply as bytes.
pub async fn send_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &[u8],
) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PATCH" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write head");
    tcp.write_all(body).await.expect("write body");
    read_raw(&mut tcp).await
}

/// Reads a reply to the end of the connection, as bytes.
pub async fn read_raw(tcp: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    tokio::time::timeout(REPLY_WITHIN, tcp.read_to_end(&mut raw))
        .await
        .expect("the reply in time")
        .expect("read");
    raw
}

/// Reads a reply to the end of the connection.
pub async fn read_reply(tcp: &mut TcpStream) -> Reply {
    parse_reply(&read_raw(tcp).await)
}

/// Splits a whole reply into status, headers and body text.
pub fn split_reply(raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete reply");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// Splits a whole reply into status, headers and JSON body (`Null` when empty; a string
/// when not JSON, as `/metrics` answers).
pub fn parse_reply(raw: &[u8]) -> Reply {
    let (status, headers, body) = split_reply(raw);
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|_| Value::String(body.clone()))
    };
    Reply {
        status,
        headers,
        body,
    }
}
