//! DNS over TCP (RFC 7766): stsward's own accept loop, because hickory-server's TCP listener
//! accepts every connection, without a limit, and each one costs a file descriptor that the
//! HTTPS policy host in the same process also needs.
//!
//! Each message is framed by a two-octet length (RFC 1035 §4.2.2). A connection is closed
//! when a whole message (length and body) does not arrive within the idle timeout, when an
//! answer cannot be written within it, when the message is not a DNS query, and at shutdown.
//! Beyond [`super::DnsLimits::max_tcp_connections`] a new connection is closed at once: the
//! client retries later, or elsewhere. The questions themselves go through the same
//! hickory-server request handler as UDP questions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::MessageType;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::server::Responder;

/// RFC 1035 §4.1.1: a message is at least its 12-octet header.
const HEADER_LEN: usize = 12;

/// Accepts connections while a slot is free (the slots are shared by every listener) until
/// `stop` turns true; open connections end at the same moment.
pub(crate) async fn serve(
    listener: TcpListener,
    responder: Responder,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, or a connection reset before accept: neither ends the
                // listener. A short pause keeps a persistent error from spinning.
                tracing::debug!(%error, "DNS TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "DNS TCP connection refused: too many open");
            drop(stream);
            continue;
        };
        let responder = responder.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            connection(stream, peer, responder, idle_timeout, stop).await;
            drop(slot);
        });
    }
    connections.shutdown().await;
}

/// Answers the queries of one connection, one at a time (no pipelined answers out of order).
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    responder: Responder,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            read = tokio::time::timeout(idle_timeout, read_message(&mut stream)) => read,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let body = match message {
            Ok(Ok(Some(body))) => body,
            Ok(Ok(None)) => return,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "DNS TCP read failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "DNS TCP connection idle: closed");
                return;
            }
        };
        let request = match Request::from_bytes(body, peer, Protocol::Tcp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => request,
            Ok(_) => {
                tracing::debug!(%peer, "DNS TCP: a response where a query belongs; closed");
                return;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "DNS TCP: malformed message; closed");
                return;
            }
        };
        let slot = AnswerSlot::default();
        responder
            .handle_request::<_, TokioTime>(&request, slot.clone())
            .await;
        let Some(answer) = slot.take() else {
            // The handler dropped the question (too many in flight): the client retries.
            continue;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            tracing::error!(%peer, len = answer.len(), "DNS TCP answer larger than 65535 octets");
            return;
        };
        let write = async {
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&answer).await?;
            stream.flush().await
        };
        match tokio::time::timeout(idle_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "DNS TCP write failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "DNS TCP client does not read: closed");
                return;
            }
        }
    }
}

/// One length-prefixed message, or `None` when the client closed the connection cleanly
/// between messages.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len < HEADER_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {len}-octet message is shorter than a DNS header"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Where the handler puts the encoded answer for the connection loop to write.
#[derive(Clone, Default)]
struct AnswerSlot(Arc<Mutex<Option<Vec<u8>>>>);

impl AnswerSlot {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for AnswerSlot {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        // RFC 1035 §4.2.2: over TCP the only limit is the two-octet length prefix.
        encoder.set_max_size(u16::MAX);
        let info = response.destructive_emit(&mut encoder)?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(bytes);
        Ok(info)
    }
}
