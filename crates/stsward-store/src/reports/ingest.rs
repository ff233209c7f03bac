//! Committing a batch of inputs in one transaction: reports deduplicated by their unique key
//! (RFC 8460 §4.4 `organization-name` and `report-id`), their policies, failure details and
//! rollup counts written only for reports actually inserted; retention pruning. See the
//! parent module for the scheme and why it cannot deadlock or count twice.

use std::collections::BTreeMap;

use crate::error::{Operation, StoreError};
use crate::reports::{
    DAY, Intake, IntakeContent, IntakeResult, Pruned, ReportRecord, StoredTotals, clean, field,
    policy_domain_of, policy_domains, quarantine, to_i64,
};
use crate::store::{Backend, Store, with_pool};

/// A rollup key: (policy domain, day, organisation, receiving MX, result type).
type RollupKey = (String, i64, String, String, String);

/// A policy row to insert.
struct PolicyRow {
    report: i64,
    idx: i64,
    policy_type: String,
    domain: String,
    strings: String,
    mx_hosts: String,
    successful: i64,
    failed: i64,
    estimated: bool,
}

/// A failure detail row to insert.
struct FailureRow {
    report: i64,
    policy_idx: i64,
    idx: i64,
    received_at: i64,
    result_type: String,
    sending_mta_ip: Option<String>,
    receiving_mx_hostname: Option<String>,
    receiving_mx_helo: Option<String>,
    receiving_ip: Option<String>,
    failed: i64,
    additional_information: Option<String>,
    failure_reason_code: Option<String>,
}

/// The rows a batch writes after its reports: written with multi-row statements, in chunks.
#[derive(Default)]
struct Details {
    policies: Vec<PolicyRow>,
    failures: Vec<FailureRow>,
    rollups: BTreeMap<RollupKey, (i64, i64)>,
    /// The same counts without the policy domain (report_rollups_install).
    install: BTreeMap<(i64, String, String, String), (i64, i64)>,
}

/// Rows per multi-row statement (a power of two, see [`statement_chunks`]): 18 parameters
/// per report row stays far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 128;

impl Details {
    /// Adds `successful` and `failed` sessions to the rollup row `key`, and to its
    /// install-wide row.
    fn count(&mut self, key: RollupKey, successful: i64, failed: i64) {
        let (_, day, org, mx, result_type) = &key;
        let install = self
            .install
            .entry((*day, org.clone(), mx.clone(), result_type.clone()))
            .or_insert((0, 0));
        install.0 = install.0.saturating_add(successful);
        install.1 = install.1.saturating_add(failed);
        let entry = self.rollups.entry(key).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(successful);
        entry.1 = entry.1.saturating_add(failed);
    }

    /// Adds a newly inserted report's policies, failure details and rollup counts.
    fn add(&mut self, report_row: i64, intake: &Intake, report: &stsward_proto::tlsrpt::Report) {
        let day = report.date_range.start.unix_timestamp().div_euclid(DAY) * DAY;
        let org = field(report.organization_name.trim());
        for (p_idx, p) in report.policies.iter().enumerate() {
            let domain = policy_domain_of(p);
            let failed = p.summary.failure_count(&p.failure_details);
            self.policies.push(PolicyRow {
                report: report_row,
                idx: to_i64(p_idx as u64),
                policy_type: field(p.policy.policy_type.as_str()),
                domain: domain.clone(),
                strings: field(&p.policy.policy_string.join("\n")),
                mx_hosts: field(&p.policy.mx_host.join(" ")),
                successful: to_i64(p.summary.total_successful_session_count),
                failed: to_i64(failed.sessions),
                estimated: failed.estimated,
            });
            self.count(
                (
                    domain.clone(),
                    day,
                    org.clone(),
                    String::new(),
                    String::new(),
                ),
                to_i64(p.summary.total_successful_session_count),
                to_i64(failed.sessions),
            );
            for (d_idx, d) in p.failure_details.iter().enumerate() {
                let opt = |v: &Option<String>| v.as_deref().map(field);
                self.failures.push(FailureRow {
                    report: report_row,
                    policy_idx: to_i64(p_idx as u64),
                    idx: to_i64(d_idx as u64),
                    received_at: intake.received_at,
                    result_type: field(d.result_type.as_str()),
                    sending_mta_ip: opt(&d.sending_mta_ip),
                    receiving_mx_hostname: opt(&d.receiving_mx_hostname),
                    receiving_mx_helo: opt(&d.receiving_mx_helo),
                    receiving_ip: opt(&d.receiving_ip),
                    failed: to_i64(d.failed_session_count),
                    additional_information: opt(&d.additional_information),
                    failure_reason_code: opt(&d.failure_reason_code),
                });
                let mx = d
                    .receiving_mx_hostname
                    .as_deref()
                    .or(d.receiving_ip.as_deref())
                    .map(|m| field(m.trim().trim_end_matches('.')).to_lowercase())
                    .unwrap_or_default();
                self.count(
                    (
                        domain.clone(),
                        day,
                        org.clone(),
                        mx,
                        field(d.result_type.as_str()),
                    ),
                    0,
                    to_i64(d.failed_session_count),
                );
            }
        }
    }
}

