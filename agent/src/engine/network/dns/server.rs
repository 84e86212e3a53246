//! The UDP and TCP loops of one container's DNS server, and the handle that stops them.
//!
//! Each query is decided by [`answer`] against the container's current [`Records`];
//! a forwarded one goes upstream in its own task. A flood cannot exhaust the agent:
//! at most [`MAX_FORWARDS`] forwards are in flight per server (a query beyond that
//! gets SERVFAIL at once, which costs no more than the query), at most
//! [`MAX_TCP_CONNECTIONS`] TCP clients are served at a time (more are closed on
//! accept), and an idle TCP client is closed after [`TCP_IDLE`].

use super::DnsError;
use super::answer::{Outcome, answer, error_reply, fit_udp, header_and_question};
use super::records::Records;
use super::upstream::{Transport, UPSTREAM_TIMEOUT, forward, read_frame, write_frame};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Forwarded queries in flight at once, per server (UDP and TCP together).
pub const MAX_FORWARDS: usize = 64;

/// TCP clients served at once, per server.
pub const MAX_TCP_CONNECTIONS: usize = 16;

/// How long a TCP client may take to send its next query (or read a reply).
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// The largest UDP query read; a longer one is cut and answered with FORMERR.
const UDP_QUERY_MAX: usize = 4096;

/// The pause after a failed accept (e.g. out of file descriptors), so the loop does
/// not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One container's DNS server: what its loops share.
pub struct DnsServer {
    /// The names the container may resolve, as the engine last sent them.
    records: watch::Receiver<Records>,
    /// The host's resolvers, tried in order.
    upstreams: Vec<SocketAddr>,
    /// Whether names outside `records` may be forwarded (false on internal networks).
    forward: bool,
    /// Grows with each A (or ANY) query; rotates the addresses of a name. Other
    /// types leave it alone: a stub resolver asks A and AAAA for each lookup, and a
    /// turn per query would then skip every other address of a two-task service.
    turn: AtomicUsize,
    /// Permits for forwarded queries in flight.
    forwards: Arc<Semaphore>,
}

/// The running server of one container: [`DnsHandle::stop`] (or dropping it) ends its
/// tasks and closes its sockets.
#[must_use = "dropping the handle stops the server"]
pub struct DnsHandle {
    /// Dropped to tell the loops to stop.
    stop: watch::Sender<()>,
    /// The UDP and TCP loops.
    tasks: JoinSet<()>,
}

impl DnsServer {
    /// Serve DNS on `udp` and `tcp` (already bound, e.g. to 127.0.0.11 inside the
    /// container's network namespace) on the current tokio runtime.
    ///
    /// `records` is the table of names the container may resolve; the engine sends a
    /// new one when tasks come and go, and the next query sees it. Other names go to
    /// `upstreams` if `forward` is true, and get NXDOMAIN otherwise.
    pub fn spawn(
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        records: watch::Receiver<Records>,
        upstreams: Vec<SocketAddr>,
        forward: bool,
    ) -> Result<DnsHandle, DnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        let socket_err = |op, socket| move |source| DnsError::Socket { op, socket, source };
        udp.set_nonblocking(true)
            .map_err(socket_err("set non-blocking mode on", "UDP"))?;
        let udp =
            UdpSocket::from_std(udp).map_err(socket_err("register with the runtime", "UDP"))?;
        tcp.set_nonblocking(true)
            .map_err(socket_err("set non-blocking mode on", "TCP"))?;
        let tcp =
            TcpListener::from_std(tcp).map_err(socket_err("register with the runtime", "TCP"))?;
        let server = Arc::new(DnsServer {
            records,
            upstreams,
            forward,
            turn: AtomicUsize::new(0),
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        });
        let (stop, stopped) = watch::channel(());
        let mut tasks = JoinSet::new();
        tasks.spawn_on(serve_udp(server.clone(), udp, stopped.clone()), &runtime);
        tasks.spawn_on(serve_tcp(server, tcp, stopped), &runtime);
        Ok(DnsHandle { stop, tasks })
    }

    /// What to do with `query`, against the records as they are now.
    fn decide(&self, query: &[u8]) -> Outcome {
        let rotates = header_and_question(query).is_some_and(|(_, q)| {
            q.is_some_and(|q| matches!(q.query_type, RecordType::A | RecordType::ANY))
        });
        let turn = if rotates {
            self.turn.fetch_add(1, Ordering::Relaxed)
        } else {
            self.turn.load(Ordering::Relaxed)
        };
        answer(&self.records.borrow(), query, turn, self.forward)
    }

    /// The upstreams' reply to `query`, or SERVFAIL if none answers.
    async fn forwarded(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match forward(query, &self.upstreams, transport, UPSTREAM_TIMEOUT).await {
            Ok(reply) => Some(reply),
            Err(_) => self.servfail(query),
        }
    }

    fn servfail(&self, query: &[u8]) -> Option<Vec<u8>> {
        error_reply(query, ResponseCode::ServFail, self.forward)
    }
}

