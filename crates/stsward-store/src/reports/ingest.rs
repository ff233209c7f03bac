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
}

/// Rows per multi-row statement: 12 parameters per failure row stays far below SQLite's
/// 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl Details {
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
            let entry = self
                .rollups
                .entry((
                    domain.clone(),
                    day,
                    org.clone(),
                    String::new(),
                    String::new(),
                ))
                .or_insert((0, 0));
            entry.0 = entry
                .0
                .saturating_add(to_i64(p.summary.total_successful_session_count));
            entry.1 = entry.1.saturating_add(to_i64(failed.sessions));
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
                let entry = self
                    .rollups
                    .entry((
                        domain.clone(),
                        day,
                        org.clone(),
                        mx,
                        field(d.result_type.as_str()),
                    ))
                    .or_insert((0, 0));
                entry.1 = entry.1.saturating_add(to_i64(d.failed_session_count));
            }
        }
    }
}

/// Writes the batch's policies, failure details and rollup deltas (in key order) with
/// multi-row statements. A macro so that it is written once for both backends.
macro_rules! write_details {
    ($tx:ident, $details:expr) => {{
        for chunk in $details.policies.chunks(ROWS_PER_STATEMENT) {
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
        for chunk in $details.failures.chunks(ROWS_PER_STATEMENT) {
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
        for chunk in rollups.chunks(ROWS_PER_STATEMENT) {
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
            let mut raw_ids: Vec<Option<i64>> = vec![None; batch.len()];
            for (i, intake) in batch.iter().enumerate() {
                match &intake.content {
                    IntakeContent::Quarantine { reason } => {
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
                    IntakeContent::Reports(_) => {
                        let id = sqlx::query_scalar::<_, i64>(
                            "INSERT INTO report_raw (received_at, size, compressed) \
                             VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(intake.received_at)
                        .bind(to_i64(intake.raw.size as u64))
                        .bind(&intake.raw.compressed)
                        .fetch_one(&mut *tx)
                        .await?;
                        raw_ids[i] = Some(id);
                    }
                }
            }
            let mut details = Details::default();
            for (i, record) in order {
                let intake = &batch[i];
                let report = &record.report;
                let totals = report.totals();
                let domains = policy_domains(report);
                let inserted = sqlx::query_scalar::<_, i64>(INSERT_REPORT)
                    .bind(&record.org_key)
                    .bind(&record.id_key)
                    .bind(field(&report.organization_name))
                    .bind(field(&report.report_id))
                    .bind(report.date_range.start.unix_timestamp())
                    .bind(report.date_range.end.unix_timestamp())
                    .bind(report.contact_info.as_deref().map(field))
                    .bind(field(&domains))
                    .bind(clean(&intake.channel))
                    .bind(field(&record.dkim.result))
                    .bind(record.dkim.detail.as_deref().map(field))
                    .bind(to_i64(totals.successful))
                    .bind(to_i64(totals.failed.sessions))
                    .bind(totals.failed.estimated)
                    .bind(to_i64(record.deviations as u64))
                    .bind(raw_ids[i])
                    .bind(intake.received_at)
                    .fetch_optional(&mut *tx)
                    .await?;
                let IntakeResult::Stored { stored, duplicates } = &mut results[i] else {
                    continue;
                };
                let Some(report_row) = inserted else {
                    *duplicates += 1;
                    continue;
                };
                *stored += 1;
                details.add(report_row, intake, report);
            }
            for (i, intake) in batch.iter().enumerate() {
                // Every report was a duplicate: keep no second copy of the input.
                if let (IntakeResult::Stored { stored: 0, .. }, Some(raw)) = (results[i], raw_ids[i]) {
                    sqlx::query("DELETE FROM report_raw WHERE id = $1")
                        .bind(raw)
                        .execute(&mut *tx)
                        .await?;
                }
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

const INSERT_REPORT: &str = "INSERT INTO reports (org_key, id_key, organization, report_id, \
     begin_at, end_at, contact, policy_domains, channel, dkim, dkim_detail, successful, \
     failed, failed_estimated, deviations, raw_id, received_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
     $15, $16, $17) \
     ON CONFLICT (org_key, id_key) DO NOTHING RETURNING id";

/// The rollup upsert's conflict clause: add to the counts already there.
const ROLLUP_CONFLICT: &str = " ON CONFLICT (policy_domain, day, organization, receiving_mx, \
     result_type) DO UPDATE SET successful = report_rollups.successful + excluded.successful, \
     failed = report_rollups.failed + excluded.failed";

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
