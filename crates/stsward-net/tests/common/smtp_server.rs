//! An MX host on loopback: banner, EHLO, STARTTLS with a chosen certificate, QUIT.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Clone)]
pub enum Tls {
    /// Offer STARTTLS and complete the handshake with this configuration.
    Cert(Arc<rustls::ServerConfig>),
    /// Do not offer STARTTLS.
    NotOffered,
    /// Offer STARTTLS but refuse the command with this code.
    Refuse(u16),
    /// Offer STARTTLS, say 220, then send garbage instead of a handshake.
    Garbage,
    /// Never send a banner.
    Mute,
    /// Do not offer STARTTLS, and never answer QUIT.
    MuteQuit,
    /// Send the banner one byte a second.
    Trickle,
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(io: S, tls: Tls) -> Option<S> {
    let mut io = BufReader::new(io);
    if matches!(tls, Tls::Mute) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return None;
    }
    let banner: &[u8] = b"220-mx.example.test ESMTP stsward test\r\n220 second banner line\r\n";
    if matches!(tls, Tls::Trickle) {
        for b in banner {
            io.write_all(&[*b]).await.ok()?;
            io.flush().await.ok()?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    } else {
        io.write_all(banner).await.ok()?;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            let starttls = if matches!(tls, Tls::NotOffered | Tls::MuteQuit) {
                ""
            } else {
                "250-STARTTLS\r\n"
            };
            let reply = format!(
                "250-mx.example.test hello\r\n250-PIPELINING\r\n{starttls}250 SIZE 10240000\r\n"
            );
            io.write_all(reply.as_bytes()).await.ok()?;
        } else if cmd == "STARTTLS" {
            match &tls {
                Tls::Refuse(code) => {
                    io.write_all(format!("{code} 4.7.0 TLS not available\r\n").as_bytes())
                        .await
                        .ok()?;
                }
                Tls::Garbage => {
                    io.write_all(b"220 go ahead\r\n").await.ok()?;
                    io.write_all(b"this is not a TLS server hello at all\r\n")
                        .await
                        .ok()?;
                    return None;
                }
                _ => {
                    io.write_all(b"220 2.0.0 go ahead\r\n").await.ok()?;
                    return Some(io.into_inner());
                }
            }
        } else if cmd == "QUIT" && matches!(tls, Tls::MuteQuit) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return None;
        } else if cmd == "QUIT" {
            io.write_all(b"221 bye\r\n").await.ok()?;
            return None;
        } else {
            io.write_all(b"502 what\r\n").await.ok()?;
        }
    }
}

/// STARTTLS with this chain and key.
pub fn cert(
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Tls {
    Tls::Cert(super::server_config(chain, key, &[]))
}

pub async fn spawn(tls: Tls) -> SocketAddr {
    spawn_counting(tls).await.0
}

/// Counts concurrent connections: (now, peak).
#[derive(Default)]
pub struct Conns {
    pub now: AtomicUsize,
    pub peak: AtomicUsize,
}

struct Guard(Arc<Conns>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Like [`spawn`], and counts the connections it serves at once.
pub async fn spawn_counting(tls: Tls) -> (SocketAddr, Arc<Conns>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(Conns::default());
    let counted = conns.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let n = counted.now.fetch_add(1, Ordering::SeqCst) + 1;
            counted.peak.fetch_max(n, Ordering::SeqCst);
            let guard = Guard(counted.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let Some(tcp) = session(tcp, tls.clone()).await else {
                    return;
                };
                let Tls::Cert(config) = tls else { return };
                let acceptor = TlsAcceptor::from(config);
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut io = BufReader::new(stream);
                let mut line = String::new();
                while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                    if line.trim_end().eq_ignore_ascii_case("QUIT") {
                        let _ = io.write_all(b"221 bye\r\n").await;
                        let _ = io.flush().await;
                        return;
                    }
                    let _ = io.write_all(b"250 ok\r\n").await;
                    line.clear();
                }
            });
        }
    });
    (addr, conns)
}
