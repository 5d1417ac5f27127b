//! [`FaultProxy`]: an in-process TCP proxy between a pool and the server, for fault tests.
//!
//! It forwards bytes both ways and, on command, adds latency, cuts every connection,
//! stops answering (blackhole), or cuts one connection right after a chosen client message
//! went through to the server, before the server's reply reaches the client.
//!
//! It reads the Postgres frontend protocol on the client→server stream to place such cuts,
//! so it sees messages only on plaintext connections: [`FaultProxy::route`] writes
//! `sslmode=disable` into the DSN it returns. Over TLS the bytes pass unread (forwarding,
//! latency, `cut_all` and the blackhole still work; message cuts never fire).

mod frontend;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aura_db::{ConfigBuilder, Dsn};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::TestDb;
use frontend::{Frontend, Message, contains, cstrings};

/// A predicate on one client message: its type byte (`b'Q'`, `b'P'`, `b'B'`, `b'E'`,
/// `b'S'`, …; `0` for the untyped startup packet) and its body (the bytes after the length).
pub type MessagePredicate = dyn Fn(u8, &[u8]) -> bool + Send + Sync;

/// An in-process TCP proxy in front of a Postgres server (see the module docs).
///
/// Runs on the current tokio runtime; dropping it stops accepting and closes every
/// connection it carries.
///
/// ```no_run
/// # async fn demo() {
/// use aura_testkit::{FaultProxy, TestDb};
/// let db = TestDb::new().await;
/// let proxy = FaultProxy::for_db(&db).await;
/// let config = proxy.config_builder(&db).max_conns(2).build().unwrap();
/// let pool = aura_db::open(&config).await.unwrap();
/// proxy.cut_after_query_containing("INSERT INTO aura.turns");
/// // … the next statement containing that text reaches the server, its reply never
/// // reaches the pool: the caller sees the connection closed.
/// # let _ = pool;
/// # }
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// State every connection task reads.
struct Shared {
    latency_micros: AtomicU64,
    blackhole: AtomicBool,
    rule: Mutex<Option<Rule>>,
    /// Bumped by [`FaultProxy::cut_all`] (and on drop): every connection closes.
    cut_all: watch::Sender<u64>,
    open: AtomicUsize,
    accepted: AtomicUsize,
    cuts: AtomicUsize,
}

/// A pending one-shot cut.
#[derive(Clone)]
enum Rule {
    Message(Arc<MessagePredicate>),
    Query(Vec<u8>),
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to `upstream`.
    ///
    /// # Panics
    /// When no local port can be bound (a test set-up failure).
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("aura-testkit: the fault proxy cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("aura-testkit: the fault proxy has no address: {e}"));
        let (cut_all, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            latency_micros: AtomicU64::new(0),
            blackhole: AtomicBool::new(false),
            rule: Mutex::new(None),
            cut_all,
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        FaultProxy {
            addr,
            upstream,
            shared,
            accept,
        }
    }

    /// A proxy in front of the server `db` lives on (its app URL's host and port).
    pub async fn for_db(db: &TestDb) -> FaultProxy {
        let pg = db.config().app_url().pg_config();
        let host = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("aura-testkit: cannot resolve {host}:{port}"));
        FaultProxy::start(upstream).await
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// `dsn` (URL or key=value form) rewritten to reach the server through this proxy, in
    /// plaintext (`sslmode=disable`): same user, password and database.
    pub fn route(&self, dsn: &Dsn) -> Dsn {
        let pg = dsn.pg_config();
        let password = pg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let composed = Dsn::compose(
            pg.get_user().unwrap_or("postgres"),
            &SecretString::from(password),
            &self.addr.ip().to_string(),
            self.addr.port(),
            pg.get_dbname().unwrap_or("postgres"),
        );
        let text = format!("{}?sslmode=disable", composed.expose());
        Dsn::parse("the fault proxy's DSN", SecretString::from(text))
            .unwrap_or_else(|e| panic!("aura-testkit: {e}"))
    }

    /// `db`'s configuration builder with the app URL (the pool's) through this proxy;
    /// change pool settings on it, then `build()`.
    pub fn config_builder(&self, db: &TestDb) -> ConfigBuilder {
        let app = self.route(db.config().app_url());
        db.config_builder()
            .app_url(SecretString::from(app.expose().to_owned()))
    }

    /// Delays every chunk by `latency`, each way (pipelined: chunks keep their order and
    /// are not serialised behind each other's delay). `Duration::ZERO` turns it off.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_micros.store(micros, Ordering::SeqCst);
    }

