//! Alerts (issue 9, "Scheduler and alerts"): which causes are open per hosted domain, the
//! sends of their openings and resolutions to each destination, the per-destination send
//! budget, and the rounds of scheduled re-checks and evaluations.
//!
//! ```text
//! alerts              id, domain_id, rule, cause_key, summary, opened_at, resolved_at
//!                     UNIQUE (domain_id, rule, cause_key) WHERE resolved_at IS NULL
//! alert_deliveries    id, alert_id, destination, event (opened|resolved),
//!                     state (pending|sending|sent|failed), attempts, next_at, claimed_by, …
//! alert_send_windows  destination (PK), window_start, sent
//! alert_rounds        (domain_id, kind) PK, due_at, claimed_by
//!
//! sync(domain, rules, open causes, destinations, now)     one transaction:
//!   each cause:   INSERT … ON CONFLICT (domain_id, rule, cause_key) WHERE resolved_at IS NULL
//!                 DO NOTHING RETURNING id     -> a row: opened now; a delivery per destination
//!   each open alert of an evaluated rule whose cause is gone:
//!                 UPDATE … SET resolved_at WHERE id AND resolved_at IS NULL -> resolved now
//! claim(delivery, holder, now)                             one transaction:
//!   budget:       INSERT/UPDATE alert_send_windows … WHERE the window is over OR sent < max
//!   delivery:     UPDATE … SET state = 'sending' WHERE id AND state is pending (or a claim
//!                 that expired) AND next_at <= now
//!   both wrote -> Claimed; no budget -> RateLimited (nothing written); else Taken
//! ```
//!
//! **Opened once.** The open alert's uniqueness is the partial unique index `alerts_open`: two
//! replicas evaluating one domain at once both insert, and on PostgreSQL the second waits for
//! the first's transaction and then inserts nothing; SQLite runs one writer at a time. Only the
//! writer whose insert returned a row adds the deliveries. Resolving is a guarded `UPDATE`, so
//! one replica resolves. A cause that comes back after resolving opens a new row.
//!
//! **Sent once.** A delivery is sent by the replica whose guarded `UPDATE` moved it to
//! `sending`. The claim lasts until `next_at`; a replica that dies between sending and
//! recording leaves a claim that expires and is sent again (the one case of a second send).
//! A failed send goes back to `pending` with a later `next_at`, and becomes `failed` after the
//! caller's last attempt, with its error kept: nothing is dropped silently.
//!
//! **Rate-limited per destination.** The claim counts the send in `alert_send_windows` in the
//! same transaction, by one `INSERT … ON CONFLICT DO UPDATE … WHERE`; on PostgreSQL the row
//! lock serialises replicas, so the count never passes the limit.
//!
//! Evaluations and sends are install-wide (their methods say so); [`Store::alert_list`] takes
//! the tenant.

use std::collections::BTreeSet;

use crate::TenantId;
use crate::error::{Field, Operation, StoreError};
use crate::hosting::{MAX_TEXT_BYTES, bounded};
use crate::store::{Store, with_pool};

/// Longest rule name, cause key or destination name the store accepts, in bytes.
pub const MAX_ALERT_KEY: usize = 512;

/// A cause that is open now, as a rule found it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenCause {
    /// The rule (e.g. `cert-expiring`).
    pub rule: String,
    /// What, within the rule, is wrong: stable while the cause lasts (e.g. `mx:mx1.example`).
    pub key: String,
    /// In words, for people.
    pub summary: String,
}

/// What one [`Store::alerts_sync`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Alerts opened now: `(id, rule, key)`.
    pub opened: Vec<(i64, String, String)>,
    /// Alerts resolved now: `(id, rule, key)`.
    pub resolved: Vec<(i64, String, String)>,
}

/// An alert, as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// Its id.
    pub id: i64,
    /// The domain.
    pub domain: String,
    /// The rule.
    pub rule: String,
    /// The cause's key within the rule.
    pub key: String,
    /// In words.
    pub summary: String,
    /// When it opened, epoch seconds.
    pub opened_at: i64,
    /// When it resolved, epoch seconds; `None` while open.
    pub resolved_at: Option<i64>,
}

/// Whether a delivery tells of an opening or a resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// The alert opened.
    Opened,
    /// Its cause went away.
    Resolved,
}

impl AlertEvent {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Resolved => "resolved",
        }
    }
}

/// A delivery that is due, with what is to be said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery's id.
    pub id: i64,
    /// The destination's name.
    pub destination: String,
    /// Opened or resolved.
    pub event: AlertEvent,
    /// Attempts before this one.
    pub attempts: i64,
    /// The domain's owner.
    pub tenant: TenantId,
    /// The alert.
    pub alert: Alert,
}

