//! The one error type of this crate: why no report could be taken out of a message or file.

/// Why a report could not be extracted. Every message names the part and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The input is not an RFC 5322 message (no header section could be read).
    #[error("the input is not an e-mail message: no header fields could be read")]
    NotAMessage,
    /// The message has no TLS-RPT part (for example a cron mail sent to the report address).
    #[error(
        "the message has no TLS-RPT report part (content types seen: {})",
        if content_types_seen.is_empty() { "none".to_owned() } else { content_types_seen.join(", ") }
    )]
    NoReport {
        /// The media types of every part, in order, without duplicates.
        content_types_seen: Vec<String>,
    },
    /// A size or count limit was reached; `what` says which input hit it.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// The limit that was reached (bytes, or a count where `what` says so).
        limit: u64,
        /// What hit the limit, in words (e.g. "the decompressed gzip data of attachment x").
        what: String,
    },
    /// Gzip data is corrupt or truncated.
    #[error("{part}: the gzip data is damaged: {source}")]
    Gzip {
        /// Which part or file.
        part: String,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// A zip archive is corrupt, uses an unsupported feature, or holds no report.
    #[error("{part}: the zip archive cannot be used: {reason}")]
    Zip {
        /// Which part or file.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A part's Content-Transfer-Encoding could not be decoded.
    #[error("{part}: its {encoding} content transfer encoding is damaged")]
    TransferEncoding {
        /// Which part.
        part: String,
        /// The declared encoding.
        encoding: String,
    },
    /// The report (after decompression) is empty.
    #[error("{part}: the report is empty")]
    Empty {
        /// Which part or file.
        part: String,
    },
    /// The report (after decompression) does not start like a JSON object.
    #[error(
        "{part}: the report is not JSON (it does not start with '{{'; it starts with {start:?})"
    )]
    NotJson {
        /// Which part or file.
        part: String,
        /// The first few bytes, lossily decoded, to help recognise what it is instead.
        start: String,
    },
}