impl DnsHandle {
    /// Stop serving; returns when every task has ended and both sockets are closed.
    pub async fn stop(self) {
        let DnsHandle { stop, mut tasks } = self;
        drop(stop);
        while tasks.join_next().await.is_some() {}
    }
}

/// Answer queries on `socket` until `stop` says so, then end the forwards in flight.
async fn serve_udp(server: Arc<DnsServer>, socket: UdpSocket, mut stop: watch::Receiver<()>) {
    let socket = Arc::new(socket);
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; UDP_QUERY_MAX];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
            received = socket.recv_from(&mut buf) => {
                let Ok((len, client)) = received else { continue };
                let Some(query) = buf.get(..len) else { continue };
                match server.decide(query) {
                    Outcome::Reply(reply) => send(&socket, query, reply, client).await,
                    Outcome::Drop => {}
                    Outcome::Forward => match server.forwards.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let (server, socket, query) = (server.clone(), socket.clone(), query.to_vec());
                            forwards.spawn(async move {
                                if let Some(reply) = server.forwarded(&query, Transport::Udp).await {
                                    send(&socket, &query, reply, client).await;
                                }
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            if let Some(reply) = server.servfail(query) {
                                send(&socket, query, reply, client).await;
                            }
                        }
                    },
                }
            }
        }
    }
    forwards.shutdown().await;
}

/// Send `reply` to `client`, cut to what the client of `query` accepts over UDP. A
/// failed send is the client's loss: it asks again.
async fn send(socket: &UdpSocket, query: &[u8], reply: Vec<u8>, client: SocketAddr) {
    let _ = socket.send_to(&fit_udp(query, reply), client).await;
}

/// Accept TCP clients on `listener` until `stop` says so, then close them.
async fn serve_tcp(server: Arc<DnsServer>, listener: TcpListener, mut stop: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() < MAX_TCP_CONNECTIONS => {
                    connections.spawn(serve_connection(server.clone(), stream));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    connections.shutdown().await;
}

/// Answer the queries of one TCP client, in order, until it closes, idles or sends
/// something that gets no reply.
async fn serve_connection(server: Arc<DnsServer>, mut stream: TcpStream) {
    loop {
        let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE, read_frame(&mut stream)).await else {
            return;
        };
        let reply = match server.decide(&query) {
            Outcome::Reply(reply) => Some(reply),
            Outcome::Drop => None,
            Outcome::Forward => match server.forwards.clone().try_acquire_owned() {
                Ok(_permit) => server.forwarded(&query, Transport::Tcp).await,
                Err(_) => server.servfail(&query),
            },
        };
        let Some(reply) = reply else { return };
        let written: Result<io::Result<()>, _> =
            tokio::time::timeout(TCP_IDLE, write_frame(&mut stream, &reply)).await;
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
}
