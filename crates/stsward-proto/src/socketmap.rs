//! Postfix socketmap protocol (`socketmap_table(5)`) — netstring framing, read by pure push
//! parsers.
//!
//! Every request and every reply is one netstring. A netstring (D. J. Bernstein's definition,
//! paraphrased) is the payload's length as ASCII decimal digits, a colon, the payload bytes,
//! and a comma; the length has no leading zeros (`0` alone is the empty payload).
//!
//! ```text
//! netstring = length ":" payload ","        ; length = number of payload bytes
//! length    = "0" / %x31-39 *DIGIT
//! request   = name SP key                   ; socketmap_table(5), "REQUEST FORMAT"
//! reply     = "OK" SP data / "NOTFOUND" SP
//!           / "TEMP" SP reason / "TIMEOUT" SP reason / "PERM" SP reason
//! ```
//!
//! `socketmap_table(5)`, "PROTOCOL LIMITS" (paraphrase): the Postfix client accepts replies
//! of at most 100000 bytes, not counting the netstring encapsulation, gives up on a reply
//! after 100 s, and closes an idle connection after 10 s and an active one after 100 s (so
//! one connection may carry several requests; the man page does not say so in words).
//!
//! The parsers do no I/O: the caller pushes whatever bytes arrived with `push` and asks for
//! complete messages with [`RequestParser::next_request`] / [`ReplyParser::next_reply`].
//! Bytes are parsed as they are pushed, so the parser holds at most the payload of the one
//! netstring in progress (bounded by the limit given to `new`); complete messages wait in a
//! queue, which is bounded by what the caller pushed between two drains. A length prefix
//! above the limit is an error as soon as its digits show it, before any payload arrives.
//!
//! **After an error the stream is unusable.** Netstring framing cannot be recovered once a
//! length or a terminator is wrong, so a parser that failed ignores every further byte and
//! keeps returning the same error; the caller answers (the server sends `PERM`) and closes
//! the connection. Messages that were complete before the bad bytes are still returned
//! first, in order.

use std::collections::VecDeque;

use thiserror::Error;

/// `socketmap_table(5)`, "PROTOCOL LIMITS": the Postfix client requires replies of at most
/// 100000 bytes, not including the netstring encapsulation (`socketmap_max_reply_size`,
/// configurable from Postfix 3.10; 100000 is the default and the fixed limit before).
pub const MAX_REPLY_LEN: usize = 100_000;

/// One lookup request: `name <space> key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The socketmap name (the last field of `socketmap:inet:host:port:name`); never empty,
    /// never contains a space.
    pub name: String,
    /// The lookup key: everything after the first space (it may itself contain spaces, and
    /// may be empty).
    pub key: String,
}

/// A socketmap reply. Texts are sent as given, except that CR, LF and NUL become a space
/// (see [`Reply::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`: the requested data was found.
    Ok(String),
    /// `NOTFOUND `: the requested data was not found.
    NotFound,
    /// `TEMP <reason>`: a temporary failure.
    Temp(String),
    /// `TIMEOUT <reason>`: a timeout.
    Timeout(String),
    /// `PERM <reason>`: a permanent failure.
    Perm(String),
}

