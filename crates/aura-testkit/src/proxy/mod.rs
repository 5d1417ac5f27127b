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
mod relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aura_db::{ConfigBuilder, Dsn};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::TestDb;
use relay::accept_loop;

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
