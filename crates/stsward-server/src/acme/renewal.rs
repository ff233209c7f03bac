//! When to order: renewal time, back-off after failures, and the CA-wide order budget.
//!
//! Pure functions and plain state; the clock and the random seed are arguments, so the
//! scheduler that drives them (written later) and the tests can move time freely.
//!
//! ```text
//! renew at      = ARI window point (RFC 9773 §4.2), when the CA offers renewal information
//!               | not_before + 2/3 (not_after - not_before)            (issue 7)
//! after failure = max(now + back-off(failures), the CA's Retry-After)   (RFC 8555 §6.6)
//! back-off(n)   = min(first * 2^(n-1), max), less up to a tenth (jitter)
//! order budget  = at most N new orders in any hour, none while the CA said to wait
//! ```
//!
//! ARI (RFC 9773): instant-acme 0.8 can ask for a certificate's renewal information
//! ([`super::Acme::renewal_window`]); Pebble 2.4 (Debian's) does not offer it, so with Pebble
//! the two-thirds rule applies. Paraphrasing RFC 9773 §4.2 (its text is not in this
//! repository's reference folder): the client picks a uniformly random time within the
//! suggested window, and renews at once when that time is already past.

use std::collections::VecDeque;
use std::time::Duration;

use time::OffsetDateTime;

/// Issue 7: renew when two thirds of the certificate's lifetime have passed.
pub fn renew_at(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    if not_after <= not_before {
        return not_before;
    }
    let lifetime = not_after - not_before;
    not_before + lifetime / 3 * 2 + (lifetime - lifetime / 3 * 3) * 2 / 3
}

/// RFC 9773 §4.2: the renewal window a CA suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalWindow {
    /// Start of the window.
    pub start: OffsetDateTime,
    /// End of the window.
    pub end: OffsetDateTime,
}

/// When to renew: a point of the ARI window chosen by `seed` (uniform over the window for a
/// uniform seed) when the CA gave one, else [`renew_at`]. Never after `not_after`: a window
/// that ends after expiry would leave the host without a valid certificate.
pub fn next_renewal(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    ari: Option<&RenewalWindow>,
    seed: u64,
) -> OffsetDateTime {
    let at = match ari {
        Some(w) if w.end > w.start => w.start + scale(w.end - w.start, seed),
        Some(w) => w.start,
        None => renew_at(not_before, not_after),
    };
    at.min(not_after)
}

/// `span * seed / 2^64`: a point in `[0, span)`, uniform for a uniform `seed`.
fn scale(span: time::Duration, seed: u64) -> time::Duration {
    let nanos = span.whole_nanoseconds().max(0);
    let point = (nanos as u128).saturating_mul(u128::from(seed)) >> 64;
    time::Duration::nanoseconds(i64::try_from(point).unwrap_or(i64::MAX))
}

/// Back-off after failed orders for one name: doubling from `first`, capped at `max`, with
/// up to a tenth taken off so that names that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// One hour, doubling to a day.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(3600),
            max: Duration::from_secs(24 * 3600),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (none after none); `seed` picks the
    /// jitter.
    pub fn delay(&self, failures: u32, seed: u64) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        let base = self.first.saturating_mul(factor).min(self.max);
        let tenth = base / 10;
        let jitter = Duration::from_nanos(
            u64::try_from((tenth.as_nanos()).saturating_mul(u128::from(seed)) >> 64)
                .unwrap_or(u64::MAX),
        );
        base.saturating_sub(jitter)
    }

    /// When to try again after `failures` failures at `now`: the back-off, or later when
    /// the CA said to wait longer (RFC 8555 §6.6 `Retry-After`).
    pub fn retry_at(
        &self,
        now: OffsetDateTime,
        failures: u32,
        seed: u64,
        ca_retry_after: Option<OffsetDateTime>,
    ) -> OffsetDateTime {
        let own = now + self.delay(failures, seed);
        ca_retry_after.map_or(own, |ca| own.max(ca))
    }
}

