//! SMTP replies: a three-digit code (RFC 5321 §4.2) and an enhanced status code (RFC 3463,
//! announced by ENHANCEDSTATUSCODES, RFC 2034), one or more lines.
//!
//! ```text
//! reply     = *( code "-" esc SP text CRLF ) code SP esc SP text CRLF
//! code      = 3DIGIT                         ; 2xx done, 3xx go on, 4xx retry, 5xx never
//! esc       = class "." subject "." detail   ; e.g. 5.1.1
//! ```
//!
//! RFC 5321, RFC 3463 and RFC 2034 are not in the project's reference set: the grammar above
//! is a paraphrase. Every reply text is written here, so nothing a peer sent and nothing
//! internal (a storage error) is ever echoed.

use std::fmt;

/// One reply, possibly of several lines (EHLO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code (`[class, subject, detail]`).
    pub esc: [u8; 3],
    /// The lines of text, at least one; CR and LF never occur in them.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, esc: [u8; 3], text: impl Into<String>) -> Reply {
        Reply {
            code,
            esc,
            lines: vec![text.into()],
        }
    }

    /// Appends the wire form (CRLF lines) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [class, subject, detail] = self.esc;
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // EHLO lines are read as a keyword and its parameters: no enhanced code there.
            if self.code == 250 && self.lines.len() > 1 {
                write!(f, "{}{sep}{line}\r\n", self.code)?;
            } else {
                write!(f, "{}{sep}{class}.{subject}.{detail} {line}\r\n", self.code)?;
            }
        }
        Ok(())
    }
}

/// `220` greeting.
pub(crate) fn greeting(host: &str) -> Reply {
    Reply::new(
        220,
        [2, 0, 0],
        format!("{host} ESMTP stsward report intake"),
    )
}

/// `221` after QUIT.
pub(crate) fn bye(host: &str) -> Reply {
    Reply::new(221, [2, 0, 0], format!("{host} closing"))
}

/// `250` for NOOP, RSET, HELO.
pub(crate) fn ok() -> Reply {
    Reply::new(250, [2, 0, 0], "OK")
}

/// `421` sent before closing: too many connections, shutting down, timed out.
pub(crate) fn closing(host: &str, why: &str) -> Reply {
    Reply::new(421, [4, 3, 2], format!("{host} {why}, closing"))
}

/// `421 4.4.2` after a deadline passed.
pub(crate) fn timed_out(host: &str, what: &str) -> Reply {
    Reply::new(421, [4, 4, 2], format!("{host} {what} timed out, closing"))
}

/// `503 5.5.1`: a command out of sequence.
pub(crate) fn bad_sequence(what: &str) -> Reply {
    Reply::new(503, [5, 5, 1], what.to_owned())
}

/// `502 5.5.1`: a command this receive-only server does not implement.
pub(crate) fn not_implemented(command: &str) -> Reply {
    Reply::new(502, [5, 5, 1], format!("{command} not implemented"))
}

/// `500 5.5.2`: a command line over the limit.
pub(crate) fn line_too_long(max: usize) -> Reply {
    Reply::new(
        500,
        [5, 5, 2],
        format!("command line longer than {max} octets"),
    )
}

/// `552 5.3.4`: a message over the size limit (announced as `SIZE`, RFC 1870).
pub(crate) fn too_big(max: usize) -> Reply {
    Reply::new(
        552,
        [5, 3, 4],
        format!("message larger than the limit of {max} octets"),
    )
}

/// `452 4.3.1`: the messages being received together hold all the memory allowed for them.
pub(crate) fn no_room() -> Reply {
    Reply::new(
        452,
        [4, 3, 1],
        "insufficient system storage, try again later",
    )
}

/// The reply to the end of DATA once the sink answered.
pub(crate) fn submitted(outcome: &Result<crate::intake::Outcome, SubmitFailure>) -> Reply {
    use crate::intake::Outcome;
    match outcome {
        Ok(Outcome::Stored { stored, duplicates }) => Reply::new(
            250,
            [2, 0, 0],
            format!("report accepted ({stored} new, {duplicates} already known)"),
        ),
        Ok(Outcome::Quarantined { .. }) => {
            Reply::new(250, [2, 0, 0], "message accepted and held for review")
        }
        // The sink's error stays in the log: it may name internals.
        Err(_) => Reply::new(
            451,
            [4, 3, 0],
            "report storage unavailable, try again later",
        ),
    }
}

/// Why a submission was not committed (all of them mean: retry later).
#[derive(Debug)]
pub(crate) enum SubmitFailure {
    /// The sink returned an error.
    Sink(crate::intake::SinkError),
    /// The sink did not answer within the submit deadline.
    Timeout,
    /// The sink's task panicked or was cancelled.
    Crashed,
}

impl fmt::Display for SubmitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitFailure::Sink(e) => write!(f, "{e}"),
            SubmitFailure::Timeout => f.write_str("the report sink did not answer in time"),
            SubmitFailure::Crashed => f.write_str("the report sink's task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_replies_carry_the_enhanced_code() {
        assert_eq!(
            Reply::new(550, [5, 1, 1], "no such report address").to_string(),
            "550 5.1.1 no such report address\r\n"
        );
    }

    #[test]
    fn multi_line_replies_continue_with_a_dash() {
        let ehlo = Reply {
            code: 250,
            esc: [2, 0, 0],
            lines: vec!["mx.test".into(), "PIPELINING".into(), "SIZE 10".into()],
        };
        assert_eq!(
            ehlo.to_string(),
            "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }
}