/// Writes the batch's policies, failure details and rollup deltas (in key order) with
/// multi-row statements. A macro so that it is written once for both backends.
macro_rules! write_details {
    ($tx:ident, $details:expr) => {{
        for chunk in statement_chunks(&$details.policies) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO report_policies (report_id, idx, policy_type, policy_domain, \
                 policy_strings, mx_hosts, successful, failed, failed_estimated) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.report)
                    .push_bind(r.idx)
                    .push_bind(&r.policy_type)
                    .push_bind(&r.domain)
                    .push_bind(&r.strings)
                    .push_bind(&r.mx_hosts)
                    .push_bind(r.successful)
                    .push_bind(r.failed)
                    .push_bind(r.estimated);
            });
            q.build().execute(&mut *$tx).await?;
        }
        for chunk in statement_chunks(&$details.failures) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO report_failures (report_id, policy_idx, idx, received_at, \
                 result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, \
                 receiving_ip, failed, additional_information, failure_reason_code) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.report)
                    .push_bind(r.policy_idx)
                    .push_bind(r.idx)
                    .push_bind(r.received_at)
                    .push_bind(&r.result_type)
                    .push_bind(&r.sending_mta_ip)
                    .push_bind(&r.receiving_mx_hostname)
                    .push_bind(&r.receiving_mx_helo)
                    .push_bind(&r.receiving_ip)
                    .push_bind(r.failed)
                    .push_bind(&r.additional_information)
                    .push_bind(&r.failure_reason_code);
            });
            q.build().execute(&mut *$tx).await?;
        }
        let rollups: Vec<(&RollupKey, &(i64, i64))> = $details.rollups.iter().collect();
        for chunk in statement_chunks(&rollups) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO report_rollups (policy_domain, day, organization, receiving_mx, \
                 result_type, successful, failed) ",
            );
            q.push_values(
                chunk,
                |mut b, ((domain, day, org, mx, result_type), (s, f))| {
                    b.push_bind(domain)
                        .push_bind(*day)
                        .push_bind(org)
                        .push_bind(mx)
                        .push_bind(result_type)
                        .push_bind(*s)
                        .push_bind(*f);
                },
            );
            q.push(ROLLUP_CONFLICT);
            q.build().execute(&mut *$tx).await?;
        }
        let install: Vec<_> = $details.install.iter().collect();
        for chunk in statement_chunks(&install) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO report_rollups_install (day, organization, receiving_mx, \
                 result_type, successful, failed) ",
            );
            q.push_values(chunk, |mut b, ((day, org, mx, result_type), (s, f))| {
                b.push_bind(*day)
                    .push_bind(org)
                    .push_bind(mx)
                    .push_bind(result_type)
                    .push_bind(*s)
                    .push_bind(*f);
            });
            q.push(INSTALL_ROLLUP_CONFLICT);
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

