//! socketmap-load — the load client of `bench/resolve`.
//!
//! Speaks Postfix's socketmap protocol (socketmap_table(5)): each request is the netstring
//! `<len>:<name> <key>,` and each reply the netstring `<len>:<STATUS> <data>,` with STATUS
//! `OK`, `NOTFOUND`, `TEMP`, `TIMEOUT` or `PERM`. Like Postfix's smtp processes, every
//! connection sends one request and waits for its reply before the next.
//!
//! ```text
//! socketmap-load query   --addr HOST:PORT --domains FILE [--name postfix]
//! socketmap-load compare --a LABEL=HOST:PORT --b LABEL=HOST:PORT --domains FILE
//! socketmap-load bench   --addr HOST:PORT --domains FILE [--connections 16] [--count 100000]
//! socketmap-load constant --listen HOST:PORT
//! ```
//!
//! `query` prints `domain<TAB>reply` per line. `compare` prints a table of both daemons'
//! replies per domain; `*` marks a difference (the order of the patterns in `match=` is not
//! one: Postfix tries them all). `bench` keeps `--connections` connections open, spreads
//! `--count` lookups over them (cycling through the domains, each connection starting at a
//! different offset), and prints lookups/s, latency percentiles and the replies by status,
//! then one `RESULT` line for scripts. `constant` is a server that does no lookup at all: a
//! thread per connection answers every request with the same `OK secure ...` reply. `bench`
//! against it measures what the client and the kernel's loopback TCP cost on this machine,
//! the ceiling of any daemon measured with this client.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Longest reply accepted (Postfix's own limit for socketmap replies is 100,000 bytes).
const MAX_REPLY: usize = 100_000;
/// A lookup that takes longer than this is an error (the daemon is stuck).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("socketmap-load: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage());
    };
    if command == "constant" {
        return match rest {
            [flag, addr] if flag == "--listen" => constant(addr),
            _ => Err(usage()),
        };
    }
    let opts = Options::parse(rest)?;
    match command.as_str() {
        "query" => query(&opts),
        "compare" => compare(&opts),
        "bench" => bench(&opts),
        "-h" | "--help" => {
            println!("{}", usage());
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command {other:?}\n{}", usage())),
    }
}

fn usage() -> String {
    "usage: socketmap-load query|compare|bench [--addr HOST:PORT] [--a LABEL=ADDR --b LABEL=ADDR] \
     --domains FILE [--name postfix] [--connections N] [--count N]\n       \
     socketmap-load constant --listen HOST:PORT"
        .to_owned()
}

#[derive(Debug)]
struct Options {
    addr: Option<String>,
    a: Option<(String, String)>,
    b: Option<(String, String)>,
    domains: Vec<String>,
    name: String,
    connections: usize,
    count: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options {
            addr: None,
            a: None,
            b: None,
            domains: Vec::new(),
            name: "postfix".to_owned(),
            connections: 16,
            count: 100_000,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--addr" => opts.addr = Some(value()?),
                "--a" => opts.a = Some(labelled(&value()?)?),
                "--b" => opts.b = Some(labelled(&value()?)?),
                "--name" => opts.name = value()?,
                "--connections" => opts.connections = number(&value()?)?.max(1),
                "--count" => opts.count = number(&value()?)?,
                "--domains" => {
                    let path = value()?;
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("reading {path}: {e}"))?;
                    opts.domains = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned)
                        .collect();
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if opts.domains.is_empty() {
            return Err("--domains FILE with at least one domain is required".to_owned());
        }
        Ok(opts)
    }

    fn addr(&self) -> Result<&str, String> {
        self.addr
            .as_deref()
            .ok_or_else(|| "--addr is required".to_owned())
    }
}

fn labelled(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(l, a)| (l.to_owned(), a.to_owned()))
        .ok_or(format!("{value:?}: expected LABEL=HOST:PORT"))
}

fn number(value: &str) -> Result<usize, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|e| format!("{value:?}: {e}"))
}

/// One open socketmap connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    name: String,
    request: Vec<u8>,
}

