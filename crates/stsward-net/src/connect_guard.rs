//! Applying the address filter ([`crate::address_policy`]) to the connections a check
//! makes, against server-side request forgery (issue 9).
//!
//! A check that a tenant asks for connects wherever the tenant's DNS points. With a
//! [`ConnectGuard`] in force, every address DNS returns (the final answer, reached after
//! each CNAME step of the chain) is judged before it is used, and the exact socket address
//! is judged again immediately before each `connect`, so that an answer which changes
//! between resolution and connection (DNS rebinding) cannot slip through. A refused address
//! is never connected to: the caller gets a [`Refused`] to report as a finding.
//!
//! The operator's own checks (`stsward check`) run without a guard unless configured.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::address_policy::{Cidr, Refusal, Verdict, check};

/// The filter in force for one checker: the ranges the operator allowed on top of the
/// globally reachable addresses. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectGuard {
    allow: Arc<[Cidr]>,
}

/// An address the guard refused, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is not connected to: it is {refusal} (server-side request forgery protection)")]
pub struct Refused {
    /// The address that was refused.
    pub addr: IpAddr,
    /// The special range it is in.
    pub refusal: Refusal,
}

impl ConnectGuard {
    /// A guard that allows only globally reachable addresses plus `allow`.
    pub fn new(allow: impl Into<Arc<[Cidr]>>) -> ConnectGuard {
        ConnectGuard {
            allow: allow.into(),
        }
    }

    /// The operator's allowed ranges.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Judges one address.
    pub fn admit(&self, addr: IpAddr) -> Result<(), Refused> {
        match check(addr, &self.allow) {
            Verdict::Refused(refusal) => Err(Refused { addr, refusal }),
            Verdict::Allowed | Verdict::AllowedByConfig(_) => Ok(()),
        }
    }

    /// Splits a DNS answer into the addresses that may be used and the first refusal.
    pub fn partition(&self, addrs: &[IpAddr]) -> (Vec<IpAddr>, Option<Refused>) {
        let mut ok = Vec::with_capacity(addrs.len());
        let mut first = None;
        for a in addrs {
            match self.admit(*a) {
                Ok(()) => ok.push(*a),
                Err(r) => {
                    first.get_or_insert(r);
                }
            }
        }
        (ok, first)
    }
}

/// Judges `addr` under an optional guard: `Ok` when there is none.
pub fn admit(guard: Option<&ConnectGuard>, addr: IpAddr) -> Result<(), Refused> {
    guard.map_or(Ok(()), |g| g.admit(addr))
}

/// The last gate before a socket is opened: judges the exact address, then connects.
pub async fn connect(
    guard: Option<&ConnectGuard>,
    addr: SocketAddr,
) -> Result<tokio::net::TcpStream, ConnectError> {
    admit(guard, addr.ip()).map_err(ConnectError::Refused)?;
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(ConnectError::Io)
}

/// Why [`connect`] made no connection.
#[derive(Debug)]
pub enum ConnectError {
    /// The guard refused the address; no packet was sent.
    Refused(Refused),
    /// The socket failed.
    Io(std::io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused(r) => r.fmt(f),
            ConnectError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_loopback_unless_allowed() {
        let lo: IpAddr = "127.0.0.5".parse().expect("fixture");
        let none = ConnectGuard::default();
        let err = none.admit(lo).expect_err("loopback is refused by default");
        assert_eq!(err.addr, lo);
        assert!(err.to_string().contains("loopback"), "{err}");
        let allowing = ConnectGuard::new(vec!["127.0.0.0/8".parse::<Cidr>().expect("fixture")]);
        assert_eq!(allowing.admit(lo), Ok(()));
        assert_eq!(admit(None, lo), Ok(()));
    }

    #[test]
    fn partition_keeps_public_addresses() {
        let addrs: Vec<IpAddr> = ["192.0.2.1", "8.8.8.8", "::ffff:10.0.0.1", "2606:4700::1"]
            .iter()
            .map(|s| s.parse().expect("fixture"))
            .collect();
        let (ok, first) = ConnectGuard::default().partition(&addrs);
        assert_eq!(ok, vec![addrs[1], addrs[3]]);
        assert_eq!(first.map(|r| r.addr), Some(addrs[0]));
    }

    #[tokio::test]
    async fn connect_refuses_before_any_packet() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let guard = ConnectGuard::default();
        let refused = connect(Some(&guard), addr).await;
        assert!(matches!(refused, Err(ConnectError::Refused(_))));
        // Nothing reached the listener.
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "a refused address was connected to");
        // Without a guard the same address is connected to.
        let ok = connect(None, addr).await;
        assert!(ok.is_ok());
        assert!(listener.accept().await.is_ok());
    }
}