impl Store {
    /// Commits `batch` in one transaction (see the module documentation) and says what became
    /// of each input, in order. On an error nothing of the batch is committed.
    pub async fn reports_ingest(&self, batch: &[Intake]) -> Result<Vec<IntakeResult>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // A deadlock or serialisation failure (PostgreSQL) rolls the whole batch back; it
        // is safe to run again because nothing of it was committed.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .run(Operation::ReportsIngest, self.ingest_once(batch))
                .await;
            match result {
                Err(StoreError::Query { ref source, .. }) if attempt < 4 && retryable(source) => {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn ingest_once(&self, batch: &[Intake]) -> Result<Vec<IntakeResult>, sqlx::Error> {
        let begin = begin_statement(self.backend());
        // Every report of the batch, in key order (lock order), with its input's index.
        let mut order: Vec<(usize, &ReportRecord)> = batch
            .iter()
            .enumerate()
            .flat_map(|(i, intake)| match &intake.content {
                IntakeContent::Reports(reports) => reports.iter().map(move |r| (i, r)).collect(),
                IntakeContent::Quarantine { .. } => Vec::new(),
            })
            .collect();
        order.sort_by(|a, b| a.1.key().cmp(&b.1.key()));
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let mut results = vec![IntakeResult::Stored { stored: 0, duplicates: 0 }; batch.len()];
            for (i, intake) in batch.iter().enumerate() {
                if let IntakeContent::Quarantine { reason } = &intake.content {
                    let id = match intake.releases {
                        Some(id) => id,
                        None => {
                            let new = sqlx::query_scalar::<_, i64>(quarantine::INSERT)
                                .bind(intake.received_at)
                                .bind(clean(&intake.channel))
                                .bind(clean(&intake.kind))
                                .bind(clean(&intake.origin))
                                .bind(clean(reason))
                                .bind(to_i64(intake.raw.size as u64))
                                .bind(&intake.raw.compressed)
                                .bind(&intake.raw.digest)
                                .fetch_optional(&mut *tx)
                                .await?;
                            match new {
                                Some(id) => id,
                                // The same input is waiting already: that entry stands.
                                None => sqlx::query_scalar::<_, i64>(quarantine::WAITING)
                                    .bind(&intake.raw.digest)
                                    .fetch_one(&mut *tx)
                                    .await?,
                            }
                        }
                    };
                    results[i] = IntakeResult::Quarantined { id };
                }
            }
            // Ids for the raw inputs and the reports, taken before writing so that both can
            // be written with multi-row statements (see `reserve_ids`).
            let raw_inputs: Vec<usize> = batch
                .iter()
                .enumerate()
                .filter(|(_, intake)| matches!(intake.content, IntakeContent::Reports(_)))
                .map(|(i, _)| i)
                .collect();
            let raw_sql = reserve_ids(self.backend(), "report_raw");
            let report_sql = reserve_ids(self.backend(), "reports");
            let mut raw_ids: Vec<Option<i64>> = vec![None; batch.len()];
            if !raw_inputs.is_empty() {
                let ids = sqlx::query_scalar::<_, i64>(&raw_sql)
                    .bind(to_i64(raw_inputs.len() as u64))
                    .fetch_all(&mut *tx)
                    .await?;
                for (&i, id) in raw_inputs.iter().zip(ids) {
                    raw_ids[i] = Some(id);
                }
            }
            let report_ids: Vec<i64> = if order.is_empty() {
                Vec::new()
            } else {
                sqlx::query_scalar::<_, i64>(&report_sql)
                    .bind(to_i64(order.len() as u64))
                    .fetch_all(&mut *tx)
                    .await?
            };
            // Reports in key order; the ids returned are those inserted (not duplicates).
            let rows: Vec<(i64, usize, &ReportRecord)> = order
                .iter()
                .zip(&report_ids)
                .map(|(&(i, record), &id)| (id, i, record))
                .collect();
            let mut inserted = std::collections::HashSet::with_capacity(rows.len());
            for chunk in statement_chunks(&rows) {
                let mut q = sqlx::QueryBuilder::new(INSERT_REPORTS);
                q.push_values(chunk, |mut b, &(id, i, record)| {
                    let intake = &batch[i];
                    let report = &record.report;
                    let totals = report.totals();
                    b.push_bind(id)
                        .push_bind(&record.org_key)
                        .push_bind(&record.id_key)
                        .push_bind(field(&report.organization_name))
                        .push_bind(field(&report.report_id))
                        .push_bind(report.date_range.start.unix_timestamp())
                        .push_bind(report.date_range.end.unix_timestamp())
                        .push_bind(report.contact_info.as_deref().map(field))
                        .push_bind(field(&policy_domains(report)))
                        .push_bind(clean(&intake.channel))
                        .push_bind(field(&record.dkim.result))
                        .push_bind(record.dkim.detail.as_deref().map(field))
                        .push_bind(to_i64(totals.successful))
                        .push_bind(to_i64(totals.failed.sessions))
                        .push_bind(totals.failed.estimated)
                        .push_bind(to_i64(record.deviations as u64))
                        .push_bind(raw_ids[i])
                        .push_bind(intake.received_at);
                });
                q.push(" ON CONFLICT (org_key, id_key) DO NOTHING RETURNING id");
                let ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                inserted.extend(ids);
            }
            let mut details = Details::default();
            for &(id, i, record) in &rows {
                let IntakeResult::Stored { stored, duplicates } = &mut results[i] else {
                    continue;
                };
                if inserted.contains(&id) {
                    *stored += 1;
                    details.add(id, &batch[i], &record.report);
                } else {
                    *duplicates += 1;
                }
            }
            // Raw inputs only for inputs with a report stored: an input whose every report
            // was a duplicate keeps no second copy. reports.raw_id is checked at commit
            // (DEFERRABLE INITIALLY DEFERRED), so the reports could be written first.
            let raws: Vec<(i64, &Intake)> = raw_inputs
                .iter()
                .filter(|&&i| matches!(results[i], IntakeResult::Stored { stored: 1.., .. }))
                .filter_map(|&i| raw_ids[i].map(|id| (id, &batch[i])))
                .collect();
            for chunk in statement_chunks(&raws) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO report_raw (id, received_at, size, compressed) ",
                );
                q.push_values(chunk, |mut b, &(id, intake)| {
                    b.push_bind(id)
                        .push_bind(intake.received_at)
                        .push_bind(to_i64(intake.raw.size as u64))
                        .push_bind(&intake.raw.compressed);
                });
                q.build().execute(&mut *tx).await?;
            }
            for (i, intake) in batch.iter().enumerate() {
                if let (IntakeResult::Stored { .. }, Some(released)) = (results[i], intake.releases) {
                    sqlx::query(quarantine::MARK_RELEASED)
                        .bind(intake.received_at)
                        .bind(released)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            write_details!(tx, details);
            tx.commit().await?;
            Ok(results)
        })
    }