/// Why bytes are not a socketmap message, or why a reply cannot be sent. Offsets count
/// bytes from the start of the stream pushed into the parser (the first byte is offset 0).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SocketmapError {
    /// A byte where a netstring length digit (or the `:` after at least one digit) belongs.
    #[error("byte 0x{byte:02x} at offset {offset} where a netstring length digit belongs")]
    BadLengthByte {
        /// Stream offset of the byte.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// A netstring length with a leading zero (`01:` …): the netstring definition forbids it.
    #[error("netstring length at offset {offset} has a leading zero")]
    LeadingZero {
        /// Stream offset of the zero.
        offset: u64,
    },
    /// The announced length exceeds the parser's limit; reported at the digit that showed it.
    #[error("netstring length exceeds the limit of {limit} bytes (digit at offset {offset})")]
    TooLong {
        /// Stream offset of the digit that took the length past the limit.
        offset: u64,
        /// The limit given to the parser.
        limit: usize,
    },
    /// The byte after the payload is not the terminating `,`.
    #[error("byte 0x{byte:02x} at offset {offset} where the netstring's ',' belongs")]
    MissingComma {
        /// Stream offset of the byte.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// The payload is not UTF-8.
    #[error("payload is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Stream offset of the first invalid byte.
        offset: u64,
    },
    /// A request without the space between name and key.
    #[error("request at offset {offset} has no space between map name and key")]
    MissingSpace {
        /// Stream offset of the payload's first byte.
        offset: u64,
    },
    /// A request whose map name is empty (it starts with the space).
    #[error("request at offset {offset} has an empty map name")]
    EmptyName {
        /// Stream offset of the payload's first byte.
        offset: u64,
    },
    /// A reply whose status word is none of `OK`, `NOTFOUND`, `TEMP`, `TIMEOUT`, `PERM`.
    #[error("reply at offset {offset} has unknown status {status:?}")]
    UnknownStatus {
        /// Stream offset of the payload's first byte.
        offset: u64,
        /// The status word (up to the first space).
        status: String,
    },
    /// A reply payload longer than the limit the Postfix client accepts.
    #[error("reply of {len} bytes exceeds the socketmap limit of {limit} bytes")]
    ReplyTooLong {
        /// The payload length.
        len: usize,
        /// The limit ([`MAX_REPLY_LEN`]).
        limit: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Replies: encoding
// ---------------------------------------------------------------------------------------------

impl Reply {
    /// The status word and the text, as they go on the wire (before sanitising).
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Reply::Ok(data) => ("OK", data),
            Reply::NotFound => ("NOTFOUND", ""),
            Reply::Temp(reason) => ("TEMP", reason),
            Reply::Timeout(reason) => ("TIMEOUT", reason),
            Reply::Perm(reason) => ("PERM", reason),
        }
    }

    /// The netstring for this reply, or [`SocketmapError::ReplyTooLong`] when its payload would
    /// exceed [`MAX_REPLY_LEN`]. CR, LF and NUL in the text become a space: Postfix reads the
    /// reply as a C string and uses it as a table value on one line, so those bytes would
    /// truncate or split it.
    pub fn try_encode(&self) -> Result<Vec<u8>, SocketmapError> {
        let (status, text) = self.parts();
        let len = status.len() + 1 + text.len();
        if len > MAX_REPLY_LEN {
            return Err(SocketmapError::ReplyTooLong {
                len,
                limit: MAX_REPLY_LEN,
            });
        }
        let mut payload = String::with_capacity(len);
        payload.push_str(status);
        payload.push(' ');
        payload.extend(text.chars().map(|c| match c {
            '\r' | '\n' | '\0' => ' ',
            c => c,
        }));
        Ok(netstring(payload.as_bytes()))
    }

    /// The netstring for this reply; never longer than the Postfix limit.
    ///
    /// A reply that does not fit ([`Reply::try_encode`] refuses it) is replaced, not cut:
    /// - a `TEMP`/`TIMEOUT`/`PERM` reason is shortened at a character boundary (it is text
    ///   for a log; its tail carries no meaning);
    /// - an `OK` whose data does not fit becomes `TEMP reply too long`: truncated data would
    ///   be a different answer (for a TLS policy, a different list of MX patterns), and a
    ///   temporary failure makes Postfix retry instead of acting on it.
    pub fn encode(&self) -> Vec<u8> {
        if let Ok(bytes) = self.try_encode() {
            return bytes;
        }
        let shortened = match self {
            Reply::Ok(data) => Reply::Temp(format!(
                "reply too long: {} bytes of data, the socketmap limit is {MAX_REPLY_LEN}",
                data.len()
            )),
            Reply::NotFound => Reply::NotFound,
            Reply::Temp(r) => Reply::Temp(truncate(r, MAX_REPLY_LEN - "TEMP ".len()).into()),
            Reply::Timeout(r) => {
                Reply::Timeout(truncate(r, MAX_REPLY_LEN - "TIMEOUT ".len()).into())
            }
            Reply::Perm(r) => Reply::Perm(truncate(r, MAX_REPLY_LEN - "PERM ".len()).into()),
        };
        // Every replacement fits by construction; an empty PERM is the safe last resort.
        shortened
            .try_encode()
            .unwrap_or_else(|_| netstring(b"PERM "))
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// `<len>:<payload>,`
fn netstring(payload: &[u8]) -> Vec<u8> {
    let len = payload.len().to_string();
    let mut out = Vec::with_capacity(len.len() + payload.len() + 2);
    out.extend_from_slice(len.as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

impl Request {
    /// The netstring for this request (what a client such as Postfix sends). The caller
    /// keeps `name` free of spaces; no other check is made.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.name.len() + 1 + self.key.len());
        payload.extend_from_slice(self.name.as_bytes());
        payload.push(b' ');
        payload.extend_from_slice(self.key.as_bytes());
        netstring(&payload)
    }
}

// ---------------------------------------------------------------------------------------------
// Netstring framing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the length: its value so far and how many digits were seen.
    Length { value: usize, digits: usize },
    /// Reading a payload of `len` bytes.
    Payload { len: usize },
    /// The payload is complete; the `,` comes next.
    Comma,
    /// Framing was lost; every further byte is ignored.
    Failed,
}

/// The netstring framing shared by both parsers: turns pushed bytes into complete payloads
/// (with the stream offset of their first byte) and the first framing error.
#[derive(Debug)]
struct Framer {
    limit: usize,
    state: State,
    /// Stream offset of the next byte pushed.
    offset: u64,
    /// Stream offset of the current payload's first byte.
    payload_start: u64,
    payload: Vec<u8>,
}

/// What the framer hands to its parser.
enum Framed {
    Payload { start: u64, bytes: Vec<u8> },
    Error(SocketmapError),
}

impl Framer {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            state: State::Length {
                value: 0,
                digits: 0,
            },
            offset: 0,
            payload_start: 0,
            payload: Vec::new(),
        }
    }

    fn buffered(&self) -> usize {
        self.payload.len()
    }

    fn in_progress(&self) -> bool {
        !matches!(self.state, State::Length { digits: 0, .. } | State::Failed)
    }

    /// Framing is lost (a payload was refused after its netstring was complete).
    fn poison(&mut self) {
        self.state = State::Failed;
        self.payload = Vec::new();
    }

    fn fail(&mut self, error: SocketmapError, out: &mut dyn FnMut(Framed)) {
        self.state = State::Failed;
        self.payload = Vec::new();
        out(Framed::Error(error));
    }

    fn push(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(Framed)) {
        while let Some((&byte, rest)) = bytes.split_first() {
            let at = self.offset;
            match self.state {
                State::Failed => return,
                State::Length { value, digits } => match byte {
                    b'0'..=b'9' => {
                        if digits > 0 && value == 0 {
                            let offset = at - 1;
                            return self.fail(SocketmapError::LeadingZero { offset }, out);
                        }
                        let next = value
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(usize::from(byte - b'0')))
                            .filter(|&v| v <= self.limit);
                        let Some(value) = next else {
                            let limit = self.limit;
                            return self.fail(SocketmapError::TooLong { offset: at, limit }, out);
                        };
                        self.state = State::Length {
                            value,
                            digits: digits + 1,
                        };
                    }
                    b':' if digits > 0 => {
                        self.payload_start = at + 1;
                        self.payload = Vec::with_capacity(value.min(4096));
                        self.state = if value == 0 {
                            State::Comma
                        } else {
                            State::Payload { len: value }
                        };
                    }
                    _ => {
                        return self.fail(SocketmapError::BadLengthByte { offset: at, byte }, out);
                    }
                },
                State::Payload { len } => {
                    // Copy as much of the payload as this push holds in one go.
                    let want = len - self.payload.len();
                    let take = want.min(bytes.len());
                    let (chunk, rest) = bytes.split_at(take);
                    self.payload.extend_from_slice(chunk);
                    self.offset += take as u64;
                    bytes = rest;
                    if self.payload.len() == len {
                        self.state = State::Comma;
                    }
                    continue;
                }
                State::Comma => {
                    if byte != b',' {
                        return self.fail(SocketmapError::MissingComma { offset: at, byte }, out);
                    }
                    self.state = State::Length {
                        value: 0,
                        digits: 0,
                    };
                    out(Framed::Payload {
                        start: self.payload_start,
                        bytes: std::mem::take(&mut self.payload),
                    });
                }
            }
            self.offset += 1;
            bytes = rest;
        }
    }
}

