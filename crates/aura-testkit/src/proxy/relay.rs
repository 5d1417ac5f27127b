//! The proxy's connections: accepting, forwarding both ways with latency, the blackhole,
//! and the one-shot cut after a chosen client message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::frontend::{Frontend, Message, contains, cstrings};
use super::{Rule, Shared};

pub(super) async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
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
