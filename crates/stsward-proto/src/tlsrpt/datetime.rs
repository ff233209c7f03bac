//! RFC 8460 §4.4 — report date-times (RFC 3339 §5.6 `date-time`)
//!
//! `start-datetime` and `end-datetime` are RFC 3339 date-times. Reports are written with `Z`,
//! but some senders (Microsoft, seen in the wild) leave the offset out entirely; such a value is
//! read as UTC and the caller records a deviation. Nothing is ever defaulted: a value that is
//! not a date-time is an error.
//!
//! ```text
//! date-time    = full-date "T" full-time              ; RFC 3339 §5.6
//! full-date    = date-fullyear "-" date-month "-" date-mday
//! full-time    = partial-time time-offset
//! partial-time = time-hour ":" time-minute ":" time-second [time-secfrac]
//! time-offset  = "Z" / time-numoffset                 ; accepted here: also absent
//! ```

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A report date-time (RFC 8460 §4.4), always held in UTC. `Display` writes RFC 3339 with `Z`
/// (and a fraction only when there is one), which is what a conformant report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportDateTime(OffsetDateTime);

/// Which liberty a sender took with a date-time that was still readable (RFC 8460 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeLeniency {
    /// No `Z` or numeric offset: read as UTC.
    NoOffset,
    /// A space instead of `T` between date and time.
    SpaceSeparator,
}

/// A string that is not an RFC 3339 date-time, even leniently (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an RFC 3339 date-time: {reason}")]
pub struct DateTimeError {
    /// The string given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ReportDateTime {
    /// Wraps a time, converted to UTC. `None` if the year is outside 0–9999, which RFC 3339
    /// §5.6 cannot write.
    pub fn new(t: OffsetDateTime) -> Option<Self> {
        let utc = t.to_offset(UtcOffset::UTC);
        (0..=9999)
            .contains(&utc.year())
            .then_some(ReportDateTime(utc))
    }

    /// The time, in UTC.
    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }

    /// Seconds since the Unix epoch.
    pub fn unix_timestamp(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Parses an RFC 3339 date-time, also accepting a missing offset (read as UTC) and a space
    /// separator, and says which of those liberties were taken.
    pub fn parse_lenient(s: &str) -> Result<(Self, Vec<DateTimeLeniency>), DateTimeError> {
        let err = |reason| DateTimeError {
            value: s.to_owned(),
            reason,
        };
        let b = s.as_bytes();
        let mut leniency = Vec::new();
        let num = |from: usize, len: usize| -> Option<u32> {
            let digits = b.get(from..from + len)?;
            digits.iter().try_fold(0u32, |acc, d| {
                d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
            })
        };
        let punct = |at: usize, c: u8| b.get(at) == Some(&c);

        let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 2), num(8, 2)) else {
            return Err(err("the date is not YYYY-MM-DD"));
        };
        if !(punct(4, b'-') && punct(7, b'-')) {
            return Err(err("the date is not YYYY-MM-DD"));
        }
        match b.get(10) {
            Some(b'T' | b't') => {}
            Some(b' ') => leniency.push(DateTimeLeniency::SpaceSeparator),
            _ => return Err(err("no time after the date")),
        }
        let (Some(hour), Some(minute), Some(mut second)) = (num(11, 2), num(14, 2), num(17, 2))
        else {
            return Err(err("the time is not hh:mm:ss"));
        };
        if !(punct(13, b':') && punct(16, b':')) {
            return Err(err("the time is not hh:mm:ss"));
        }

        let mut pos = 19;
        let mut nanos = 0u32;
        if punct(pos, b'.') {
            pos += 1;
            let start = pos;
            let mut scale = 100_000_000u32;
            while let Some(d) = b.get(pos).filter(|d| d.is_ascii_digit()) {
                // Digits beyond nanoseconds cannot be represented; they are below any
                // precision a report needs.
                nanos += u32::from(d - b'0') * scale;
                scale /= 10;
                pos += 1;
            }
            if pos == start {
                return Err(err("a '.' without fraction digits"));
            }
        }

        let offset = match b.get(pos) {
            None => {
                leniency.push(DateTimeLeniency::NoOffset);
                UtcOffset::UTC
            }
            Some(b'Z' | b'z') => {
                pos += 1;
                UtcOffset::UTC
            }
            Some(sign @ (b'+' | b'-')) => {
                let (Some(oh), Some(om)) = (num(pos + 1, 2), num(pos + 4, 2)) else {
                    return Err(err("the offset is not +hh:mm or -hh:mm"));
                };
                if !punct(pos + 3, b':') {
                    return Err(err("the offset is not +hh:mm or -hh:mm"));
                }
                pos += 6;
                let (oh, om) = (oh as i8, om as i8);
                let (oh, om) = if *sign == b'-' { (-oh, -om) } else { (oh, om) };
                UtcOffset::from_hms(oh, om, 0).map_err(|_| err("the offset is out of range"))?
            }
            Some(_) => return Err(err("unexpected text after the time")),
        };
        if pos != b.len() {
            return Err(err("unexpected text after the offset"));
        }

        // RFC 3339 §5.6 allows a leap second (60); `time` cannot hold one, so it becomes the
        // last representable instant of that minute.
        if second == 60 {
            second = 59;
            nanos = 999_999_999;
        }
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| err("the month is out of range"))?;
        let date = Date::from_calendar_date(year as i32, month, day as u8)
            .map_err(|_| err("the day does not exist"))?;
        let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos)
            .map_err(|_| err("the time of day is out of range"))?;
        let dt = PrimitiveDateTime::new(date, time).assume_offset(offset);
        let dt = ReportDateTime::new(dt).ok_or_else(|| err("the year is out of range"))?;
        Ok((dt, leniency))
    }
}

