//! One SMTP session as a pure state machine: bytes in, replies and messages out, no I/O and
//! no clock (the tokio driver in `conn.rs` owns both).
//!
//! ```text
//! 220 greeting
//! EHLO/HELO ─► MAIL FROM:<r> [SIZE=n] ─► RCPT TO:<report address> (1..max) ─► DATA
//!   ─► 354 ─► message, dot-stuffed, ending CRLF "." CRLF ─► [sink] ─► 250 | 451
//! RSET, NOOP anywhere; STARTTLS before MAIL (RFC 3207); QUIT ─► 221, close
//! ```
//!
//! Commands are parsed by `smtp-proto`'s `Request::parse`, the message by its
//! `DataReceiver` (which removes the dot-stuffing, RFC 5321 §4.5.2, and the final
//! `CRLF . CRLF`). RFC 5321 is not in the project's reference set; its rules used here are
//! paraphrased:
//! - §4.5.3.1.4: a command line is at most 512 octets, CRLF included, and SMTP extensions
//!   may lengthen it; this session allows [`MAX_COMMAND_LINE`] and answers a longer one with
//!   500 once, discarding it up to its LF without keeping it;
//! - §4.5.3.1.8: a server must accept at least 100 recipients per message;
//! - §3.3: MAIL starts a transaction, RCPT needs one, DATA needs an accepted recipient.
//!
//! Memory is bounded whatever the peer sends: unprocessed input is at most one command line
//! plus one read (the driver feeds more only after [`Step::NeedInput`]); a message grows to at
//! most the size limit plus one read before the rest is counted and discarded.

use std::sync::Arc;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ParseError, Request};

use super::recipients::ReportRecipients;
use super::reply::{self, Reply};

/// The longest command line accepted, CRLF included: RFC 5321's 512 octets plus room for
/// the parameters of the extensions a sender may use (SIZE, BODY, ENVID, ORCPT, ...).
pub const MAX_COMMAND_LINE: usize = 2048;

/// Bad commands tolerated in one session before it is closed with 421.
const MAX_ERRORS: usize = 20;

/// What a session needs to know, shared by every session of one listener.
#[derive(Debug)]
pub(crate) struct SessionConfig {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// The accepted recipients.
    pub recipients: ReportRecipients,
    /// The largest message accepted, in octets (announced as `SIZE`).
    pub max_message_bytes: usize,
    /// Recipients accepted per message; more get 452.
    pub max_recipients: usize,
    /// Whether STARTTLS is offered (a TLS configuration exists).
    pub starttls: bool,
}

/// A complete message and its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received {
    /// The reverse path of MAIL FROM (empty for the null path `<>`).
    pub from: String,
    /// The accepted recipients.
    pub rcpts: Vec<String>,
    /// The message, dot-unstuffed, without the final `.` line.
    pub body: Vec<u8>,
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this reply and poll again.
    Reply(Reply),
    /// Hand this message to the sink, send the reply `reply::submitted` gives, poll again.
    Message(Received),
    /// Send this reply, then start the TLS handshake and call [`Session::tls_started`].
    StartTls(Reply),
    /// Send this reply, then close the connection.
    Close(Reply),
    /// Every complete command was handled: flush the replies and read more.
    NeedInput,
}

enum State {
    Command,
    /// Inside a command line longer than [`MAX_COMMAND_LINE`], discarding up to its LF.
    SkipLine,
    Data {
        receiver: DataReceiver,
        body: Vec<u8>,
    },
    /// Inside a message that will not be kept (over the size limit, or no memory for it),
    /// discarding up to its end, where this reply is given.
    Discard(DummyDataReceiver, Reply),
    Closed,
}

/// One session.
pub(crate) struct Session {
    cfg: Arc<SessionConfig>,
    tls: bool,
    greeted: bool,
    from: Option<String>,
    rcpts: Vec<String>,
    state: State,
    input: Vec<u8>,
    pos: usize,
    errors: usize,
}

impl Session {
    /// A new session; `tls` when the connection is already encrypted.
    pub fn new(cfg: Arc<SessionConfig>) -> Session {
        Session {
            cfg,
            tls: false,
            greeted: false,
            from: None,
            rcpts: Vec::new(),
            state: State::Command,
            input: Vec::with_capacity(1024),
            pos: 0,
            errors: 0,
        }
    }

    /// The greeting to send first.
    pub fn greeting(&self) -> Reply {
        reply::greeting(&self.cfg.hostname)
    }