/// How many new orders per hour this service places with its CA, whatever the queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRateLimit {
    /// New orders allowed in any sliding hour (at least 1).
    pub per_hour: u32,
}

impl Default for OrderRateLimit {
    /// Thirty an hour: fifty thousand domains renewed every sixty days need fewer than
    /// thirty-five an hour, and Let's Encrypt's published per-account limits are far higher.
    fn default() -> Self {
        OrderRateLimit { per_hour: 30 }
    }
}

/// The order budget: which orders may start now. Bounded: it remembers at most
/// `per_hour` start times.
#[derive(Debug, Clone)]
pub struct OrderBudget {
    limit: OrderRateLimit,
    started: VecDeque<OffsetDateTime>,
    paused_until: Option<OffsetDateTime>,
}

const HOUR: time::Duration = time::Duration::HOUR;

impl OrderBudget {
    /// An empty budget.
    pub fn new(limit: OrderRateLimit) -> OrderBudget {
        let limit = OrderRateLimit {
            per_hour: limit.per_hour.max(1),
        };
        OrderBudget {
            limit,
            started: VecDeque::with_capacity(limit.per_hour.min(1024) as usize),
            paused_until: None,
        }
    }

    /// The earliest time an order may start, `now` when one may start at once.
    pub fn next_slot(&self, now: OffsetDateTime) -> OffsetDateTime {
        let mut at = now;
        if let Some(p) = self.paused_until {
            at = at.max(p);
        }
        let in_hour = self.started.iter().filter(|t| **t > at - HOUR).count();
        if in_hour >= self.limit.per_hour as usize {
            // The oldest start inside the window leaves it one hour after it began.
            if let Some(oldest) = self.started.iter().find(|t| **t > at - HOUR) {
                at = at.max(*oldest + HOUR);
            }
        }
        at
    }

    /// Takes a slot at `now`, or says when the next one is.
    pub fn try_start(&mut self, now: OffsetDateTime) -> Result<(), OffsetDateTime> {
        let slot = self.next_slot(now);
        if slot > now {
            return Err(slot);
        }
        while self.started.front().is_some_and(|t| *t <= now - HOUR) {
            self.started.pop_front();
        }
        if self.started.len() >= self.limit.per_hour as usize {
            self.started.pop_front();
        }
        self.started.push_back(now);
        Ok(())
    }

