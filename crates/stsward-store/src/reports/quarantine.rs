//! The report quarantine: input that could not be read, or was refused (RFC 8460 §3: report
//! mail without a valid DKIM signature by the reporting domain "MUST be ignored"), kept with
//! its raw bytes and the reason, so that nothing accepted is lost. An entry is released by
//! running its input through intake again ([`super::Intake::releases`]); it then keeps its
//! row with `released_at` set until retention prunes it.
//!
//! Entries are install-wide: quarantined input could not be attributed to a policy domain,
//! and so to a tenant; listing them is the operator's job.

use crate::error::{Operation, StoreError};
use crate::reports::RawInput;
use crate::store::{Store, with_pool};

/// Inserts an entry unless the same input (by digest) is waiting already (no row returned).
pub(crate) const INSERT: &str = "INSERT INTO report_quarantine (received_at, channel, kind, \
     origin, reason, size, compressed, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (digest) WHERE released_at IS NULL DO NOTHING RETURNING id";

/// The waiting entry of the input with digest `$1`.
pub(crate) const WAITING: &str =
    "SELECT id FROM report_quarantine WHERE digest = $1 AND released_at IS NULL";

/// Marks entry `$2` released at `$1`, once.
pub(crate) const MARK_RELEASED: &str =
    "UPDATE report_quarantine SET released_at = $1 WHERE id = $2 AND released_at IS NULL";

/// A quarantined input, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedInput {
    /// The entry's id (`stsward reports release ID`).
    pub id: i64,
    /// When the input was received, epoch seconds.
    pub received_at: i64,
    /// The channel that received it.
    pub channel: String,
    /// What its bytes are (`message`, `json`, `gzip`, or a file name).
    pub kind: String,
    /// Where it came from.
    pub origin: String,
    /// Why it is here.
    pub reason: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was released, if it was.
    pub released_at: Option<i64>,
}

type Row = (i64, i64, String, String, String, String, i64, Option<i64>);

const COLUMNS: &str = "id, received_at, channel, kind, origin, reason, size, released_at";

fn from_row(
    (id, received_at, channel, kind, origin, reason, size, released_at): Row,
) -> QuarantinedInput {
    QuarantinedInput {
        id,
        received_at,
        channel,
        kind,
        origin,
        reason,
        size: u64::try_from(size).unwrap_or(0),
        released_at,
    }
}

impl Store {
    /// Quarantined inputs, newest first, those after id `before` when given (paging), at most
    /// `limit`; released ones only when `include_released`.
    pub async fn quarantine_list(
        &self,
        include_released: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<QuarantinedInput>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM report_quarantine WHERE id < $1 {} ORDER BY id DESC LIMIT $2",
            if include_released {
                ""
            } else {
                "AND released_at IS NULL"
            }
        );
        let rows = self
            .run(Operation::QuarantineList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Row>(&sql)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// One quarantined input with its raw bytes (still compressed).
    pub async fn quarantine_get(
        &self,
        id: i64,
    ) -> Result<Option<(QuarantinedInput, RawInput)>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS}, compressed, digest FROM report_quarantine WHERE id = $1");
        type Full = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Vec<u8>,
            String,
        );
        let row = self
            .run(Operation::QuarantineGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Full>(&sql).bind(id).fetch_optional(pool).await
                })
            })
            .await?;
        Ok(row.map(
            |(id, at, channel, kind, origin, reason, size, released, compressed, digest)| {
                let raw = RawInput::from_stored(size, compressed, digest);
                (
                    from_row((id, at, channel, kind, origin, reason, size, released)),
                    raw,
                )
            },
        ))
    }
}