impl FromStr for ReportDateTime {
    type Err = DateTimeError;

    /// Strict RFC 3339: the lenient forms are errors here.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (dt, leniency) = Self::parse_lenient(s)?;
        match leniency.first() {
            None => Ok(dt),
            Some(DateTimeLeniency::NoOffset) => Err(DateTimeError {
                value: s.to_owned(),
                reason: "no Z or offset",
            }),
            Some(DateTimeLeniency::SpaceSeparator) => Err(DateTimeError {
                value: s.to_owned(),
                reason: "a space instead of T",
            }),
        }
    }
}

impl fmt::Display for ReportDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        let nanos = t.nanosecond();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_5_6_good_and_lenient_forms() {
        // (input, normalised output, leniencies)
        let good: &[(&str, &str, &[DateTimeLeniency])] = &[
            ("2016-04-01T00:00:00Z", "2016-04-01T00:00:00Z", &[]),
            ("2016-04-01t23:59:59z", "2016-04-01T23:59:59Z", &[]),
            ("2016-04-01T00:00:00.250Z", "2016-04-01T00:00:00.25Z", &[]),
            ("2016-04-01T02:00:00+02:00", "2016-04-01T00:00:00Z", &[]),
            ("2016-03-31T19:00:00-05:00", "2016-04-01T00:00:00Z", &[]),
            (
                "2024-03-26T00:00:00",
                "2024-03-26T00:00:00Z",
                &[DateTimeLeniency::NoOffset],
            ),
            (
                "2024-03-26 00:00:00Z",
                "2024-03-26T00:00:00Z",
                &[DateTimeLeniency::SpaceSeparator],
            ),
            (
                "2016-12-31T23:59:60Z",
                "2016-12-31T23:59:59.999999999Z",
                &[],
            ),
        ];
        for (input, want, lenient) in good {
            let (dt, got) = ReportDateTime::parse_lenient(input).unwrap();
            assert_eq!(dt.to_string(), *want, "{input}");
            assert_eq!(&got, lenient, "{input}");
            assert_eq!(want.parse::<ReportDateTime>(), Ok(dt), "{want}");
        }
    }

    #[test]
    fn rfc3339_5_6_bad_forms_are_errors_not_defaults() {
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("2016-04-01", "date only"),
            ("2016-13-01T00:00:00Z", "month 13"),
            ("2016-02-30T00:00:00Z", "30 February"),
            ("2016-04-01T24:00:00Z", "hour 24"),
            ("2016-04-01T00:00:00.Z", "empty fraction"),
            ("2016-04-01T00:00:00+0200", "offset without colon"),
            ("2016-04-01T00:00:00Z junk", "trailing text"),
            ("1459468800", "a Unix timestamp"),
            ("01/04/2016 00:00:00", "not ISO order"),
        ];
        for (input, why) in bad {
            assert!(
                ReportDateTime::parse_lenient(input).is_err(),
                "{input:?}: {why}"
            );
        }
        assert!("2024-03-26T00:00:00".parse::<ReportDateTime>().is_err());
    }
}