impl Client {
    fn connect(addr: &str, name: &str) -> Result<Client, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            name: name.to_owned(),
            request: Vec::with_capacity(300),
        })
    }

    /// Sends `<name> <key>` and returns the reply's payload.
    fn lookup(&mut self, key: &str) -> Result<String, String> {
        self.request.clear();
        let payload_len = self.name.len() + 1 + key.len();
        self.request
            .extend_from_slice(format!("{payload_len}:{} {key},", self.name).as_bytes());
        self.writer
            .write_all(&self.request)
            .map_err(|e| format!("sending {key}: {e}"))?;
        read_netstring(&mut self.reader).map_err(|e| format!("reply to {key}: {e}"))
    }
}

/// Reads one netstring: decimal length, `:`, that many bytes, `,`.
fn read_netstring(reader: &mut impl Read) -> Result<String, String> {
    let mut len: usize = 0;
    let mut digits = 0;
    loop {
        let mut byte = [0u8; 1];
        reader
            .read_exact(&mut byte)
            .map_err(|e| format!("reading the length: {e}"))?;
        match byte[0] {
            b'0'..=b'9' if digits < 6 => {
                len = len * 10 + usize::from(byte[0] - b'0');
                digits += 1;
            }
            b':' if digits > 0 => break,
            other => return Err(format!("bad netstring length byte {other:#04x}")),
        }
    }
    if len > MAX_REPLY {
        return Err(format!("reply of {len} bytes is too long"));
    }
    let mut body = vec![0u8; len + 1];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading {len} bytes: {e}"))?;
    if body.pop() != Some(b',') {
        return Err("netstring without its final ','".to_owned());
    }
    String::from_utf8(body).map_err(|e| format!("reply is not UTF-8: {e}"))
}