    /// Closes every connection the proxy carries now, both sides, at once. New connections
    /// are accepted and forwarded as before.
    pub fn cut_all(&self) {
        self.shared.cut_all.send_modify(|epoch| *epoch += 1);
    }

    /// `true`: the proxy stops answering. Connections (open ones and new ones) stay open,
    /// everything the client sends is read and discarded, nothing comes back; new
    /// connections are accepted but never reach the server. `false`: open connections
    /// that have a server forward again (their protocol state is whatever the lost bytes
    /// left); connections made during the blackhole stay dead.
    ///
    /// The proxy's kernel still acknowledges TCP segments and keepalive probes, so TCP
    /// keepalives and `tcp_user_timeout` cannot detect this (they would a dead host);
    /// only a timeout in the client can.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// The next client message (on any connection) for which `predicate(tag, body)` holds
    /// is forwarded to the server, then that connection is cut: the client side closed at
    /// once, nothing more forwarded either way, the server side closed after the server
    /// got the message (its reply is read and discarded). One-shot.
    pub fn cut_after_message(&self, predicate: impl Fn(u8, &[u8]) -> bool + Send + Sync + 'static) {
        *self.shared.rule.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Rule::Message(Arc::new(predicate)));
    }

    /// Cuts (as [`FaultProxy::cut_after_message`]) the next connection that executes a
    /// statement whose text contains `text`, right after the whole execution went through:
    /// after the simple `Query` message, or, in the extended protocol, after the `Sync`
    /// that ends the `Bind`/`Execute` of a statement prepared with that text (earlier on
    /// the same connection or in the same batch: cached statements are recognised). The
    /// server runs (and in autocommit commits) the statement; the client never sees the
    /// reply. One-shot.
    pub fn cut_after_query_containing(&self, text: &str) {
        *self.shared.rule.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Rule::Query(text.as_bytes().to_vec()));
    }

    /// Withdraws a pending [`FaultProxy::cut_after_message`] /
    /// [`FaultProxy::cut_after_query_containing`] that has not fired.
    pub fn clear_cut(&self) {
        self.shared
            .rule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// How many message cuts fired so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

impl Shared {
    fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::SeqCst))
    }

    fn blackholed(&self) -> bool {
        self.blackhole.load(Ordering::SeqCst)
    }

    fn rule(&self) -> Option<Rule> {
        self.rule.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the pending rule if it is still there (another connection may have fired it).
    fn fire(&self) -> bool {
        let fired = self
            .rule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some();
        if fired {
            self.cuts.fetch_add(1, Ordering::SeqCst);
        }
        fired
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve(client, upstream, shared.clone()));
    }
}

/// Counts an open connection for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One client connection, until it ends or is cut.
async fn serve(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    shared.open.fetch_add(1, Ordering::SeqCst);
    let _open = OpenGuard(shared.clone());
    let mut cut_all = shared.cut_all.subscribe();
    cut_all.mark_unchanged();
    let _ = client.set_nodelay(true);
    let work = async {
        if shared.blackholed() {
            swallow(client).await;
            return;
        }
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let _ = server.set_nodelay(true);
        relay(client, server, &shared).await;
    };
    tokio::select! {
        () = work => {}
        _ = cut_all.changed() => {}
    }
}

