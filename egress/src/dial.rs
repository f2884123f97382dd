//! From an accepted client connection to a connected upstream: read what the client sends first
//! (bounded in size and time), decide, resolve through rampart-dns, and dial exactly a vetted
//! address, optionally from a fixed source address (the egress gateway of S.N.8).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rampart_dns::{Resolved, Resolver};
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::decide::{decide, Decision, Denied, Dial, Mode};
use crate::peek::{self, Peeked, Seen};
use crate::policy::EgressPolicy;

/// How to dial.
#[derive(Debug, Clone, Copy)]
pub struct DialOptions {
    /// Source address to bind before connecting (gateway mode); only addresses of the same
    /// family are dialled then.
    pub bind: Option<IpAddr>,
    /// Per-address connect timeout.
    pub connect_timeout: Duration,
    /// How long the client may take to send its ClientHello / request head (at most
    /// [`MAX_PEEK_TIMEOUT`] is waited, whatever is given).
    pub peek_timeout: Duration,
}

/// The longest a client is waited for its first bytes, whatever `peek_timeout` says.
pub const MAX_PEEK_TIMEOUT: Duration = Duration::from_secs(86_400);

impl Default for DialOptions {
    fn default() -> Self {
        DialOptions {
            bind: None,
            connect_timeout: Duration::from_secs(5),
            peek_timeout: Duration::from_secs(10),
        }
    }
}

/// An allowed, connected egress.
#[derive(Debug)]
pub struct Connected {
    pub upstream: TcpStream,
    /// The address dialled (one of `resolved.addrs`, or the address rule's).
    pub peer: SocketAddr,
    pub decision: Decision,
    /// The vetted answer, for name rules.
    pub resolved: Option<Resolved>,
    /// Bytes read from the client that the upstream must receive first (the ClientHello or
    /// request head; for CONNECT, what followed the `200`).
    pub prefix: Vec<u8>,
}

/// The answer to an allowed CONNECT.
pub const CONNECT_OK: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

/// A connection the policy allows, read and decided but not yet dialled.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub decision: Decision,
    pub mode: Mode,
    /// What the client sent first (for CONNECT: the CONNECT request).
    pub seen: Seen,
    /// For CONNECT: what came through the tunnel.
    pub inner: Option<Seen>,
    /// Bytes read from the client that the upstream must receive first (the ClientHello or
    /// request head; for CONNECT, what followed the `200`).
    pub prefix: Vec<u8>,
    /// Whether a `200 Connection Established` was sent to the client.
    pub answered: bool,
}

impl Admitted {
    /// Decides the same connection again under another policy (after a reload).
    pub fn still_allowed(&self, policy: &EgressPolicy) -> bool {
        decide(policy, self.mode, &self.seen, self.inner.as_ref()).is_ok()
    }
}

/// The egress path of one service: its policy, the resolver, dial options.
#[derive(Debug, Clone)]
pub struct Egress {
    pub policy: Arc<EgressPolicy>,
    pub resolver: Arc<Resolver>,
    pub options: DialOptions,
}

impl Egress {
    /// Reads the start of `client`, decides, resolves and dials: [`Egress::admit`] then
    /// [`Egress::connect`]. On denial nothing has been dialled; a refused origin-form
    /// plain-HTTP request has already been answered `403` (see [`admit`]). Callers that must
    /// answer other refusals themselves (explicit mode) use [`Egress::admit`], whose flag says
    /// whether the client already has its answer.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut S,
        mode: Mode,
    ) -> Result<Connected, Denied> {
        let admitted = self.admit(client, mode).await.map_err(|(d, _)| d)?;
        let mut c = self.connect(admitted.decision).await?;
        c.prefix = admitted.prefix;
        Ok(c)
    }

    /// [`admit`] with this path's policy and peek timeout.
    pub async fn admit<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut S,
        mode: Mode,
    ) -> Result<Admitted, (Denied, bool)> {
        admit(&self.policy, self.options.peek_timeout, client, mode).await
    }

    /// Resolves (name rules) and dials exactly the vetted address.
    pub async fn connect(&self, decision: Decision) -> Result<Connected, Denied> {
        match &decision.dial {
            Dial::Address(addr) => {
                let upstream =
                    dial_one(*addr, &self.options)
                        .await
                        .map_err(|detail| Denied::Dial {
                            rule: decision.rule.clone(),
                            addr: addr.to_string(),
                            detail,
                        })?;
                Ok(Connected {
                    upstream,
                    peer: *addr,
                    decision,
                    resolved: None,
                    prefix: Vec::new(),
                })
            }
            Dial::Name {
                host,
                port,
                dnssec,
                internal,
            } => {
                let resolved = self
                    .resolver
                    .resolve(host, *dnssec, internal)
                    .await
                    .map_err(|source| Denied::Dns {
                        rule: decision.rule.clone(),
                        source,
                    })?;
                let (upstream, peer) = dial_vetted(&resolved, *port, &self.options).await.map_err(
                    |(addr, detail)| Denied::Dial {
                        rule: decision.rule.clone(),
                        addr,
                        detail,
                    },
                )?;
                Ok(Connected {
                    upstream,
                    peer,
                    decision,
                    resolved: Some(resolved),
                    prefix: Vec::new(),
                })
            }
        }
    }
}

/// Reads the start of `client` (bounded in size and time) and decides, without resolving
/// or dialling anything. In explicit-proxy mode a CONNECT is answered `200` once its
/// target is allowed, and the tunnel's first bytes are then checked too (SNI must equal
/// the target); [`Admitted::answered`] says whether that `200` went out.
/// On denial, the flag says whether the client already has its answer: the `200` of a CONNECT
/// (then it can only be closed) or, for a refused origin-form plain-HTTP request, the `403`
/// written here; otherwise an explicit-proxy client should get [`Denied::http_response`].
pub async fn admit<S: AsyncRead + AsyncWrite + Unpin>(
    policy: &EgressPolicy,
    peek_timeout: Duration,
    client: &mut S,
    mode: Mode,
) -> Result<Admitted, (Denied, bool)> {
    admit_with(policy, peek_timeout, client, mode, true).await
}

