//! At most N concurrent connections per destination IP address.
//!
//! A provider's MX hosts serve tens of thousands of customer domains. A bulk check, the
//! hosting server's scheduler or the Postfix resolver would otherwise open one connection per
//! domain to the same few addresses at once, which looks like an attack and gets throttled.
//! One [`PerIpLimit`] is shared by everything in a process that connects to MX hosts; the
//! prober takes a permit for every TCP connection it opens (both the rustls one and the
//! TLS 1.0/1.1 one) and holds it until that connection is closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default: small, because a checker needs one connection per address and a second one
/// only for the TLS 1.0/1.1 probe.
pub const DEFAULT_PER_IP: usize = 2;

/// Above this many entries, entries no connection uses any more are dropped.
const PRUNE_ABOVE: usize = 1024;

/// A per-address connection limit, cheap to clone and share.
#[derive(Debug, Clone)]
pub struct PerIpLimit {
    per_ip: usize,
    slots: Arc<Mutex<HashMap<IpAddr, Weak<Semaphore>>>>,
}

/// A permit for one connection to one address; dropping it frees the slot.
#[derive(Debug)]
pub struct IpPermit {
    _permit: OwnedSemaphorePermit,
}

impl PerIpLimit {
    /// At most `per_ip` (at least 1) concurrent connections to each address.
    pub fn new(per_ip: usize) -> PerIpLimit {
        PerIpLimit {
            per_ip: per_ip.max(1),
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The configured limit.
    pub fn per_ip(&self) -> usize {
        self.per_ip
    }

    fn semaphore(&self, ip: IpAddr) -> Arc<Semaphore> {
        // A poisoned lock only means another task panicked while holding it; the map itself
        // is still consistent (every operation on it is a single insert or lookup).
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(live) = slots.get(&ip).and_then(Weak::upgrade) {
            return live;
        }
        if slots.len() > PRUNE_ABOVE {
            slots.retain(|_, w| w.strong_count() > 0);
        }
        let fresh = Arc::new(Semaphore::new(self.per_ip));
        slots.insert(ip, Arc::downgrade(&fresh));
        fresh
    }

    /// Waits for a free slot to `ip`. Callers bound the wait with their own deadline.
    /// `None` only if the semaphore were closed, which this type never does; a caller then
    /// connects without a permit rather than report nothing.
    pub async fn acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let sem = self.semaphore(ip);
        let permit = sem.acquire_owned().await.ok()?;
        Some(IpPermit { _permit: permit })
    }
}

impl Default for PerIpLimit {
    fn default() -> Self {
        PerIpLimit::new(DEFAULT_PER_IP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn per_ip_limit_holds_the_third_connection_until_one_ends() {
        let limit = PerIpLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let p1 = limit.acquire(a).await;
        let _p2 = limit.acquire(a).await;
        // A third connection to the same address waits…
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limit.acquire(a))
                .await
                .is_err(),
            "a third permit to one address must wait"
        );
        // …while another address is not affected.
        let _pb = tokio::time::timeout(Duration::from_millis(50), limit.acquire(b))
            .await
            .expect("another address has its own slots");
        drop(p1);
        tokio::time::timeout(Duration::from_millis(50), limit.acquire(a))
            .await
            .expect("a freed slot is handed on");
    }

    #[test]
    fn per_ip_limit_is_at_least_one() {
        assert_eq!(PerIpLimit::new(0).per_ip(), 1);
    }
}
