//! RFC 5321 §4.1 / RFC 3207 §4 — the client side of one SMTP conversation, over any stream.
//!
//! A thin async wrapper around the push parser [`crate::smtp_reply::ReplyParser`]. It is used
//! by the STARTTLS prober for both its connections (the rustls one and the OpenSSL
//! TLS 1.0/1.1 one), so the conversation before the handshake exists once. It sets no
//! timeouts itself: every call is awaited under the caller's step deadline.

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::smtp_reply::{Reply, ReplyError, ReplyParser};

/// How an SMTP exchange went wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SmtpFailure {
    /// The server answered with a code other than the expected one.
    #[error("server answered {code}: {text}")]
    Rejected {
        /// The reply code.
        code: u16,
        /// The reply text, lines joined with a space.
        text: String,
    },
    /// The bytes are not an SMTP reply.
    #[error("malformed reply: {0}")]
    Malformed(#[from] ReplyError),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// A socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Clone for SmtpFailure {
    fn clone(&self) -> Self {
        match self {
            SmtpFailure::Rejected { code, text } => SmtpFailure::Rejected {
                code: *code,
                text: text.clone(),
            },
            SmtpFailure::Malformed(e) => SmtpFailure::Malformed(e.clone()),
            SmtpFailure::Closed => SmtpFailure::Closed,
            SmtpFailure::Io(e) => SmtpFailure::Io(clone_io(e)),
        }
    }
}

/// `std::io::Error` is not `Clone`; a copy keeps its kind and its text, which is all that
/// callers read (a cached probe result is handed to many domains).
pub(crate) fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// One SMTP conversation, client side.
pub(crate) struct SmtpConn<S> {
    io: S,
    parser: ReplyParser,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpConn<S> {
    pub(crate) fn new(io: S) -> Self {
        SmtpConn {
            io,
            parser: ReplyParser::new(),
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, SmtpFailure> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(reply) = self.parser.next_reply()? {
                return Ok(reply);
            }
            let n = self.io.read(&mut buf).await?;
            let Some(got) = buf.get(..n).filter(|g| !g.is_empty()) else {
                return Err(SmtpFailure::Closed);
            };
            self.parser.push(got);
        }
    }

    /// Sends `cmd` (if any) and expects a reply with code `want`.
    pub(crate) async fn expect(
        &mut self,
        cmd: Option<&str>,
        want: u16,
    ) -> Result<Reply, SmtpFailure> {
        if let Some(cmd) = cmd {
            self.io.write_all(cmd.as_bytes()).await?;
            self.io.flush().await?;
        }
        let reply = self.read_reply().await?;
        if reply.code != want {
            return Err(SmtpFailure::Rejected {
                code: reply.code,
                text: reply.lines.join(" "),
            });
        }
        Ok(reply)
    }

    /// QUIT, the server's 221, then our close and the server's. Waiting for the server to
    /// close too means the connection is really gone when the caller frees its per-address
    /// slot. Unbounded on its own: a server may never answer, so callers always await this
    /// under a timeout.
    pub(crate) async fn quit(&mut self) -> Result<(), SmtpFailure> {
        self.io.write_all(b"QUIT\r\n").await?;
        self.io.flush().await?;
        self.read_reply().await?;
        self.io.shutdown().await?;
        let mut sink = [0u8; 512];
        while self.io.read(&mut sink).await? > 0 {}
        Ok(())
    }

    /// The raw stream for the TLS handshake; whatever the server sent after its 220 is
    /// dropped here, never fed to TLS or read as SMTP: nothing sent in clear may be trusted once
    /// TLS starts (RFC 3207's security considerations, paraphrased; that RFC is not in the
    /// project's reference set, so no section number is given).
    pub(crate) fn into_plain(mut self) -> S {
        self.parser.clear();
        self.io
    }
}
