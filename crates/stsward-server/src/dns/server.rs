//! The zone on the wire: hickory-server's UDP transport and request handling, with
//! stsward's own request handler (RFC 1035 §4.1 messages, RFC 6891 EDNS(0)) and its own TCP
//! accept loop (the private `tcp` module, RFC 7766).
//!
//! hickory-server reads UDP datagrams, answers FORMERR to what it cannot parse, and
//! truncates (TC bit) a UDP answer larger than the payload size in our EDNS record, or than
//! 512 octets without EDNS (RFC 1035 §4.2.1). The handler here does the rest:
//! - one question per message, class IN, opcode QUERY; anything else is FORMERR, REFUSED or
//!   NOTIMP;
//! - EDNS version 0 only (RFC 6891 §6.1.3: BADVERS otherwise); our UDP payload size is the
//!   client's, capped at [`DnsLimits::max_udp_payload`] so that answers are not fragmented;
//! - at most [`DnsLimits::max_in_flight`] questions are answered at once; beyond that a
//!   question is dropped, and the client retries, as it would after a lost packet.
//!
//! A TCP connection is closed when no complete message arrives within
//! [`DnsLimits::tcp_idle_timeout`], so a client that connects and sends nothing, or sends a
//! message one byte at a time, cannot hold it; at most [`DnsLimits::max_tcp_connections`]
//! are open at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use time::OffsetDateTime;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::DnsError;
use super::tcp;
use super::zone::{Answer, Zone};

/// RFC 1035 §4.2.1: without EDNS, UDP messages are at most 512 octets.
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// The largest UDP answer we send unless configured otherwise: 1232 octets fit in an IPv6
/// packet over a 1280-octet MTU without fragmentation (the DNS Flag Day 2020 figure).
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;

/// The EDNS version we speak (RFC 6891 §6.1.3).
const EDNS_VERSION: u8 = 0;

/// How the server protects itself. A zero count is taken as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsLimits {
    /// A TCP connection that brings no complete message for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Questions answered at the same time, over all sockets.
    pub max_in_flight: usize,
    /// The largest UDP answer, whatever the client offers (at least 512).
    pub max_udp_payload: u16,
    /// TCP connections open at the same time, over all listeners.
    pub max_tcp_connections: usize,
}

impl Default for DnsLimits {
    fn default() -> Self {
        DnsLimits {
            tcp_idle_timeout: Duration::from_secs(5),
            max_in_flight: 1024,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
            max_tcp_connections: 256,
        }
    }
}

/// A running authoritative server for one [`Zone`].
pub struct DnsServer {
    udp: Option<Server<Responder>>,
    tcp: JoinSet<()>,
    stop: watch::Sender<bool>,
    addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Serves `zone` on the given, already bound, sockets (IPv4 and IPv6 alike). Must be
    /// called inside a tokio runtime.
    pub fn start(
        zone: Arc<Zone>,
        udp: Vec<UdpSocket>,
        tcp: Vec<TcpListener>,
        limits: DnsLimits,
    ) -> Result<DnsServer, DnsError> {
        if udp.is_empty() && tcp.is_empty() {
            return Err(DnsError::NoSockets);
        }
        let mut addrs = Vec::new();
        for socket in &udp {
            addrs.push(
                socket
                    .local_addr()
                    .map_err(|source| DnsError::Socket { source })?,
            );
        }
        for listener in &tcp {
            addrs.push(
                listener
                    .local_addr()
                    .map_err(|source| DnsError::Socket { source })?,
            );
        }
        let responder = Responder(Arc::new(Inner {
            zone,
            permits: Semaphore::new(limits.max_in_flight.max(1)),
            max_udp_payload: limits.max_udp_payload.max(MIN_UDP_PAYLOAD),
        }));
        let udp = (!udp.is_empty()).then(|| {
            let mut server = Server::new(responder.clone());
            for socket in udp {
                server.register_socket(socket);
            }
            server
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(limits.max_tcp_connections.max(1)));
        for listener in tcp {
            tasks.spawn(tcp::serve(
                listener,
                responder.clone(),
                limits.tcp_idle_timeout,
                slots.clone(),
                stopped.clone(),
            ));
        }
        Ok(DnsServer {
            udp,
            tcp: tasks,
            stop,
            addrs,
        })
    }

    /// The local addresses of the sockets, UDP first, in the order given.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Serves until `shutdown` completes (then stops gracefully) or a UDP socket fails.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DnsError> {
        let failed = match self.udp.as_mut() {
            Some(server) => tokio::select! {
                () = shutdown => None,
                result = server.block_until_done() => result.err(),
            },
            None => {
                shutdown.await;
                None
            }
        };
        let stopped = self.shutdown().await;
        match failed {
            Some(source) => Err(DnsError::Serve { source }),
            None => stopped,
        }
    }

    /// Stops accepting questions and waits until every socket is closed.
    pub async fn shutdown(mut self) -> Result<(), DnsError> {
        // No receiver left only means the TCP tasks already ended.
        let _ = self.stop.send(true);
        while self.tcp.join_next().await.is_some() {}
        match self.udp.as_mut() {
            Some(server) => server
                .shutdown_gracefully()
                .await
                .map_err(|source| DnsError::Serve { source }),
            None => Ok(()),
        }
    }
}

/// Answers every question from the zone; shared by the UDP server and the TCP loops.
#[derive(Clone)]
pub(crate) struct Responder(Arc<Inner>);

struct Inner {
    zone: Arc<Zone>,
    permits: Semaphore,
    max_udp_payload: u16,
}

fn unanswered(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Responder {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let this = &self.0;
        let Ok(_permit) = this.permits.try_acquire() else {
            tracing::debug!(src = %request.src(), "DNS question dropped: too many in flight");
            return unanswered(request, ResponseCode::ServFail);
        };
        let response_edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_version(EDNS_VERSION);
            edns.set_max_payload(
                asked
                    .max_payload()
                    .clamp(MIN_UDP_PAYLOAD, this.max_udp_payload),
            );
            edns.set_dnssec_ok(asked.flags().dnssec_ok);
            edns
        });
        let dnssec_ok = response_edns
            .as_ref()
            .is_some_and(|edns| edns.flags().dnssec_ok);
        let queries = request.queries.queries();
        let answer = if request
            .edns
            .as_ref()
            .is_some_and(|edns| edns.version() > EDNS_VERSION)
        {
            Answer::error(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Answer::error(ResponseCode::NotImp)
        } else if queries.len() != 1 {
            Answer::error(ResponseCode::FormErr)
        } else if queries[0].query_class() != DNSClass::IN {
            Answer::error(ResponseCode::Refused)
        } else {
            let query = &queries[0];
            this.zone
                .answer(
                    query.name(),
                    query.query_type(),
                    dnssec_ok,
                    OffsetDateTime::now_utc(),
                )
                .unwrap_or_else(|error| {
                    tracing::error!(%error, name = %query.name(), "DNS answer failed");
                    Answer::error(ResponseCode::ServFail)
                })
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.rcode;
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let response = builder.build(
            metadata,
            answer.answers.iter().flat_map(|set| set.records(dnssec_ok)),
            answer
                .authority
                .iter()
                .flat_map(|set| set.records(dnssec_ok)),
            std::iter::empty(),
            answer
                .additionals
                .iter()
                .flat_map(|set| set.records(dnssec_ok)),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "DNS answer not sent");
                unanswered(request, ResponseCode::ServFail)
            }
        }
    }
}