fn query(opts: &Options) -> Result<ExitCode, String> {
    let mut client = Client::connect(opts.addr()?, &opts.name)?;
    for domain in &opts.domains {
        let reply = client.lookup(domain)?;
        println!("{domain}\t{reply}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The reply with the `match=` patterns sorted, so that two daemons listing the same
/// patterns in another order compare equal.
fn normalised(reply: &str) -> String {
    reply
        .split(' ')
        .map(|word| match word.strip_prefix("match=") {
            Some(list) => {
                let mut patterns: Vec<&str> = list.split(':').collect();
                patterns.sort_unstable();
                format!("match={}", patterns.join(":"))
            }
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn compare(opts: &Options) -> Result<ExitCode, String> {
    let (Some((label_a, addr_a)), Some((label_b, addr_b))) = (&opts.a, &opts.b) else {
        return Err("compare needs --a LABEL=ADDR and --b LABEL=ADDR".to_owned());
    };
    let mut a = Client::connect(addr_a, &opts.name)?;
    let mut b = Client::connect(addr_b, &opts.name)?;
    let width = opts
        .domains
        .iter()
        .map(|d| d.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    println!("  {:width$}  {label_a} | {label_b}", "domain");
    let mut differences = 0;
    for domain in &opts.domains {
        let (ra, rb) = (a.lookup(domain)?, b.lookup(domain)?);
        let differ = normalised(&ra) != normalised(&rb);
        differences += usize::from(differ);
        let mark = if differ { '*' } else { ' ' };
        let pad = width.saturating_sub(domain.chars().count());
        println!("{mark} {domain}{:pad$}  {ra} | {rb}", "");
    }
    println!(
        "{differences} of {} domains differ (marked *)",
        opts.domains.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The reply of `constant`, as a netstring.
const CONSTANT_REPLY: &[u8] = b"51:OK secure match=mx.enforce.test servername=hostname,";

/// `constant`: answers every request on every connection with [`CONSTANT_REPLY`].
fn constant(addr: &str) -> Result<ExitCode, String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
    println!("constant replies on {addr}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut writer) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            while read_netstring(&mut reader).is_ok() {
                if writer.write_all(CONSTANT_REPLY).is_err() {
                    return;
                }
            }
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// What one connection's thread measured.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    ok: usize,
    notfound: usize,
    temp: usize,
    other: usize,
}

fn bench(opts: &Options) -> Result<ExitCode, String> {
    let addr = opts.addr()?.to_owned();
    let connections = opts.connections.min(opts.count.max(1));
    // All connections are open before the clock starts.
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Client::connect(&addr, &opts.name)?);
    }
    let domains = std::sync::Arc::new(opts.domains.clone());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(connections + 1));
    let mut threads = Vec::with_capacity(connections);
    for (i, mut client) in clients.into_iter().enumerate() {
        let share = opts.count / connections + usize::from(i < opts.count % connections);
        let domains = domains.clone();
        let barrier = barrier.clone();
        threads.push(std::thread::spawn(move || -> Result<Tally, String> {
            let mut tally = Tally {
                latencies_ns: Vec::with_capacity(share),
                ..Tally::default()
            };
            let offset = i * domains.len() / connections;
            barrier.wait();
            for n in 0..share {
                let domain = &domains[(offset + n) % domains.len()];
                let start = Instant::now();
                let reply = client.lookup(domain)?;
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                tally.latencies_ns.push(ns);
                match reply.split(' ').next().unwrap_or("") {
                    "OK" => tally.ok += 1,
                    "NOTFOUND" => tally.notfound += 1,
                    "TEMP" => tally.temp += 1,
                    _ => tally.other += 1,
                }
            }
            Ok(tally)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut all = Tally::default();
    for thread in threads {
        let tally = thread
            .join()
            .map_err(|_| "a client thread panicked".to_owned())??;
        all.latencies_ns.extend(tally.latencies_ns);
        all.ok += tally.ok;
        all.notfound += tally.notfound;
        all.temp += tally.temp;
        all.other += tally.other;
    }
    let wall = start.elapsed();
    all.latencies_ns.sort_unstable();
    let n = all.latencies_ns.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        all.latencies_ns[rank.clamp(1, n) - 1] as f64 / 1000.0
    };
    let rate = n as f64 / wall.as_secs_f64().max(1e-9);
    println!(
        "{n} lookups over {connections} connections in {:.3} s: {rate:.0} lookups/s",
        wall.as_secs_f64()
    );
    println!(
        "latency: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0)
    );
    println!(
        "replies: OK {}, NOTFOUND {}, TEMP {}, other {}",
        all.ok, all.notfound, all.temp, all.other
    );
    println!(
        "RESULT lookups_per_s={rate:.0} p50_us={:.0} p90_us={:.0} p99_us={:.0} ok={} notfound={} temp={} other={}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        all.ok,
        all.notfound,
        all.temp,
        all.other
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_are_read_and_bad_ones_refused() {
        let cases: &[(&[u8], Result<&str, ()>, &str)] = &[
            (b"3:abc,", Ok("abc"), "plain"),
            (b"0:,", Ok(""), "empty"),
            (b"9:NOTFOUND ,", Ok("NOTFOUND "), "a NOTFOUND reply"),
            (b"3:abcd", Err(()), "no comma"),
            (b":abc,", Err(()), "no length"),
            (b"3x:abc,", Err(()), "junk in the length"),
            (b"5:abc", Err(()), "short"),
            (b"9999999:a,", Err(()), "too many digits"),
        ];
        for (input, expected, why) in cases {
            let got = read_netstring(&mut &input[..]);
            match expected {
                Ok(text) => assert_eq!(got.as_deref(), Ok(*text), "{why}"),
                Err(()) => assert!(got.is_err(), "{why}: {got:?}"),
            }
        }
    }

    #[test]
    fn constant_reply_is_one_netstring() {
        assert_eq!(
            read_netstring(&mut &CONSTANT_REPLY[..]).as_deref(),
            Ok("OK secure match=mx.enforce.test servername=hostname")
        );
    }

    #[test]
    fn match_order_is_not_a_difference() {
        assert_eq!(
            normalised("OK secure match=b.test:.a.test servername=hostname"),
            normalised("OK secure match=.a.test:b.test servername=hostname")
        );
        assert_ne!(
            normalised("OK secure match=b.test servername=hostname"),
            normalised("OK secure match=.b.test servername=hostname")
        );
    }
}