/// What claiming a delivery came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// This caller sends it.
    Claimed,
    /// Another caller has it, or it is not due.
    Taken,
    /// The destination's budget for the window is spent; try later.
    RateLimited,
}

/// The per-destination send budget: at most `max` claims per `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendBudget {
    /// Sends per window.
    pub max: u32,
    /// The window, in seconds.
    pub window: i64,
}

/// Which scheduled work a round is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundKind {
    /// A full check of the domain.
    Check,
    /// An evaluation of the alert rules.
    Evaluate,
}

impl RoundKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Evaluate => "evaluate",
        }
    }
}

/// A domain whose round is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueRound {
    /// The domain's row id.
    pub domain_id: i64,
    /// Its owner.
    pub tenant: TenantId,
    /// The domain.
    pub domain: String,
    /// The `due_at` seen, which [`Store::alert_round_claim`] compares against.
    pub due_at: i64,
}

type AlertRow = (i64, String, String, String, String, i64, Option<i64>);

fn alert_from((id, domain, rule, key, summary, opened_at, resolved_at): AlertRow) -> Alert {
    Alert {
        id,
        domain,
        rule,
        key,
        summary,
        opened_at,
        resolved_at,
    }
}

fn key_checked(field: Field, value: &str) -> Result<(), StoreError> {
    bounded(field, value, MAX_ALERT_KEY)
}