    /// Whether the session is inside a message (DATA), where the data deadline applies.
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data { .. } | State::Discard(..))
    }

    /// Whether a message is being received and kept (DATA, not yet discarded).
    pub fn receiving(&self) -> bool {
        matches!(self.state, State::Data { .. })
    }

    /// The octets of the message received so far (0 outside DATA or once it is discarded).
    pub fn body_len(&self) -> usize {
        match &self.state {
            State::Data { body, .. } => body.len(),
            _ => 0,
        }
    }

    /// Gives up the message being received: its octets are freed, the rest is read to the
    /// end of DATA and discarded, and `reply` answers the final dot.
    pub fn drop_message(&mut self, reply: Reply) {
        if let State::Data { receiver, .. } = &self.state {
            self.state = State::Discard(DummyDataReceiver::new_data(receiver), reply);
        }
    }

    /// Whether TLS is active.
    #[cfg(test)]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Appends received bytes; call only after [`Step::NeedInput`].
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The TLS handshake after STARTTLS succeeded: RFC 3207 §4.2 (paraphrase) — the server
    /// forgets everything it knew from the client, which must greet again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.greeted = false;
        self.reset();
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Step {
        loop {
            let rest = &self.input[self.pos..];
            match &mut self.state {
                State::Closed => return Step::NeedInput,
                State::Command => {
                    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                        if rest.len() > MAX_COMMAND_LINE {
                            self.pos = self.input.len();
                            self.state = State::SkipLine;
                            continue;
                        }
                        return Step::NeedInput;
                    };
                    let end = self.pos + lf + 1;
                    let line = self.input[self.pos..end].to_vec();
                    self.pos = end;
                    if line.len() > MAX_COMMAND_LINE {
                        return self.error(reply::line_too_long(MAX_COMMAND_LINE));
                    }
                    return self.command(&line);
                }
                State::SkipLine => match rest.iter().position(|&b| b == b'\n') {
                    None => {
                        self.pos = self.input.len();
                        return Step::NeedInput;
                    }
                    Some(lf) => {
                        self.pos += lf + 1;
                        self.state = State::Command;
                        return self.error(reply::line_too_long(MAX_COMMAND_LINE));
                    }
                },
                State::Data { receiver, body } => {
                    let mut iter = rest.iter();
                    let done = receiver.ingest(&mut iter, body);
                    self.pos = self.input.len() - iter.len();
                    if body.len() > self.cfg.max_message_bytes {
                        // The rest is counted only; the end of data is still found.
                        let discard = DummyDataReceiver::new_data(receiver);
                        if done {
                            self.state = State::Command;
                            self.reset();
                            return Step::Reply(reply::too_big(self.cfg.max_message_bytes));
                        }
                        let too_big = reply::too_big(self.cfg.max_message_bytes);
                        self.state = State::Discard(discard, too_big);
                        continue;
                    }
                    if !done {
                        return Step::NeedInput;
                    }
                    let body = std::mem::take(body);
                    self.state = State::Command;
                    let received = Received {
                        from: self.from.take().unwrap_or_default(),
                        rcpts: std::mem::take(&mut self.rcpts),
                        body,
                    };
                    return Step::Message(received);
                }
                State::Discard(receiver, answer) => {
                    let mut iter = rest.iter();
                    let done = receiver.ingest(&mut iter);
                    self.pos = self.input.len() - iter.len();
                    if !done {
                        return Step::NeedInput;
                    }
                    let answer = answer.clone();
                    self.state = State::Command;
                    self.reset();
                    return Step::Reply(answer);
                }
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    fn error(&mut self, r: Reply) -> Step {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            self.state = State::Closed;
            return Step::Close(reply::closing(&self.cfg.hostname, "too many errors"));
        }
        Step::Reply(r)
    }

    fn command(&mut self, line: &[u8]) -> Step {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => return self.error(parse_error(e)),
        };
        let cfg = self.cfg.clone();
        match request {
            Request::Ehlo { .. } => {
                self.greeted = true;
                self.reset();
                let mut lines = vec![
                    cfg.hostname.clone(),
                    format!("SIZE {}", cfg.max_message_bytes),
                    "PIPELINING".into(),
                    "8BITMIME".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if cfg.starttls && !self.tls {
                    lines.push("STARTTLS".into());
                }
                Step::Reply(Reply {
                    code: 250,
                    esc: [2, 0, 0],
                    lines,
                })
            }
            Request::Helo { .. } => {
                self.greeted = true;
                self.reset();
                Step::Reply(Reply::new(250, [2, 0, 0], cfg.hostname.clone()))
            }
            Request::Mail { from } => {
                if !self.greeted {
                    return self.error(reply::bad_sequence("send EHLO or HELO first"));
                }
                if self.from.is_some() {
                    return self.error(reply::bad_sequence("a transaction is already open"));
                }
                if from.size > cfg.max_message_bytes {
                    return Step::Reply(reply::too_big(cfg.max_message_bytes));
                }
                self.from = Some(from.address.into_owned());
                Step::Reply(Reply::new(250, [2, 1, 0], "sender OK"))
            }
            Request::Rcpt { to } => {
                if self.from.is_none() {
                    return self.error(reply::bad_sequence("send MAIL first"));
                }
                if self.rcpts.len() >= cfg.max_recipients {
                    return Step::Reply(Reply::new(452, [4, 5, 3], "too many recipients"));
                }
                if !cfg.recipients.accepts(&to.address) {
                    return Step::Reply(Reply::new(550, [5, 1, 1], "no such report address here"));
                }
                self.rcpts.push(to.address.into_owned());
                Step::Reply(Reply::new(250, [2, 1, 5], "recipient OK"))
            }
            Request::Data => {
                if self.from.is_none() {
                    return self.error(reply::bad_sequence("send MAIL first"));
                }
                if self.rcpts.is_empty() {
                    // RFC 2920 (paraphrase): with pipelining, DATA after every RCPT failed
                    // gets 503 or 554, so that the message sent after it is not taken.
                    return self.error(Reply::new(554, [5, 5, 1], "no valid recipients"));
                }
                let mut receiver = DataReceiver::new();
                // smtp-proto's receiver recognises "." and ".." only after a CRLF it has
                // seen; the CRLF of the DATA line precedes the first line of the message,
                // so it is fed that CRLF first (and the scratch output is thrown away).
                let mut primed = Vec::with_capacity(2);
                receiver.ingest(&mut b"\r\n".iter(), &mut primed);
                self.state = State::Data {
                    receiver,
                    body: Vec::with_capacity(16 * 1024),
                };
                Step::Reply(Reply::new(
                    354,
                    [2, 0, 0],
                    "end data with <CR><LF>.<CR><LF>",
                ))
            }
            Request::Rset => {
                self.reset();
                Step::Reply(reply::ok())
            }
            Request::Noop { .. } => Step::Reply(reply::ok()),
            Request::Quit => {
                self.state = State::Closed;
                Step::Close(reply::bye(&cfg.hostname))
            }
            Request::StartTls => {
                if !cfg.starttls {
                    return self.error(reply::not_implemented("STARTTLS"));
                }
                if self.tls {
                    return self.error(reply::bad_sequence("TLS is already active"));
                }
                if self.from.is_some() {
                    return self.error(reply::bad_sequence("STARTTLS inside a transaction"));
                }
                // Whatever the client pipelined after STARTTLS was sent in clear and must
                // not be taken as said over TLS (the STARTTLS command injection attack).
                self.input.clear();
                self.pos = 0;
                Step::StartTls(Reply::new(220, [2, 0, 0], "ready to start TLS"))
            }
            other => {
                let name = other.name();
                self.error(reply::not_implemented(name))
            }
        }
    }
}

