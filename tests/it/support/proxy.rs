//! A TCP proxy in front of Postgres that a test can cut, stall and
//! restore: the database "goes away" and "comes back" without touching
//! the server other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward traffic.
    Open,
    /// Refuse: close every connection at once.
    Cut,
    /// Accept, then never answer.
    Stall,
}

struct Shared {
    mode: Mode,
    conns: Vec<AbortHandle>,
}

/// The proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Starts forwarding a free local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            mode: Mode::Open,
            conns: Vec::new(),
        }));
        let s = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let mode = s.lock().unwrap().mode;
                let task = match mode {
                    Mode::Cut => {
                        drop(client);
                        continue;
                    }
                    Mode::Stall => tokio::spawn(async move {
                        let _held = client;
                        std::future::pending::<()>().await;
                    }),
                    Mode::Open => tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }),
                };
                s.lock().unwrap().conns.push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy { addr, shared, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn set(&self, mode: Mode) {
        let mut s = self.shared.lock().unwrap();
        s.mode = mode;
        if mode != Mode::Open {
            for c in s.conns.drain(..) {
                c.abort();
            }
        }
    }

    /// The database goes away: every connection closes, new ones are refused.
    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// The database hangs: connections close, new ones never get an answer.
    pub fn stall(&self) {
        self.set(Mode::Stall);
    }

    /// The database is back.
    pub fn restore(&self) {
        self.set(Mode::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set(Mode::Cut);
    }
}