/// [`admit`], choosing whether a CONNECT is answered `200` before its tunnel's first bytes are
/// read (`answer_connect`). A client that sends its first bytes right after the CONNECT without
/// waiting (the sidecar talking to the egress gateway) is best served with `false`: nothing is
/// answered, so the caller can resolve and dial first and answer [`CONNECT_OK`] — or a `403`
/// with the reason — once it knows.
pub async fn admit_with<S: AsyncRead + AsyncWrite + Unpin>(
    policy: &EgressPolicy,
    peek_timeout: Duration,
    client: &mut S,
    mode: Mode,
    answer_connect: bool,
) -> Result<Admitted, (Denied, bool)> {
    // Any wait is a valid one: past a day it is a day (`Instant + Duration` must not overflow).
    let deadline = Instant::now() + peek_timeout.min(MAX_PEEK_TIMEOUT);
    let mut buf = Vec::with_capacity(2048);
    let before = |d: Denied| (d, false);
    let after = |d: Denied| (d, answer_connect);
    let seen = read_seen(client, &mut buf, deadline)
        .await
        .map_err(before)?;
    match (&mode, &seen) {
        (Mode::ExplicitProxy, Seen::Connect { head_len, .. }) => {
            decide(policy, mode, &seen, None).map_err(before)?;
            let rest = buf.get(*head_len..).unwrap_or_default().to_vec();
            if answer_connect {
                client
                    .write_all(CONNECT_OK)
                    .await
                    .map_err(|_| before(Denied::ClientClosed(buf.len())))?;
            }
            let mut inner_buf = rest;
            let inner = read_seen(client, &mut inner_buf, deadline)
                .await
                .map_err(after)?;
            let decision = decide(policy, mode, &seen, Some(&inner)).map_err(after)?;
            Ok(Admitted {
                decision,
                mode,
                seen,
                inner: Some(inner),
                prefix: inner_buf,
                answered: answer_connect,
            })
        }
        _ => {
            let decision = match decide(policy, mode, &seen, None) {
                Ok(decision) => decision,
                // An origin-form request (a redirected plain-HTTP connection) is answered like
                // every later request of that connection: a 403 naming reason and rule.
                Err(d) if matches!(seen, Seen::Http { .. }) => {
                    let answered = client.write_all(&d.http_response()).await.is_ok();
                    return Err((d, answered));
                }
                Err(d) => return Err(before(d)),
            };
            Ok(Admitted {
                decision,
                mode,
                seen,
                inner: None,
                prefix: buf,
                answered: false,
            })
        }
    }
}

/// Dials the vetted addresses of `resolved` in order, first success wins. Nothing else is ever
/// dialled: no second lookup.
pub async fn dial_vetted(
    resolved: &Resolved,
    port: u16,
    opts: &DialOptions,
) -> Result<(TcpStream, SocketAddr), (String, String)> {
    let mut errors = Vec::new();
    for ip in &resolved.addrs {
        if let Some(b) = opts.bind {
            if b.is_ipv4() != ip.is_ipv4() {
                errors.push(format!("{ip}: not the family of the source address {b}"));
                continue;
            }
        }
        let addr = SocketAddr::new(*ip, port);
        match dial_one(addr, opts).await {
            Ok(s) => return Ok((s, addr)),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    let addrs: Vec<String> = resolved.addrs.iter().map(|a| a.to_string()).collect();
    Err((addrs.join(", "), errors.join("; ")))
}

/// One connect, from `opts.bind` when set (socket2: bind before connect), bounded in time.
pub async fn dial_one(addr: SocketAddr, opts: &DialOptions) -> Result<TcpStream, String> {
    let socket = match opts.bind {
        None => if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?,
        Some(src) => {
            let domain = if src.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let s = Socket::new(domain, Type::STREAM, Some(SockProtocol::TCP))
                .map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            s.bind(&SocketAddr::new(src, 0).into())
                .map_err(|e| format!("binding source address {src}: {e}"))?;
            TcpSocket::from_std_stream(std::net::TcpStream::from(s))
        }
    };
    match tokio::time::timeout(opts.connect_timeout, socket.connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {:?}", opts.connect_timeout)),
    }
}

/// Reads from `client` into `buf` until the bytes classify, the size cap, EOF or the deadline.
async fn read_seen<S: AsyncRead + Unpin>(
    client: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Seen, Denied> {
    loop {
        match peek::classify(buf) {
            Peeked::Seen(s) => return Ok(s),
            Peeked::Unrecognized(why) => return Err(Denied::Unrecognized(why)),
            Peeked::Partial => {}
        }
        if buf.len() >= peek::MAX_PEEK {
            return Err(Denied::Unrecognized(format!(
                "nothing recognizable in the first {} bytes",
                peek::MAX_PEEK
            )));
        }
        let mut chunk = [0u8; 4096];
        let want = (peek::MAX_PEEK - buf.len()).min(chunk.len());
        let Some(dst) = chunk.get_mut(..want) else {
            return Err(Denied::Unrecognized("buffer".into()));
        };
        match tokio::time::timeout_at(deadline, client.read(dst)).await {
            Err(_) => return Err(Denied::PeekTimeout(buf.len())),
            Ok(Err(_)) | Ok(Ok(0)) => return Err(Denied::ClientClosed(buf.len())),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}