fn parse_error(e: ParseError) -> Reply {
    match e {
        ParseError::UnknownCommand => Reply::new(500, [5, 5, 1], "command not recognised"),
        ParseError::InvalidSenderAddress => Reply::new(501, [5, 1, 7], "bad sender address"),
        ParseError::InvalidRecipientAddress => Reply::new(501, [5, 1, 3], "bad recipient address"),
        ParseError::SyntaxError { syntax } => {
            Reply::new(501, [5, 5, 2], format!("syntax: {syntax}"))
        }
        ParseError::InvalidParameter { param } => {
            Reply::new(501, [5, 5, 4], format!("invalid {param} parameter"))
        }
        ParseError::UnsupportedParameter { .. } => {
            Reply::new(555, [5, 5, 4], "unsupported parameter")
        }
        ParseError::ResponseTooLong => reply::line_too_long(MAX_COMMAND_LINE),
        ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
            Reply::new(500, [5, 5, 2], "command not understood")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max: usize) -> Arc<SessionConfig> {
        Arc::new(SessionConfig {
            hostname: "mx.test".into(),
            recipients: ReportRecipients::new(&["tlsrpt@reports.test".into()], &[])
                .expect("recipients"),
            max_message_bytes: max,
            max_recipients: 2,
            starttls: true,
        })
    }

    /// Feeds `input` in one piece and collects every step up to the next NeedInput.
    fn run(s: &mut Session, input: &[u8]) -> Vec<Step> {
        s.feed(input);
        let mut steps = Vec::new();
        loop {
            match s.poll() {
                Step::NeedInput => return steps,
                step => steps.push(step),
            }
        }
    }

    fn codes(steps: &[Step]) -> Vec<u16> {
        steps
            .iter()
            .map(|s| match s {
                Step::Reply(r) | Step::StartTls(r) | Step::Close(r) => r.code,
                Step::Message(_) => 0,
                Step::NeedInput => 1,
            })
            .collect()
    }

    const ENVELOPE: &[u8] =
        b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<tlsrpt@reports.test>\r\nDATA\r\n";

    #[test]
    fn rfc5321_4_5_2_dot_stuffing_is_removed() {
        // (message as sent after DATA, message as received, why)
        let cases: [(&[u8], &[u8], &str); 5] = [
            (b".\r\n", b"", "an empty message"),
            (b"..\r\n.\r\n", b".\r\n", "a first line of one stuffed dot"),
            (
                b"a\r\n..b\r\n.\r\n",
                b"a\r\n.b\r\n",
                "a stuffed line inside",
            ),
            (
                b"a\r\n...\r\n.\r\n",
                b"a\r\n..\r\n",
                "two dots stay two after unstuffing",
            ),
            (
                b"a\nb\r\n.\r\n",
                b"a\nb\r\n",
                "a bare LF is content, not a line end",
            ),
        ];
        for (sent, expected, why) in cases {
            let mut s = Session::new(config(1000));
            let mut input = ENVELOPE.to_vec();
            input.extend_from_slice(sent);
            let steps = run(&mut s, &input);
            let Some(Step::Message(m)) = steps.last() else {
                panic!("{why}: no message in {steps:?}");
            };
            assert_eq!(m.body, expected, "{why}");
            assert_eq!(m.from, "a@sender.test");
            assert_eq!(m.rcpts, vec!["tlsrpt@reports.test".to_string()]);
        }
    }

    #[test]
    fn a_message_split_at_every_byte_is_the_same_message() {
        let mut s = Session::new(config(1000));
        let mut input = ENVELOPE.to_vec();
        input.extend_from_slice(b"x\r\n..y\r\n\r\n.\r\nQUIT\r\n");
        let mut steps = Vec::new();
        for b in &input {
            steps.extend(run(&mut s, std::slice::from_ref(b)));
        }
        assert_eq!(codes(&steps), vec![250, 250, 250, 354, 0, 221]);
        assert_eq!(
            steps[4],
            Step::Message(Received {
                from: "a@sender.test".into(),
                rcpts: vec!["tlsrpt@reports.test".into()],
                body: b"x\r\n.y\r\n\r\n".to_vec(),
            })
        );
    }

    #[test]
    fn rfc5321_3_3_commands_out_of_sequence_are_refused() {
        // (input, codes, why)
        let cases: [(&[u8], &[u16], &str); 7] = [
            (b"MAIL FROM:<a@b.test>\r\n", &[503], "MAIL before EHLO"),
            (
                b"EHLO c\r\nRCPT TO:<tlsrpt@reports.test>\r\n",
                &[250, 503],
                "RCPT before MAIL",
            ),
            (b"EHLO c\r\nDATA\r\n", &[250, 503], "DATA before MAIL"),
            (
                b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@reports.test>\r\nDATA\r\n",
                &[250, 250, 550, 554],
                "DATA after every RCPT failed",
            ),
            (
                b"EHLO c\r\nMAIL FROM:<>\r\nMAIL FROM:<>\r\n",
                &[250, 250, 503],
                "nested MAIL",
            ),
            (
                b"HELO c\r\nMAIL FROM:<>\r\nRSET\r\nRCPT TO:<tlsrpt@reports.test>\r\n",
                &[250, 250, 250, 503],
                "RSET ends the transaction",
            ),
            (
                b"VRFY root\r\nFOO\r\n",
                &[502, 500],
                "not implemented, unknown",
            ),
        ];
        for (input, expected, why) in cases {
            let mut s = Session::new(config(1000));
            assert_eq!(codes(&run(&mut s, input)), expected, "{why}");
        }
    }

    #[test]
    fn limits_give_their_codes() {
        // (input, codes, why)
        let cases: [(&[u8], &[u16], &str); 3] = [
            (
                b"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=101\r\nMAIL FROM:<a@b.test> SIZE=100\r\n",
                &[250, 552, 250],
                "RFC 1870 SIZE over the limit, then at it",
            ),
            (
                b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<tlsrpt@reports.test>\r\nRCPT TO:<tlsrpt@reports.test>\r\nRCPT TO:<tlsrpt@reports.test>\r\n",
                &[250, 250, 250, 250, 452],
                "more recipients than max_recipients",
            ),
            (
                b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<tlsrpt@reports.test>\r\nDATA\r\n",
                &[250, 250, 250, 354],
                "DATA accepted",
            ),
        ];
        for (input, expected, why) in cases {
            let mut s = Session::new(config(100));
            assert_eq!(codes(&run(&mut s, input)), expected, "{why}");
        }
    }

    #[test]
    fn a_body_over_the_limit_is_discarded_and_the_session_goes_on() {
        let mut s = Session::new(config(100));
        run(&mut s, ENVELOPE);
        let mut steps = Vec::new();
        for _ in 0..100 {
            steps.extend(run(&mut s, &[b'x'; 1000]));
            assert!(s.input.len() <= 1000, "input is not kept");
        }
        steps.extend(run(&mut s, b"\r\n.\r\nNOOP\r\n"));
        assert_eq!(codes(&steps), vec![552, 250]);
        assert!(!s.in_data());
    }

    #[test]
    fn a_dropped_message_is_freed_read_to_its_end_and_answered_as_told() {
        let mut s = Session::new(config(100_000));
        run(&mut s, ENVELOPE);
        assert!(run(&mut s, &[b'x'; 5000]).is_empty());
        assert_eq!(s.body_len(), 5000);
        s.drop_message(Reply::new(452, [4, 3, 1], "no room"));
        assert_eq!(s.body_len(), 0, "freed");
        assert!(s.in_data());
        let steps = run(&mut s, b"more\r\n.\r\nNOOP\r\n");
        assert_eq!(codes(&steps), vec![452, 250]);
    }

    #[test]
    fn an_overlong_command_line_is_answered_once_and_not_kept() {
        let mut s = Session::new(config(100));
        let mut steps = Vec::new();
        for _ in 0..50 {
            steps.extend(run(&mut s, &[b'A'; 1000]));
            assert!(s.input.len() <= MAX_COMMAND_LINE + 1000, "bounded");
        }
        steps.extend(run(&mut s, b"\r\nNOOP\r\n"));
        assert_eq!(codes(&steps), vec![500, 250]);
    }

    #[test]
    fn rfc3207_starttls_discards_pipelined_input_and_forgets_the_greeting() {
        let mut s = Session::new(config(100));
        let steps = run(
            &mut s,
            b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@x.test>\r\n",
        );
        assert_eq!(
            codes(&steps),
            vec![250, 220],
            "the injected MAIL is not answered"
        );
        s.tls_started();
        assert!(s.is_tls());
        let steps = run(&mut s, b"MAIL FROM:<a@b.test>\r\nEHLO c\r\nSTARTTLS\r\n");
        assert_eq!(codes(&steps), vec![503, 250, 503]);
        let Step::Reply(ehlo) = &steps[1] else {
            panic!("EHLO reply")
        };
        assert!(
            !ehlo.lines.iter().any(|l| l == "STARTTLS"),
            "not offered twice"
        );
    }

    #[test]
    fn too_many_errors_close_the_session() {
        let mut s = Session::new(config(100));
        let steps = run(&mut s, &b"BOGUS\r\n".repeat(MAX_ERRORS + 5));
        assert_eq!(steps.len(), MAX_ERRORS + 1);
        assert!(matches!(steps.last(), Some(Step::Close(r)) if r.code == 421));
    }

    #[test]
    fn ehlo_announces_the_extensions() {
        let mut s = Session::new(config(12345));
        let steps = run(&mut s, b"EHLO c.test\r\n");
        let Some(Step::Reply(r)) = steps.first() else {
            panic!("reply")
        };
        assert_eq!(
            r.lines,
            vec![
                "mx.test",
                "SIZE 12345",
                "PIPELINING",
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "STARTTLS"
            ]
        );
    }
}
