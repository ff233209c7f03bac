//! RFC 8460 §5.2 — compressed reports, read within hard limits
//!
//! RFC 8460 §5.2 says a report SHOULD be gzip-compressed for both e-mail and HTTPS; some
//! senders send zip archives instead. The RFC sets no limit on the size of a report. Its
//! only figure is informative: "a commonly observed receiver limit is ten megabytes" for
//! the message. Compressed data from strangers is a classic denial of service (a few
//! kilobytes of gzip can expand to gigabytes), so every read here goes through
//! [`read_bounded`], which stops one byte past the limit and never holds more than the
//! limit in memory, whatever the archive headers claim.
//!
//! ```text
//! gzip:  1f 8b ...                  (RFC 1952; several members may follow each other)
//! zip:   50 4b 03 04 ... 50 4b 05 06  (local headers ... end of central directory)
//! ```

use std::io::{Cursor, Read};

use crate::MailError;

/// Default ceiling for one report after decompression: 16 MiB.
///
/// RFC 8460 sets no limit. A report that would be delivered uncompressed already meets the
/// ten-megabyte receiver limit that RFC 8460 §5.2 reports as common, and real reports are
/// a few kilobytes (the largest in our corpus is under 3 KiB), so 16 MiB leaves a wide
/// margin for a big sender's failure details while bounding memory per report.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 16 * 1024 * 1024;

/// Default ceiling for all reports of one message or file together: 64 MiB.
pub const DEFAULT_MAX_TOTAL_DECOMPRESSED: u64 = 64 * 1024 * 1024;

/// Default ceiling for the raw message or file handed in: 32 MiB (three times the common
/// ten-megabyte receiver limit of RFC 8460 §5.2, leaving room for base64 overhead).
pub const DEFAULT_MAX_INPUT: u64 = 32 * 1024 * 1024;

/// Default ceiling for entries listed in one zip archive. Report archives hold one file;
/// a zip that lists thousands is a bomb or not a report.
pub const DEFAULT_MAX_ZIP_ENTRIES: usize = 64;

/// Default ceiling for reports taken from one message or file.
pub const DEFAULT_MAX_REPORTS: usize = 64;

/// The size and count limits applied while extracting. [`Limits::default`] uses the
/// `DEFAULT_*` constants of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest raw message or file accepted, in bytes.
    pub max_input: u64,
    /// Largest single report after decompression, in bytes.
    pub max_decompressed: u64,
    /// Largest sum of all reports of one input after decompression, in bytes.
    pub max_total_decompressed: u64,
    /// Most entries a zip archive may list.
    pub max_zip_entries: usize,
    /// Most reports taken from one input.
    pub max_reports: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input: DEFAULT_MAX_INPUT,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            max_total_decompressed: DEFAULT_MAX_TOTAL_DECOMPRESSED,
            max_zip_entries: DEFAULT_MAX_ZIP_ENTRIES,
            max_reports: DEFAULT_MAX_REPORTS,
        }
    }
}

/// The gzip magic number (RFC 1952 §2.3.1: ID1 = 31, ID2 = 139).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The zip local file header signature (APPNOTE.TXT §4.3.7), `PK\x03\x04`.
pub const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";
/// The zip end of central directory signature (APPNOTE.TXT §4.3.16), `PK\x05\x06`.
const ZIP_EOCD_MAGIC: [u8; 4] = *b"PK\x05\x06";
/// The end of central directory record is 22 bytes plus a comment of up to 65535 bytes.
const ZIP_EOCD_MIN: usize = 22;
const ZIP_EOCD_MAX_SEARCH: usize = ZIP_EOCD_MIN + u16::MAX as usize;