/// Shortens a text to what the store keeps, on a character boundary, without NULs.
fn clip(text: &str) -> String {
    let mut text = text.replace('\0', "");
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Store {
    /// Install-wide (the alert evaluation): makes the open alerts of the domain row
    /// `domain_id` for the rules in `rules` exactly `open` (causes of other rules must not
    /// be given), in one transaction. A cause not open yet opens, with a pending delivery per
    /// destination; an open alert of an evaluated rule whose cause is not in `open` resolves,
    /// with a pending delivery per destination. Alerts of rules not evaluated are left alone.
    pub async fn alerts_sync(
        &self,
        domain_id: i64,
        rules: &[&str],
        open: &[OpenCause],
        destinations: &[String],
        now: i64,
    ) -> Result<SyncOutcome, StoreError> {
        for c in open {
            key_checked(Field::Alert, &c.rule)?;
            key_checked(Field::Alert, &c.key)?;
            if !rules.contains(&c.rule.as_str()) {
                return Err(StoreError::Invalid {
                    field: Field::Alert,
                    reason: "a cause's rule must be one of the rules evaluated",
                });
            }
        }
        for d in destinations {
            key_checked(Field::AlertDestination, d)?;
        }
        const OPEN: &str = "INSERT INTO alerts (domain_id, rule, cause_key, summary, opened_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (domain_id, rule, cause_key) WHERE resolved_at IS NULL DO NOTHING \
             RETURNING id";
        const LIST_OPEN: &str = "SELECT id, rule, cause_key FROM alerts \
             WHERE domain_id = $1 AND resolved_at IS NULL";
        const RESOLVE: &str = "UPDATE alerts SET resolved_at = $2 \
             WHERE id = $1 AND resolved_at IS NULL";
        const DELIVER: &str = "INSERT INTO alert_deliveries \
             (alert_id, destination, event, state, attempts, next_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4) \
             ON CONFLICT (alert_id, destination, event) DO NOTHING";
        let wanted: BTreeSet<(&str, &str)> = open
            .iter()
            .map(|c| (c.rule.as_str(), c.key.as_str()))
            .collect();
        self.run(Operation::AlertsSync, async {
            with_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut outcome = SyncOutcome::default();
                for c in open {
                    let inserted = sqlx::query_as::<_, (i64,)>(OPEN)
                        .bind(domain_id)
                        .bind(&c.rule)
                        .bind(&c.key)
                        .bind(clip(&c.summary))
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((id,)) = inserted {
                        for d in destinations {
                            sqlx::query(DELIVER)
                                .bind(id)
                                .bind(d)
                                .bind(AlertEvent::Opened.as_str())
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        outcome.opened.push((id, c.rule.clone(), c.key.clone()));
                    }
                }
                let current = sqlx::query_as::<_, (i64, String, String)>(LIST_OPEN)
                    .bind(domain_id)
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, rule, key) in current {
                    if !rules.contains(&rule.as_str())
                        || wanted.contains(&(rule.as_str(), key.as_str()))
                    {
                        continue;
                    }
                    let done = sqlx::query(RESOLVE)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if done == 1 {
                        for d in destinations {
                            sqlx::query(DELIVER)
                                .bind(id)
                                .bind(d)
                                .bind(AlertEvent::Resolved.as_str())
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        outcome.resolved.push((id, rule, key));
                    }
                }
                tx.commit().await?;
                Ok(outcome)
            })
        })
        .await
    }

    /// The alerts of `tenant`, newest first, at most `limit`: of one live domain when
    /// `domain` is given, open ones only when `open_only`. A domain of another tenant gives
    /// nothing.
    pub async fn alert_list(
        &self,
        tenant: TenantId,
        domain: Option<&str>,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        // $3 = '' lists every domain of the tenant.
        const SQL: &str = "SELECT a.id, d.domain, a.rule, a.cause_key, a.summary, \
             a.opened_at, a.resolved_at FROM alerts a JOIN hosted_domains d ON d.id = a.domain_id \
             WHERE d.tenant_id = $1 AND d.state <> 'gone' AND ($2 = '' OR d.domain = $2) \
             AND ($3 = FALSE OR a.resolved_at IS NULL) ORDER BY a.id DESC LIMIT $4";
        let rows = self
            .run(Operation::AlertList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, AlertRow>(SQL)
                        .bind(tenant.0)
                        .bind(domain.unwrap_or(""))
                        .bind(open_only)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(alert_from).collect())
    }

    /// Install-wide (the sender): at most `limit` deliveries due at `now` (pending, or a
    /// claim that expired), the longest due first. Listing claims nothing.
    pub async fn alert_deliveries_due(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        const SQL: &str = "SELECT x.id, x.destination, x.event, x.attempts, d.tenant_id, \
             a.id, d.domain, a.rule, a.cause_key, a.summary, a.opened_at, a.resolved_at \
             FROM alert_deliveries x JOIN alerts a ON a.id = x.alert_id \
             JOIN hosted_domains d ON d.id = a.domain_id \
             WHERE x.state IN ('pending', 'sending') AND x.next_at <= $1 \
             ORDER BY x.next_at, x.id LIMIT $2";
        type Row = (
            i64,
            String,
            String,
            i64,
            i64,
            i64,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
        );
        let rows = self
            .run(Operation::AlertDeliveriesDue, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Row>(SQL)
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                let event = match r.2.as_str() {
                    "opened" => AlertEvent::Opened,
                    "resolved" => AlertEvent::Resolved,
                    other => {
                        return Err(StoreError::Corrupt {
                            field: Field::Alert,
                            value: other.chars().take(32).collect(),
                        });
                    }
                };
                Ok(DueDelivery {
                    id: r.0,
                    destination: r.1,
                    event,
                    attempts: r.3,
                    tenant: TenantId(r.4),
                    alert: alert_from((r.5, r.6, r.7, r.8, r.9, r.10, r.11)),
                })
            })
            .collect()
    }

    /// Install-wide (the sender): claims delivery `id` for `holder` until `claim_until`, if it
    /// is due at `now` and its destination's `budget` allows one more send; both in one
    /// transaction (a refused budget writes nothing).
    pub async fn alert_delivery_claim(
        &self,
        id: i64,
        destination: &str,
        holder: &str,
        now: i64,
        claim_until: i64,
        budget: SendBudget,
    ) -> Result<DeliveryClaim, StoreError> {
        key_checked(Field::AlertDestination, destination)?;
        key_checked(Field::LeaseHolder, holder)?;
        // $2 now, $3 the start of a window that began at or before it ended, $4 max.
        const BUDGET: &str = "INSERT INTO alert_send_windows (destination, window_start, sent) \
             VALUES ($1, $2, 1) ON CONFLICT (destination) DO UPDATE SET \
             window_start = CASE WHEN alert_send_windows.window_start <= $3 \
                            THEN excluded.window_start ELSE alert_send_windows.window_start END, \
             sent = CASE WHEN alert_send_windows.window_start <= $3 \
                    THEN 1 ELSE alert_send_windows.sent + 1 END \
             WHERE alert_send_windows.window_start <= $3 OR alert_send_windows.sent < $4";
        const CLAIM: &str = "UPDATE alert_deliveries SET state = 'sending', claimed_by = $2, \
             next_at = $4, attempts = attempts + 1 \
             WHERE id = $1 AND state IN ('pending', 'sending') AND next_at <= $3";
        let window_over = now.saturating_sub(budget.window.max(1));
        self.run(Operation::AlertDeliveryClaim, async {
            with_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                let claimed = sqlx::query(CLAIM)
                    .bind(id)
                    .bind(holder)
                    .bind(now)
                    .bind(claim_until)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if claimed != 1 {
                    return Ok(DeliveryClaim::Taken);
                }
                let counted = sqlx::query(BUDGET)
                    .bind(destination)
                    .bind(now)
                    .bind(window_over)
                    .bind(i64::from(budget.max))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if counted != 1 {
                    // Dropping the transaction rolls the claim back.
                    return Ok(DeliveryClaim::RateLimited);
                }
                tx.commit().await?;
                Ok(DeliveryClaim::Claimed)
            })
        })
        .await
    }

    /// Install-wide (the sender): records that `holder` sent delivery `id` at `now`. Returns
    /// whether its claim was still `holder`'s.
    pub async fn alert_delivery_done(
        &self,
        id: i64,
        holder: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE alert_deliveries SET state = 'sent', sent_at = $3, \
             last_error = NULL WHERE id = $1 AND claimed_by = $2 AND state = 'sending'";
        let n = self
            .run(Operation::AlertDeliveryDone, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(id)
                        .bind(holder)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(n == 1)
    }

    /// Install-wide (the sender): records that `holder`'s send of delivery `id` failed with
    /// `error`. It is tried again at `retry_at`, or, when `retry_at` is `None` (the last
    /// attempt), kept as `failed` with its error. Returns whether the claim was `holder`'s.
    pub async fn alert_delivery_failed(
        &self,
        id: i64,
        holder: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE alert_deliveries SET \
             state = CASE WHEN $4 THEN 'pending' ELSE 'failed' END, \
             next_at = CASE WHEN $4 THEN $5 ELSE next_at END, last_error = $3 \
             WHERE id = $1 AND claimed_by = $2 AND state = 'sending'";
        let error = clip(error);
        let n = self
            .run(Operation::AlertDeliveryFailed, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(id)
                        .bind(holder)
                        .bind(&error)
                        .bind(retry_at.is_some())
                        .bind(retry_at.unwrap_or(0))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(n == 1)
    }

    /// Install-wide: the deliveries of alert `alert_id` as `(destination, event, state,
    /// attempts, last_error)`, for the operator and tests.
    pub async fn alert_deliveries_of(
        &self,
        alert_id: i64,
    ) -> Result<Vec<(String, String, String, i64, Option<String>)>, StoreError> {
        const SQL: &str = "SELECT destination, event, state, attempts, last_error \
             FROM alert_deliveries WHERE alert_id = $1 ORDER BY id";
        self.run(Operation::AlertDeliveriesOf, async {
            with_pool!(self, pool => {
                sqlx::query_as::<_, (String, String, String, i64, Option<String>)>(SQL)
                    .bind(alert_id)
                    .fetch_all(pool)
                    .await
            })
        })
        .await
    }

    /// Install-wide (the scheduler): gives every active domain without a `kind` round one,
    /// due at `now` plus an offset in `[0, interval)` from its row id, so that the rounds of
    /// many domains are spread over the interval. Returns how many rows were made.
    pub async fn alert_rounds_seed(
        &self,
        kind: RoundKind,
        now: i64,
        interval: i64,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "INSERT INTO alert_rounds (domain_id, kind, due_at) \
             SELECT d.id, $1, $2 + (d.id * 7919) % $3 FROM hosted_domains d \
             WHERE d.state = 'active' AND NOT EXISTS \
             (SELECT 1 FROM alert_rounds r WHERE r.domain_id = d.id AND r.kind = $1) \
             ON CONFLICT (domain_id, kind) DO NOTHING";
        self.run(Operation::AlertRoundsSeed, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(kind.as_str())
                    .bind(now)
                    .bind(interval.max(1))
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await
    }

    /// Install-wide (the scheduler): at most `limit` active domains whose `kind` round is
    /// due at `now`, the longest due first. Listing claims nothing.
    pub async fn alert_rounds_due(
        &self,
        kind: RoundKind,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueRound>, StoreError> {
        const SQL: &str = "SELECT d.id, d.tenant_id, d.domain, r.due_at FROM alert_rounds r \
             JOIN hosted_domains d ON d.id = r.domain_id \
             WHERE r.kind = $1 AND r.due_at <= $2 AND d.state = 'active' \
             ORDER BY r.due_at, d.id LIMIT $3";
        let rows = self
            .run(Operation::AlertRoundsDue, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, i64, String, i64)>(SQL)
                        .bind(kind.as_str())
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(domain_id, tenant, domain, due_at)| DueRound {
                domain_id,
                tenant: TenantId(tenant),
                domain,
                due_at,
            })
            .collect())
    }

    /// Install-wide (the scheduler): claims `due`'s `kind` round for `holder` by moving its
    /// `due_at` to `next`, if no one moved it since it was listed. Returns whether this caller
    /// has the round.
    pub async fn alert_round_claim(
        &self,
        kind: RoundKind,
        due: &DueRound,
        holder: &str,
        next: i64,
    ) -> Result<bool, StoreError> {
        key_checked(Field::LeaseHolder, holder)?;
        const SQL: &str = "UPDATE alert_rounds SET due_at = $4, claimed_by = $5 \
             WHERE domain_id = $1 AND kind = $2 AND due_at = $3";
        let n = self
            .run(Operation::AlertRoundClaim, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(due.domain_id)
                        .bind(kind.as_str())
                        .bind(due.due_at)
                        .bind(next)
                        .bind(holder)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(n == 1)
    }
}