    /// Deletes raw inputs and failure details received before `before` (epoch seconds), and
    /// released quarantine entries released before it. Reports, their policies and the
    /// rollups stay, so summaries do not change and a re-sent old report is still known.
    pub async fn reports_prune(&self, before: i64) -> Result<Pruned, StoreError> {
        self.run(Operation::ReportsPrune, async {
            with_pool!(self, pool => {
                let mut tx = pool.begin_with(begin_statement(self.backend())).await?;
                let failure_details = sqlx::query("DELETE FROM report_failures WHERE received_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let raw_inputs = sqlx::query("DELETE FROM report_raw WHERE received_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let released_quarantine = sqlx::query(
                    "DELETE FROM report_quarantine WHERE released_at IS NOT NULL AND released_at < $1",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(Pruned { raw_inputs, failure_details, released_quarantine })
            })
        })
        .await
    }

    /// Totals over the stored report rows (install-wide; for checks and tests, not for
    /// dashboards, which read [`Store::reports_summary`]).
    pub async fn reports_stored_totals(&self) -> Result<StoredTotals, StoreError> {
        const SQL: &str = "SELECT \
             (SELECT COUNT(*) FROM reports), \
             (SELECT CAST(COALESCE(SUM(successful), 0) AS BIGINT) FROM reports), \
             (SELECT CAST(COALESCE(SUM(failed), 0) AS BIGINT) FROM reports), \
             (SELECT COUNT(*) FROM report_failures), \
             (SELECT COUNT(*) FROM report_raw)";
        let (reports, successful, failed, details, raw) = self
            .run(Operation::ReportsStoredTotals, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(SQL).fetch_one(pool).await
                })
            })
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(StoredTotals {
            reports: n(reports),
            successful: n(successful),
            failed: n(failed),
            failure_details: n(details),
            raw_inputs: n(raw),
        })
    }
}

const INSERT_REPORTS: &str = "INSERT INTO reports (id, org_key, id_key, organization, \
     report_id, begin_at, end_at, contact, policy_domains, channel, dkim, dkim_detail, \
     successful, failed, failed_estimated, deviations, raw_id, received_at) ";

/// The statement that hands out `$1` fresh ids of `table`. SQLite: the transaction holds
/// the write lock (`BEGIN IMMEDIATE`), so the ids above the largest one are free until it
/// ends. PostgreSQL: the ids come from the identity column's sequence, shared by every
/// replica (an id taken by a transaction that rolls back is skipped, as with a default).
fn reserve_ids(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             SELECT (SELECT COALESCE(MAX(id), 0) FROM {table}) + i FROM n"
        ),
        Backend::Postgres => format!(
            "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) \
             FROM generate_series(1, $1::BIGINT)"
        ),
    }
}

/// Splits `rows` into statement-sized chunks: full chunks of [`ROWS_PER_STATEMENT`], then
/// the rest in powers of two, so that a batch of any size uses one of a few statement
/// shapes, each prepared once per connection and then reused from the statement cache.
fn statement_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = if rest.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// The rollup upsert's conflict clause: add to the counts already there.
const ROLLUP_CONFLICT: &str = " ON CONFLICT (policy_domain, day, organization, receiving_mx, \
     result_type) DO UPDATE SET successful = report_rollups.successful + excluded.successful, \
     failed = report_rollups.failed + excluded.failed";

/// The same for the install-wide rollups.
const INSTALL_ROLLUP_CONFLICT: &str = " ON CONFLICT (day, organization, receiving_mx, \
     result_type) DO UPDATE SET successful = report_rollups_install.successful \
     + excluded.successful, failed = report_rollups_install.failed + excluded.failed";

/// How a writing transaction starts: SQLite takes the write lock at once (a deferred
/// transaction that later writes can fail with SQLITE_BUSY instead of waiting).
fn begin_statement(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    }
}

/// PostgreSQL deadlock_detected (40P01) or serialization_failure (40001).
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}
