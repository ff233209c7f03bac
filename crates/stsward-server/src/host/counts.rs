//! Counting policy fetches (RFC 8461 §3.3 GETs answered 200) per domain, per UTC day and per
//! fetching network, so that a user can see that senders read the policy.
//!
//! ```text
//! key   = (policy domain, UTC date, network)    network = IPv4 /24 | IPv6 /48
//! value = number of fetches since the last drain()
//! ```
//!
//! Counting whole networks rather than addresses keeps the table small (a large sender
//! fetches from many addresses of one network) and stores no single client's address.
//! The table holds at most `max_keys` keys; a fetch that would need a new key past that is
//! not counted by key but added to [`FetchCounts::dropped`], so a flood of fetches from many
//! networks cannot grow memory. A periodic task calls [`FetchCounter::drain`] and persists
//! what it returns; the table is then empty again.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use time::{Date, OffsetDateTime};

/// The default bound on keys between two drains: 50,000 domains each fetched from a few
/// networks a day, drained every few minutes, stay far below it; one key costs well under
/// 100 bytes.
pub const DEFAULT_MAX_COUNT_KEYS: usize = 200_000;

/// A fetching network: the address with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The first three octets of an IPv4 address (a /24).
    V4([u8; 3]),
    /// The first six octets of an IPv6 address (a /48).
    V6([u8; 6]),
}

impl Network {
    /// The network of `addr`; IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a dual-stack
    /// socket reports IPv4 peers) count as IPv4.
    pub fn of(addr: IpAddr) -> Network {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Network::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Network::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Network::V4([a, b, c]) => write!(f, "{}/24", Ipv4Addr::new(a, b, c, 0)),
            Network::V6(o) => {
                let mut full = [0u8; 16];
                full[..6].copy_from_slice(&o);
                write!(f, "{}/48", Ipv6Addr::from(full))
            }
        }
    }
}

type Key = (Arc<str>, Date, Network);

/// One counted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCount {
    /// The policy domain (lowercase, no trailing dot).
    pub domain: Arc<str>,
    /// The UTC date of the fetches.
    pub day: Date,
    /// The fetching network.
    pub network: Network,
    /// Fetches since the last drain.
    pub fetches: u64,
}

/// What [`FetchCounter::drain`] hands over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchCounts {
    /// The counts by key, sorted by domain, day and network.
    pub counts: Vec<FetchCount>,
    /// Fetches not counted by key because the table was full.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Table {
    counts: HashMap<Key, u64>,
    dropped: u64,
}

/// The fetch counter shared by the policy host's connections; cheap to clone.
#[derive(Debug, Clone)]
pub struct FetchCounter {
    table: Arc<Mutex<Table>>,
    max_keys: usize,
}

impl Default for FetchCounter {
    fn default() -> Self {
        FetchCounter::new(DEFAULT_MAX_COUNT_KEYS)
    }
}

impl FetchCounter {
    /// A counter holding at most `max_keys` keys between drains.
    pub fn new(max_keys: usize) -> FetchCounter {
        FetchCounter {
            table: Arc::new(Mutex::new(Table::default())),
            max_keys,
        }
    }

    /// Counts one fetch of `domain`'s policy by `peer` at `now`.
    pub fn record(&self, domain: &Arc<str>, peer: IpAddr, now: SystemTime) {
        let day = OffsetDateTime::from(now).date();
        let key = (domain.clone(), day, Network::of(peer));
        let mut table = self.lock();
        let full = table.counts.len() >= self.max_keys;
        match table.counts.get_mut(&key) {
            Some(n) => *n = n.saturating_add(1),
            None if full => table.dropped = table.dropped.saturating_add(1),
            None => {
                table.counts.insert(key, 1);
            }
        }
    }

    /// Takes every count so far and starts again from zero.
    pub fn drain(&self) -> FetchCounts {
        let table = std::mem::take(&mut *self.lock());
        let mut counts: Vec<FetchCount> = table
            .counts
            .into_iter()
            .map(|((domain, day, network), fetches)| FetchCount {
                domain,
                day,
                network,
                fetches,
            })
            .collect();
        counts.sort_by(|a, b| (&a.domain, a.day, a.network).cmp(&(&b.domain, b.day, b.network)));
        FetchCounts {
            counts,
            dropped: table.dropped,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Each change is one map update: a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn network_table() {
        let cases = [
            ("192.0.2.77", "192.0.2.0/24"),
            ("::ffff:192.0.2.77", "192.0.2.0/24"),
            ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
            ("::1", "::/48"),
        ];
        for (addr, want) in cases {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(Network::of(ip).to_string(), want, "{addr}");
        }
    }

    #[test]
    fn counts_by_domain_day_and_network() {
        let c = FetchCounter::new(100);
        let a: Arc<str> = Arc::from("a.test");
        let b: Arc<str> = Arc::from("b.test");
        let day1 = 1_750_000_000; // 2025-06-15 UTC
        let day2 = day1 + 86_400;
        c.record(&a, "192.0.2.1".parse().unwrap(), at(day1));
        c.record(&a, "192.0.2.200".parse().unwrap(), at(day1 + 60));
        c.record(&a, "198.51.100.1".parse().unwrap(), at(day1));
        c.record(&a, "192.0.2.1".parse().unwrap(), at(day2));
        c.record(&b, "2001:db8:1:2::3".parse().unwrap(), at(day1));
        let got = c.drain();
        let rows: Vec<String> = got
            .counts
            .iter()
            .map(|r| format!("{} {} {} {}", r.domain, r.day, r.network, r.fetches))
            .collect();
        assert_eq!(
            rows,
            [
                "a.test 2025-06-15 192.0.2.0/24 2",
                "a.test 2025-06-15 198.51.100.0/24 1",
                "a.test 2025-06-16 192.0.2.0/24 1",
                "b.test 2025-06-15 2001:db8:1::/48 1",
            ]
        );
        assert_eq!(got.dropped, 0);
        assert_eq!(c.drain(), FetchCounts::default(), "drain empties the table");
    }

    #[test]
    fn keys_are_bounded_and_the_excess_is_counted() {
        let c = FetchCounter::new(2);
        let a: Arc<str> = Arc::from("a.test");
        for last in 1..=5u8 {
            c.record(&a, IpAddr::from([10, 0, last, 1]), at(0));
        }
        // Existing keys still count when the table is full.
        c.record(&a, IpAddr::from([10, 0, 1, 9]), at(0));
        let got = c.drain();
        assert_eq!(got.counts.len(), 2);
        assert_eq!(got.counts.iter().map(|r| r.fetches).sum::<u64>(), 3);
        assert_eq!(got.dropped, 3);
    }
}