/// Reads and discards until the client closes.
async fn swallow(mut client: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A chunk on its way: when to write it, and whether the connection is cut after it.
struct Chunk {
    at: Instant,
    bytes: Vec<u8>,
    then_cut: bool,
}

/// Forwards both ways until both sides are done.
async fn relay(client: TcpStream, server: TcpStream, shared: &Shared) {
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    // Set before the cutting message is written to the server: nothing the server sends
    // from then on reaches the client.
    let cut = AtomicBool::new(false);
    let (cut_tx, cut_rx) = watch::channel(false);
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let (down_tx, down_rx) = mpsc::unbounded_channel();
    tokio::join!(
        client_to_chunks(client_r, up_tx, shared, &cut),
        chunks_to_server(server_w, up_rx, cut_tx),
        server_to_chunks(server_r, down_tx, shared, &cut),
        chunks_to_client(client_w, down_rx, cut_rx, &cut),
    );
}

async fn client_to_chunks(
    mut client: OwnedReadHalf,
    up: mpsc::UnboundedSender<Chunk>,
    shared: &Shared,
    cut: &AtomicBool,
) {
    let mut parser = Frontend::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut executed_match = false;
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if shared.blackholed() {
            continue;
        }
        let at = Instant::now() + shared.latency();
        let mut out = Vec::with_capacity(n);
        let mut then_cut = false;
        for frame in parser.push(&buf[..n]) {
            if !then_cut {
                let rule = shared.rule();
                if let Some(message) = parser.message(&frame) {
                    then_cut = matches(&parser, &message, rule.as_ref(), &mut executed_match)
                        && shared.fire();
                }
                out.extend_from_slice(&frame);
            }
        }
        if then_cut {
            cut.store(true, Ordering::SeqCst);
        }
        if !out.is_empty() || then_cut {
            let _ = up.send(Chunk {
                at,
                bytes: out,
                then_cut,
            });
        }
        if then_cut {
            return;
        }
    }
}

/// Whether `message` is where `rule` cuts. `executed_match` carries, per connection, "an
/// Execute of a matching statement was seen since the last Sync".
fn matches(
    parser: &Frontend,
    message: &Message<'_>,
    rule: Option<&Rule>,
    executed_match: &mut bool,
) -> bool {
    match rule {
        None => {
            if message.tag == b'S' {
                *executed_match = false;
            }
            false
        }
        Some(Rule::Message(predicate)) => predicate(message.tag, message.body),
        Some(Rule::Query(text)) => match message.tag {
            b'Q' => contains(cstrings(message.body).next().unwrap_or_default(), text),
            b'E' => {
                if contains(parser.executed_query(message.body), text) {
                    *executed_match = true;
                }
                false
            }
            b'S' => std::mem::take(executed_match),
            _ => false,
        },
    }
}

async fn chunks_to_server(
    mut server: OwnedWriteHalf,
    mut up: mpsc::UnboundedReceiver<Chunk>,
    cut: watch::Sender<bool>,
) {
    while let Some(chunk) = up.recv().await {
        tokio::time::sleep_until(chunk.at).await;
        if server.write_all(&chunk.bytes).await.is_err() {
            break;
        }
        if chunk.then_cut {
            // FIN after the message: the server reads it, runs it, then sees the end.
            let _ = server.shutdown().await;
            let _ = cut.send(true);
            return;
        }
    }
    let _ = server.shutdown().await;
}

async fn server_to_chunks(
    mut server: OwnedReadHalf,
    down: mpsc::UnboundedSender<Chunk>,
    shared: &Shared,
    cut: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // After a cut the server's replies are drained (so its socket closes cleanly,
        // without a reset that could lose the message it has not read yet) and dropped.
        if shared.blackholed() || cut.load(Ordering::SeqCst) {
            continue;
        }
        let at = Instant::now() + shared.latency();
        let _ = down.send(Chunk {
            at,
            bytes: buf[..n].to_vec(),
            then_cut: false,
        });
    }
}

async fn chunks_to_client(
    mut client: OwnedWriteHalf,
    mut down: mpsc::UnboundedReceiver<Chunk>,
    mut cut_rx: watch::Receiver<bool>,
    cut: &AtomicBool,
) {
    loop {
        tokio::select! {
            biased;
            _ = cut_rx.changed() => break,
            chunk = down.recv() => {
                let Some(chunk) = chunk else { break };
                tokio::time::sleep_until(chunk.at).await;
                if cut.load(Ordering::SeqCst) {
                    break;
                }
                if client.write_all(&chunk.bytes).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown().await;
}
