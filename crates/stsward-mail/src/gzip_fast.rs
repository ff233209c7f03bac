//! RFC 1952 — gunzip for the common case, with an inflater reused per thread
//!
//! A report file is a few kilobytes, so setting up a fresh decoder for each one (the inflate
//! state, its 32 KiB window, a read buffer) costs about as much as the inflating itself.
//! [`gunzip`] keeps one raw-deflate inflater per thread, resets it for every gzip member
//! and inflates straight into the output.
//!
//! ```text
//! member = ID1 ID2 CM FLG MTIME(4) XFL OS [FNAME "\0"] deflate-data CRC32(4) ISIZE(4)
//!          1f  8b  08                                                (RFC 1952 §2.3)
//! ```
//!
//! It takes only what it can check completely and answers `None` for everything else, so
//! that the caller falls back to `flate2`'s `MultiGzDecoder`, which then also words any
//! error: a header with `FEXTRA`, `FCOMMENT`, `FHCRC`, reserved flag bits or a file name
//! over 4 KiB, corrupt or truncated data, a CRC-32 or ISIZE that does not match, and output
//! beyond the limit.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};

/// RFC 1952 §2.3.1 flag bits.
const FNAME: u8 = 0x08;

/// Longest original file name (`FNAME`) taken here; longer ones go to flate2.
const MAX_NAME: usize = 4096;

thread_local! {
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// The decompressed bytes of one or more gzip members (RFC 1952 §2.2), at most `limit`
/// bytes, or `None` when the data is not the plain case this reader takes.
pub(crate) fn gunzip(data: &[u8], limit: u64) -> Option<Vec<u8>> {
    let limit = usize::try_from(limit).ok()?;
    INFLATER.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let inflater = slot.get_or_insert_with(|| Decompress::new(false));
        let mut out = Vec::new();
        let mut rest = data;
        loop {
            let body = header_end(rest)?;
            let start = out.len();
            inflater.reset(false);
            let used = inflate_member(inflater, body, &mut out, limit)?;
            let trailer = body.get(used..used.checked_add(8)?)?;
            let (crc, size) = trailer.split_at(4);
            let member = out.get(start..)?;
            if crc32fast::hash(member).to_le_bytes() != crc
                || (member.len() as u32).to_le_bytes() != size
            {
                return None;
            }
            rest = body.get(used + 8..)?;
            if rest.is_empty() {
                return Some(out);
            }
        }
    })
}

/// The data after a member header, when the header is one this reader takes.
fn header_end(member: &[u8]) -> Option<&[u8]> {
    let (fixed, rest) = member.split_at_checked(10)?;
    let [0x1f, 0x8b, 8, flags, ..] = *fixed else {
        return None;
    };
    match flags {
        0 => Some(rest),
        FNAME => {
            let nul = rest.iter().position(|&b| b == 0)?;
            // flate2 refuses header fields longer than 65,535 bytes; stay well inside that.
            if nul >= MAX_NAME {
                return None;
            }
            rest.get(nul + 1..)
        }
        _ => None,
    }
}

/// Inflates one raw deflate stream from `input` onto `out`; returns how many input bytes it
/// used. `None` for corrupt or truncated data, or output past `limit`.
fn inflate_member(
    inflater: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Option<usize> {
    let in_start = inflater.total_in();
    loop {
        if out.len() == out.capacity() && out.len() < limit {
            // Reports deflate to about a tenth; grow geometrically, never past the limit.
            let want = out
                .capacity()
                .max(input.len().saturating_mul(4))
                .max(4096)
                .min(limit - out.len());
            out.reserve_exact(want);
        }
        let used = usize::try_from(inflater.total_in() - in_start).ok()?;
        let before = (used, out.len());
        let status = inflater
            .decompress_vec(input.get(used..)?, out, FlushDecompress::None)
            .ok()?;
        let used = usize::try_from(inflater.total_in() - in_start).ok()?;
        if status == Status::StreamEnd {
            return Some(used);
        }
        if out.len() == out.capacity() {
            // Full: more room, unless the limit is reached with the stream still going.
            if out.len() >= limit {
                return None;
            }
        } else if (used, out.len()) == before {
            // No progress with room left: the stream is truncated.
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn gzip(data: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut b = flate2::GzBuilder::new();
        if let Some(n) = name {
            b = b.filename(n);
        }
        let mut enc = b.write(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("in memory");
        enc.finish().expect("in memory")
    }

    fn reference(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn rfc1952_members_are_read_as_flate2_reads_them() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let one = gzip(b"{\"a\":1}", None);
        let named = gzip(b"{\"b\":2}", Some("report.json"));
        let two = [one.clone(), named.clone()].concat();
        for (name, data) in [
            ("one", &one),
            ("named", &named),
            ("two members", &two),
            ("large", &gzip(&big, None)),
            ("empty", &gzip(b"", None)),
        ] {
            // Twice, so that the reused inflater is exercised after a first use.
            for _ in 0..2 {
                let got = gunzip(data, 1 << 24);
                assert_eq!(
                    got.as_deref(),
                    Some(reference(data).expect(name).as_slice()),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn rfc1952_anything_unusual_is_left_to_flate2() {
        let good = gzip(b"{\"report\":true}", None);
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        let mut bad_size = good.clone();
        let at = bad_size.len() - 1;
        bad_size[at] ^= 1;
        let mut fhcrc = good.clone();
        fhcrc[3] = 0x02;
        let mut comment = good.clone();
        comment[3] = 0x10;
        let mut not_deflate = good.clone();
        not_deflate[2] = 7;
        let trailing = [good.clone(), b"x".to_vec()].concat();
        let truncated = good[..good.len() - 5].to_vec();
        let cut_stream = good[..14].to_vec();
        let long_name = gzip(b"{}", Some(&"n".repeat(70_000)));
        for (name, data) in [
            ("crc", &bad_crc),
            ("isize", &bad_size),
            ("FHCRC", &fhcrc),
            ("FCOMMENT", &comment),
            ("CM", &not_deflate),
            ("trailing garbage", &trailing),
            ("truncated trailer", &truncated),
            ("truncated stream", &cut_stream),
            ("header only", &good[..10].to_vec()),
            ("long FNAME", &long_name),
            ("nothing", &Vec::new()),
        ] {
            assert_eq!(gunzip(data, 1 << 24), None, "{name}");
        }
        // The limit: exactly the size is fine, one byte less is refused.
        let data = gzip(&[7u8; 10_000], None);
        assert_eq!(gunzip(&data, 10_000).map(|v| v.len()), Some(10_000));
        assert_eq!(gunzip(&data, 9_999), None);
        // And the inflater is still good afterwards.
        assert_eq!(
            gunzip(&good, 100).as_deref(),
            Some(&b"{\"report\":true}"[..])
        );
    }
}