    /// The CA said to stop until `until` (a rate-limited answer's `Retry-After`, RFC 8555
    /// §6.6): no order starts before then.
    pub fn pause_until(&mut self, until: OffsetDateTime) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renews_at_two_thirds_of_the_lifetime() {
        let cases = [
            (
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-04-01 0:00 UTC),
                datetime!(2026-03-02 0:00 UTC),
                "90 days: day 60",
            ),
            (
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-01 0:00:03 UTC),
                datetime!(2026-01-01 0:00:02 UTC),
                "three seconds: second two",
            ),
            (
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-07 0:00 UTC),
                datetime!(2026-01-05 0:00 UTC),
                "six-day certificate: day four",
            ),
            (
                datetime!(2026-01-02 0:00 UTC),
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-02 0:00 UTC),
                "not_after before not_before: renew at once (at not_before)",
            ),
        ];
        for (nb, na, expected, why) in cases {
            assert_eq!(renew_at(nb, na), expected, "{why}");
        }
    }

    #[test]
    fn two_thirds_is_exact_for_odd_lifetimes() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = nb + time::Duration::nanoseconds(10);
        // 2/3 of 10 ns, rounded down: 6 ns.
        assert_eq!(renew_at(nb, na), nb + time::Duration::nanoseconds(6));
    }

    #[test]
    fn rfc9773_ari_window_wins_and_is_spread_uniformly() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC);
        let w = RenewalWindow {
            start: datetime!(2026-02-01 0:00 UTC),
            end: datetime!(2026-02-03 0:00 UTC),
        };
        assert_eq!(next_renewal(nb, na, Some(&w), 0), w.start);
        assert_eq!(
            next_renewal(nb, na, Some(&w), 1 << 63),
            datetime!(2026-02-02 0:00 UTC),
            "half-way seed, half-way point"
        );
        assert!(next_renewal(nb, na, Some(&w), u64::MAX) < w.end);
        assert_eq!(next_renewal(nb, na, None, 1 << 63), renew_at(nb, na));
        let inverted = RenewalWindow {
            start: w.end,
            end: w.start,
        };
        assert_eq!(next_renewal(nb, na, Some(&inverted), 99), w.end);
        let late = RenewalWindow {
            start: datetime!(2026-05-01 0:00 UTC),
            end: datetime!(2026-05-02 0:00 UTC),
        };
        assert_eq!(
            next_renewal(nb, na, Some(&late), 0),
            na,
            "never after expiry"
        );
    }

    #[test]
    fn backoff_doubles_to_a_day_with_at_most_a_tenth_of_jitter() {
        let b = Backoff::default();
        let h = |n: u64| Duration::from_secs(n * 3600);
        let cases = [
            (0, h(0)),
            (1, h(1)),
            (2, h(2)),
            (3, h(4)),
            (5, h(16)),
            (6, h(24)),
            (40, h(24)),
            (u32::MAX, h(24)),
        ];
        for (failures, expected) in cases {
            assert_eq!(
                b.delay(failures, 0),
                expected,
                "{failures} failures, no jitter"
            );
            let jittered = b.delay(failures, u64::MAX);
            assert!(jittered <= expected, "{failures}: jitter only shortens");
            assert!(
                jittered >= expected - expected / 10,
                "{failures}: by at most a tenth: {jittered:?}"
            );
        }
        assert_ne!(b.delay(3, 0), b.delay(3, 1 << 63), "the seed matters");
    }

    #[test]
    fn rfc8555_6_6_retry_after_later_than_backoff_wins() {
        let b = Backoff::default();
        let now = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(b.retry_at(now, 1, 0, None), datetime!(2026-01-01 1:00 UTC));
        assert_eq!(
            b.retry_at(now, 1, 0, Some(datetime!(2026-01-01 5:00 UTC))),
            datetime!(2026-01-01 5:00 UTC)
        );
        assert_eq!(
            b.retry_at(now, 1, 0, Some(datetime!(2026-01-01 0:10 UTC))),
            datetime!(2026-01-01 1:00 UTC),
            "an earlier Retry-After does not shorten our own back-off"
        );
    }

    #[test]
    fn budget_allows_n_orders_in_any_hour() {
        let mut q = OrderBudget::new(OrderRateLimit { per_hour: 3 });
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let m = |n: i64| t0 + time::Duration::minutes(n);
        assert_eq!(q.try_start(m(0)), Ok(()));
        assert_eq!(q.try_start(m(10)), Ok(()));
        assert_eq!(q.try_start(m(20)), Ok(()));
        assert_eq!(
            q.try_start(m(30)),
            Err(m(60)),
            "fourth waits for the first to age out"
        );
        assert_eq!(q.next_slot(m(30)), m(60));
        assert_eq!(q.try_start(m(60)), Ok(()));
        assert_eq!(q.try_start(m(61)), Err(m(70)));
        assert!(q.started.len() <= 3, "bounded memory");
    }

    #[test]
    fn budget_pauses_while_the_ca_says_to_wait() {
        let mut q = OrderBudget::new(OrderRateLimit { per_hour: 100 });
        let t0 = datetime!(2026-01-01 0:00 UTC);
        q.pause_until(t0 + time::Duration::minutes(45));
        q.pause_until(t0 + time::Duration::minutes(5));
        assert_eq!(
            q.try_start(t0),
            Err(t0 + time::Duration::minutes(45)),
            "the longer pause holds"
        );
        assert_eq!(q.try_start(t0 + time::Duration::minutes(45)), Ok(()));
    }

    #[test]
    fn a_zero_limit_is_one() {
        let mut q = OrderBudget::new(OrderRateLimit { per_hour: 0 });
        let t0 = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(q.try_start(t0), Ok(()));
        assert_eq!(q.try_start(t0), Err(t0 + HOUR));
    }
}
