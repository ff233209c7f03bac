//! A cache of STARTTLS probe results per (MX host, address), shared by every job of a process.
//!
//! Fifty thousand customer domains of one provider share a handful of MX hosts. Probing each
//! (host, address) once per domain would repeat the same handshake thousands of times and
//! hammer the provider; a bulk run or a server process keeps one [`ProbeCache`] instead.
//! Concurrent requests for the same key wait for the probe in flight rather than start
//! another one.
//!
//! It lives in `stsward-net`, beside the prober, because the checker, the hosting server's
//! scheduler and the sender-side resolver all probe MX hosts and should share one.
//!
//! Time is an argument: an entry is fresh while `now` is less than the TTL after the `now` it
//! was probed at. The only fact of a probe that depends on `now` is the certificate's
//! validity, so an entry handed out at another `now` has its chain judged again
//! ([`AddrProbe::rejudged`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::OnceCell;

use crate::cert::Roots;
use crate::starttls::AddrProbe;

/// How long a probe result is reused by default: long enough for a bulk run, short enough
/// that a fixed server is seen as fixed on the next scheduled check.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// Above this many entries, expired ones are dropped when a new one is added.
const PRUNE_ABOVE: usize = 4096;

type Key = (String, IpAddr);

#[derive(Debug, Default)]
struct Entry {
    done: OnceCell<(SystemTime, AddrProbe)>,
}

impl Entry {
    /// In flight, or done less than `ttl` before `now`.
    fn fresh(&self, now: SystemTime, ttl: Duration) -> bool {
        match self.done.get() {
            None => true,
            Some((at, _)) => now.duration_since(*at).map_or(true, |age| age < ttl),
        }
    }
}

/// Probe results by (MX host, address), with a TTL. Cheap to share by reference.
#[derive(Debug)]
pub struct ProbeCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
}

impl ProbeCache {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> ProbeCache {
        ProbeCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, key: Key, now: SystemTime) -> Arc<Entry> {
        // A poisoned lock only means a task panicked while holding it; every operation on
        // the map is a single lookup or insert, so the map is still consistent.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = entries.get(&key).filter(|e| e.fresh(now, self.ttl)) {
            return e.clone();
        }
        if entries.len() > PRUNE_ABOVE {
            let ttl = self.ttl;
            entries.retain(|_, e| e.fresh(now, ttl));
        }
        let fresh = Arc::new(Entry::default());
        entries.insert(key, fresh.clone());
        fresh
    }

    /// The probe of `ip` of MX host `host` as of `now`: a fresh cached result, the result of
    /// a probe already in flight, or the result of `probe()`, which runs at most once per
    /// key and TTL. Should the task running `probe()` be cancelled, the next waiter runs it.
    pub async fn get_or_probe<F, Fut>(
        &self,
        host: &str,
        ip: IpAddr,
        roots: &Roots,
        now: SystemTime,
        probe: F,
    ) -> AddrProbe
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AddrProbe>,
    {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let entry = self.entry((host.clone(), ip), now);
        let (at, result) = entry
            .done
            .get_or_init(|| async { (now, probe().await) })
            .await;
        if *at == now {
            result.clone()
        } else {
            result.clone().rejudged(&host, roots, now)
        }
    }

    /// How many entries the cache holds (fresh or not yet pruned).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ProbeCache {
    fn default() -> Self {
        ProbeCache::new(DEFAULT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fake(ip: IpAddr) -> AddrProbe {
        AddrProbe {
            addr: SocketAddr::new(ip, 25),
            banner: None,
            ehlo_extensions: Vec::new(),
            starttls_offered: false,
            tls: None,
            legacy: None,
            error: None,
            quit_timed_out: false,
        }
    }

    #[tokio::test]
    async fn probe_cache_concurrent_requests_share_one_probe() {
        let cache = ProbeCache::new(Duration::from_secs(60));
        let roots = Roots::webpki();
        let runs = AtomicUsize::new(0);
        let ip: IpAddr = "192.0.2.25".parse().expect("ip");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let one = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            fake(ip)
        };
        let got = futures::future::join_all(
            (0..10).map(|_| cache.get_or_probe("MX.a.test.", ip, &roots, now, one)),
        )
        .await;
        assert_eq!(got.len(), 10);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one probe for ten requests");
    }

    #[tokio::test]
    async fn probe_cache_entry_expires_after_ttl() {
        let cache = ProbeCache::new(Duration::from_secs(60));
        let roots = Roots::webpki();
        let runs = AtomicUsize::new(0);
        let ip: IpAddr = "192.0.2.25".parse().expect("ip");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let one = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            fake(ip)
        };
        let cases = [
            (t0, 1, "first request probes"),
            (t0 + Duration::from_secs(59), 1, "inside the TTL: cached"),
            (t0 + Duration::from_secs(60), 2, "at the TTL: probed again"),
            (t0 + Duration::from_secs(61), 2, "the new entry is fresh"),
        ];
        for (now, want, why) in cases {
            cache.get_or_probe("mx.a.test", ip, &roots, now, one).await;
            assert_eq!(runs.load(Ordering::SeqCst), want, "{why}");
        }
        let other: IpAddr = "192.0.2.26".parse().expect("ip");
        cache
            .get_or_probe("mx.a.test", other, &roots, t0, one)
            .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "another address is another key"
        );
    }
}