/// The queue of parsed messages behind a framer, ending in at most one error.
#[derive(Debug)]
struct Queue<T> {
    ready: VecDeque<T>,
    error: Option<SocketmapError>,
}

impl<T> Queue<T> {
    fn new() -> Self {
        Self {
            ready: VecDeque::new(),
            error: None,
        }
    }

    fn accept(&mut self, framed: Framed, parse: fn(u64, &[u8]) -> Result<T, SocketmapError>) {
        if self.error.is_some() {
            return;
        }
        match framed {
            Framed::Payload { start, bytes } => match parse(start, &bytes) {
                Ok(message) => self.ready.push_back(message),
                Err(e) => self.error = Some(e),
            },
            Framed::Error(e) => self.error = Some(e),
        }
    }

    fn next(&mut self) -> Result<Option<T>, SocketmapError> {
        if let Some(message) = self.ready.pop_front() {
            return Ok(Some(message));
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }
}

fn utf8(start: u64, bytes: &[u8]) -> Result<&str, SocketmapError> {
    std::str::from_utf8(bytes).map_err(|e| SocketmapError::NotUtf8 {
        offset: start + e.valid_up_to() as u64,
    })
}

// ---------------------------------------------------------------------------------------------
// Requests: the server side
// ---------------------------------------------------------------------------------------------

/// A push parser for socketmap requests (the server side). See the module docs: after an
/// error the stream is unusable and the parser keeps returning that error.
#[derive(Debug)]
pub struct RequestParser {
    framer: Framer,
    queue: Queue<Request>,
}

fn parse_request(start: u64, bytes: &[u8]) -> Result<Request, SocketmapError> {
    let text = utf8(start, bytes)?;
    let Some((name, key)) = text.split_once(' ') else {
        return Err(SocketmapError::MissingSpace { offset: start });
    };
    if name.is_empty() {
        return Err(SocketmapError::EmptyName { offset: start });
    }
    Ok(Request {
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

impl RequestParser {
    /// A parser that refuses requests whose netstring payload (`name <space> key`) is longer
    /// than `max_request_len` bytes.
    pub fn new(max_request_len: usize) -> Self {
        Self {
            framer: Framer::new(max_request_len),
            queue: Queue::new(),
        }
    }

    /// Parses bytes received from the client. Complete requests (and the first error) wait
    /// for [`RequestParser::next_request`]; after an error further bytes are ignored.
    pub fn push(&mut self, bytes: &[u8]) {
        let queue = &mut self.queue;
        self.framer
            .push(bytes, &mut |framed| queue.accept(framed, parse_request));
        if queue.error.is_some() {
            self.framer.poison();
        }
    }

    /// The next complete request, `Ok(None)` when more bytes are needed, or the error that
    /// ended the stream (returned again on every later call).
    pub fn next_request(&mut self) -> Result<Option<Request>, SocketmapError> {
        self.queue.next()
    }

    /// How many payload bytes of the request in progress are held; never more than the
    /// limit given to [`RequestParser::new`].
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// True when part of a request (at least one byte of its netstring) has been pushed and
    /// the rest has not: the server's per-request read deadline runs then.
    pub fn in_progress(&self) -> bool {
        self.framer.in_progress()
    }
}

// ---------------------------------------------------------------------------------------------
// Replies: the client side
// ---------------------------------------------------------------------------------------------

/// A push parser for socketmap replies (the client side: tests and load generators). Same
/// contract as [`RequestParser`].
#[derive(Debug)]
pub struct ReplyParser {
    framer: Framer,
    queue: Queue<Reply>,
}

fn parse_reply(start: u64, bytes: &[u8]) -> Result<Reply, SocketmapError> {
    let text = utf8(start, bytes)?;
    let (status, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.to_owned();
    match status {
        "OK" => Ok(Reply::Ok(rest)),
        // Whatever follows `NOTFOUND ` is ignored, as it carries no meaning.
        "NOTFOUND" => Ok(Reply::NotFound),
        "TEMP" => Ok(Reply::Temp(rest)),
        "TIMEOUT" => Ok(Reply::Timeout(rest)),
        "PERM" => Ok(Reply::Perm(rest)),
        _ => Err(SocketmapError::UnknownStatus {
            offset: start,
            status: status.to_owned(),
        }),
    }
}

impl ReplyParser {
    /// A parser that refuses replies whose payload is longer than `max_reply_len` bytes
    /// (Postfix uses [`MAX_REPLY_LEN`]).
    pub fn new(max_reply_len: usize) -> Self {
        Self {
            framer: Framer::new(max_reply_len),
            queue: Queue::new(),
        }
    }

    /// Parses bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        let queue = &mut self.queue;
        self.framer
            .push(bytes, &mut |framed| queue.accept(framed, parse_reply));
        if queue.error.is_some() {
            self.framer.poison();
        }
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed, or the error that
    /// ended the stream.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, SocketmapError> {
        self.queue.next()
    }

    /// How many payload bytes of the reply in progress are held.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// True when part of a reply has been pushed and the rest has not.
    pub fn in_progress(&self) -> bool {
        self.framer.in_progress()
    }
}

#[cfg(test)]
mod tests;