/// Reads at most `limit` bytes from `reader`; more is a [`MailError::TooLarge`] naming `what`.
///
/// The buffer grows by hand rather than through `read_to_end`, whose doubling could
/// reserve up to twice the limit; here capacity never exceeds `limit`.
pub fn read_bounded(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let mut reader = reader.take(limit.saturating_add(1));
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        let new_len = out.len().saturating_add(n);
        if new_len > cap {
            return Err(ReadError::TooLarge(MailError::TooLarge {
                limit,
                what: what.to_owned(),
            }));
        }
        if new_len > out.capacity() {
            let target = out.capacity().saturating_mul(2).max(new_len).min(cap);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Why [`read_bounded`] stopped: the limit, or an error of the underlying reader.
#[derive(Debug)]
pub enum ReadError {
    /// The data exceeded the limit (always [`MailError::TooLarge`]).
    TooLarge(MailError),
    /// The reader failed (for a decoder: the data is corrupt or truncated).
    Io(std::io::Error),
}

/// Decompresses gzip data (one or several members, RFC 1952 §2.2) of the part named `part`.
///
/// The common case goes through a per-thread reused inflater (`gzip_fast`); anything it
/// does not take, including every error, is read again by `flate2`'s `MultiGzDecoder`,
/// which decides and words the outcome.
pub fn gunzip(data: &[u8], limit: u64, part: &str) -> Result<Vec<u8>, MailError> {
    if let Some(out) = crate::gzip_fast::gunzip(data, limit) {
        return Ok(out);
    }
    let decoder = flate2::read::MultiGzDecoder::new(data);
    let what = format!("{part}: the decompressed gzip data");
    read_bounded(decoder, limit, &what).map_err(|e| match e {
        ReadError::TooLarge(e) => e,
        ReadError::Io(source) => MailError::Gzip {
            part: part.to_owned(),
            source,
        },
    })
}

/// One report file found inside a zip archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The entry's name in the archive.
    pub name: String,
    /// The entry's bytes, decompressed (and gunzipped too for `.json.gz` entries).
    pub data: Vec<u8>,
}

/// Reads the entries of a zip archive that look like reports (`.json`, `.json.gz`).
///
/// `limit` bounds each entry after decompression and `total_limit` all of them together.
/// Zip64 archives are refused: a report never comes near 4 GiB, and the classic end
/// record lets the entry count be checked before the archive is opened.
pub fn unzip_reports(
    data: &[u8],
    limits: &Limits,
    total_limit: u64,
    part: &str,
) -> Result<Vec<ZipEntry>, MailError> {
    let zip_err = |reason: String| MailError::Zip {
        part: part.to_owned(),
        reason,
    };
    let listed = zip_entry_count(data).map_err(|r| zip_err(r.to_owned()))?;
    if usize::from(listed) > limits.max_zip_entries {
        return Err(MailError::TooLarge {
            limit: limits.max_zip_entries as u64,
            what: format!("{part}: the number of zip entries ({listed})"),
        });
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| zip_err(format!("it cannot be opened ({e})")))?;
    let mut entries = Vec::new();
    let mut used: u64 = 0;
    for index in 0..archive.len() {
        let mut file = archive
            .by_index(index)
            .map_err(|e| zip_err(format!("entry {index} cannot be read ({e})")))?;
        let name = file.name().to_owned();
        let lower = name.to_ascii_lowercase();
        let gz = lower.ends_with(".json.gz");
        if file.is_dir() || !(gz || lower.ends_with(".json")) {
            continue;
        }
        if file.encrypted() {
            return Err(zip_err(format!("entry {name:?} is encrypted")));
        }
        let remaining = total_limit.saturating_sub(used);
        let (entry_limit, what) = if remaining < limits.max_decompressed {
            (remaining, format!("{part}: all reports together"))
        } else {
            (
                limits.max_decompressed,
                format!("{part}: the decompressed zip entry {name:?}"),
            )
        };
        let bytes = read_bounded(&mut file, entry_limit, &what).map_err(|e| match e {
            ReadError::TooLarge(e) => e,
            ReadError::Io(e) => zip_err(format!("entry {name:?} is damaged ({e})")),
        })?;
        let bytes = if gz || bytes.starts_with(&GZIP_MAGIC) {
            let label = format!("{part}: zip entry {name:?}");
            gunzip(&bytes, entry_limit, &label)?
        } else {
            bytes
        };
        used = used.saturating_add(bytes.len() as u64);
        entries.push(ZipEntry { name, data: bytes });
    }
    if entries.is_empty() {
        return Err(zip_err(format!(
            "none of its {listed} entries is named *.json or *.json.gz"
        )));
    }
    Ok(entries)
}

/// Reads the entry count from the end of central directory record, refusing zip64.
fn zip_entry_count(data: &[u8]) -> Result<u16, &'static str> {
    let search_from = data.len().saturating_sub(ZIP_EOCD_MAX_SEARCH);
    let tail = data.get(search_from..).unwrap_or_default();
    let at = tail
        .windows(ZIP_EOCD_MAGIC.len())
        .rposition(|w| w == ZIP_EOCD_MAGIC)
        .ok_or("it has no end of central directory record (truncated?)")?;
    let eocd = tail
        .get(at..at + ZIP_EOCD_MIN)
        .ok_or("its end of central directory record is truncated")?;
    let u16_at = |i: usize| {
        eocd.get(i..i + 2)
            .and_then(|b| b.try_into().ok())
            .map_or(u16::MAX, u16::from_le_bytes)
    };
    let u32_at = |i: usize| {
        eocd.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(u32::MAX, u32::from_le_bytes)
    };
    // APPNOTE.TXT §4.3.16: total entries at offset 10, directory offset at 16; all-ones
    // values mean the real ones are in a zip64 record.
    let total = u16_at(10);
    if total == u16::MAX || u32_at(16) == u32::MAX {
        return Err("it is a zip64 archive, which no report needs");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn read_bounded_accepts_exactly_the_limit_and_refuses_one_more() {
        assert_eq!(read_bounded(&b"abcd"[..], 4, "x").unwrap(), b"abcd");
        match read_bounded(&b"abcde"[..], 4, "five bytes") {
            Err(ReadError::TooLarge(MailError::TooLarge { limit: 4, what })) => {
                assert_eq!(what, "five bytes")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_bounded_never_reserves_past_the_limit() {
        let limit = 100_000;
        let data = vec![7u8; limit];
        let out = read_bounded(&data[..], limit as u64, "x").unwrap();
        assert!(out.capacity() <= limit, "capacity {}", out.capacity());
    }

    #[test]
    fn rfc1952_2_2_multi_member_gzip_is_read_whole() {
        let mut data = gzip(b"{\"a\":");
        data.extend(gzip(b"1}"));
        assert_eq!(gunzip(&data, 1024, "x").unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        match gunzip(&bomb, 1024 * 1024, "bomb.json.gz") {
            Err(MailError::TooLarge { limit, what }) => {
                assert_eq!(limit, 1024 * 1024);
                assert!(what.contains("bomb.json.gz"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_gzip_is_a_gzip_error() {
        let good = gzip(b"{\"report\": true}");
        let bad = [
            (&good[..good.len() - 6], "truncated trailer"),
            (&good[..10], "header only"),
            (&[0x1f, 0x8b, 0x08, 0x00][..], "truncated header"),
        ];
        for (data, reason) in bad {
            assert!(
                matches!(gunzip(data, 1024, "x"), Err(MailError::Gzip { .. })),
                "{reason}"
            );
        }
    }

    #[test]
    fn zip_without_end_record_or_with_zip64_marker_is_refused() {
        let bad: [(&[u8], &str); 3] = [
            (b"PK\x03\x04garbage", "no end of central directory"),
            (b"PK\x05\x06\0\0", "end record truncated"),
            (
                b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\0\0\0\0\0\0\0\0\0\0",
                "zip64 marker in entry count",
            ),
        ];
        for (data, reason) in bad {
            assert!(zip_entry_count(data).is_err(), "{reason}");
        }
    }
}
