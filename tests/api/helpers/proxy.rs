//! Staged network failures: a proxy in front of the shared PostgreSQL that a test can switch
//! between forwarding, refusing connections and silently swallowing them, and a listener
//! that accepts connections and never answers.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass bytes both ways.
    Forward,
    /// Nothing listens on the port: connections are refused, open ones are cut.
    Refuse,
    /// Accept connections and never answer, like a host that drops packets after the
    /// handshake; open ones are cut.
    Silent,
}

pub struct PgProxy {
    pub port: u16,
    mode: watch::Sender<ProxyMode>,
    task: JoinHandle<()>,
}

impl PgProxy {
    pub async fn start(mode: ProxyMode) -> Self {
        let port = super::free_port();
        let (sender, receiver) = watch::channel(mode);
        let task = tokio::spawn(run(port, receiver));
        let proxy = Self {
            port,
            mode: sender,
            task,
        };
        if mode != ProxyMode::Refuse {
            proxy.wait_listening().await;
        }
        proxy
    }

    /// Switches mode; cuts every connection opened under the previous mode.
    pub async fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
        if mode != ProxyMode::Refuse {
            self.wait_listening().await;
        }
    }

    /// A URL for `database` that reaches PostgreSQL through this proxy, over TCP.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://127.0.0.1:{}/{database}", self.port)
    }

    async fn wait_listening(&self) {
        for _ in 0..250 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("proxy did not start listening");
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared PostgreSQL, through its local socket so the proxy authenticates as the test
/// process does (peer or trust), whatever the server's rules for TCP.
fn upstream_socket() -> PathBuf {
    std::env::var("REELBASE_TEST_PG_SOCKET")
        .unwrap_or_else(|_| "/var/run/postgresql/.s.PGSQL.5432".into())
        .into()
}

async fn run(port: u16, mut mode: watch::Receiver<ProxyMode>) {
    loop {
        let current = *mode.borrow_and_update();
        if current == ProxyMode::Refuse {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let listener = bind_again(port).await;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        tokio::spawn(serve(socket, current, mode.clone()));
                    }
                }
                changed = mode.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break; // drop the listener, then act on the new mode
                }
            }
        }
    }
}

async fn bind_again(port: u16) -> TcpListener {
    for _ in 0..250 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind proxy port {port} again");
}

async fn serve(mut socket: TcpStream, mode: ProxyMode, mut changes: watch::Receiver<ProxyMode>) {
    if mode == ProxyMode::Silent {
        let _ = changes.changed().await; // hold the socket, unread, until the mode changes
        return;
    }
    let Ok(mut upstream) = UnixStream::connect(upstream_socket()).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut socket, &mut upstream) => {}
        _ = changes.changed() => {}
    }
}

/// Accepts TCP connections and never reads from or writes to them.
pub struct SilentListener {
    pub port: u16,
    task: JoinHandle<()>,
}

impl SilentListener {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { port, task }
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
