//! The client against a real HTTP server on loopback.
//!
//! The server is on `127.0.0.1`, which the default rules refuse. To test
//! what happens *after* a first hop is allowed (redirects, caps, timeouts),
//! some tests use rules that treat exactly `127.0.0.1` as public and judge
//! every other address as production does, so `127.0.0.2` (also this
//! machine) stands for "our own network".

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::address::{AddressClass, classify};

/// A tiny HTTP/1.1 server; counts the requests it receives.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let _ = answer(stream, addr.port(), counter).await;
                });
            }
        });
        Server { addr, requests }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(mut stream: TcpStream, port: u16, counter: Arc<AtomicUsize>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    counter.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = path.split('?').next().unwrap_or("/");
    let redirect = |to: String| format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n");
    let response = match path {
        "/ok" => "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-tool: yes\r\n\r\nhello".to_owned(),
        "/big" => format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n{}",
            "x".repeat(4096)
        ),
        "/chunked-big" => {
            let mut out = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned();
            for _ in 0..8 {
                out.push_str(&format!("200\r\n{}\r\n", "y".repeat(512)));
            }
            out.push_str("0\r\n\r\n");
            out
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned()
        }
        "/go/ok" => redirect("/ok".to_owned()),
        "/go/other-loopback" => redirect(format!("http://127.0.0.2:{port}/ok")),
        "/go/metadata" => redirect("http://169.254.169.254/latest/meta-data/".to_owned()),
        "/go/mapped" => redirect(format!("http://[::ffff:10.0.0.1]:{port}/ok")),
        "/go/ftp" => redirect("ftp://example.com/".to_owned()),
        "/go/loop" => redirect("/go/loop".to_owned()),
        _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned(),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Production's classes, except that `127.0.0.1` counts as public.
fn only_first_loopback_is_public(ip: IpAddr) -> Option<AddressClass> {
    if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        None
    } else {
        classify(ip)
    }
}

fn policy() -> OutboundPolicy {
    OutboundPolicy {
        timeout: Duration::from_secs(5),
        ..OutboundPolicy::default()
    }
}

/// A client that may reach the test server, and nothing else private.
fn reaching_the_server(policy: OutboundPolicy) -> Outbound {
    Outbound::with_rules(
        policy,
        Rules {
            allow_private: false,
            classify: only_first_loopback_is_public,
        },
    )
    .unwrap()
}

async fn get(client: &Outbound, url: Url) -> Result<OutboundResponse, OutboundError> {
    let request = client.request(Method::GET, url).build().unwrap();
    client.send(request).await
}

#[tokio::test]
async fn loopback_is_refused_by_default_before_any_connection() {
    let server = Server::start().await;
    let client = Outbound::new(policy()).unwrap();
    for url in [
        server.url("/ok"),
        Url::parse(&format!("http://localhost:{}/ok", server.addr.port())).unwrap(),
        Url::parse(&format!("http://[::ffff:127.0.0.1]:{}/ok", server.addr.port())).unwrap(),
    ] {
        match get(&client, url.clone()).await {
            Err(OutboundError::Refused { ip, why, .. }) => {
                assert!(matches!(why, AddressClass::Loopback), "{url}: {why}");
                assert!(classify(ip).is_some());
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(server.requests(), 0, "nothing reached the server");
}

#[tokio::test]
async fn allow_private_reaches_loopback() {
    let server = Server::start().await;
    let client = Outbound::new(OutboundPolicy {
        allow_private: true,
        ..policy()
    })
    .unwrap();
    for url in [
        server.url("/ok"),
        Url::parse(&format!("http://localhost:{}/ok", server.addr.port())).unwrap(),
    ] {
        let response = get(&client, url).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        assert_eq!(response.headers["x-tool"], "yes");
        assert!(response.latency > Duration::ZERO);
    }
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_is_checked() {
    let server = Server::start().await;
    let client = reaching_the_server(policy());
    let followed = get(&client, server.url("/go/ok")).await.unwrap();
    assert_eq!(
        (followed.status.as_u16(), followed.body.as_slice()),
        (200, &b"hello"[..])
    );

    let before = server.requests();
    for (path, ip, why) in [
        ("/go/other-loopback", "127.0.0.2", AddressClass::Loopback),
        ("/go/metadata", "169.254.169.254", AddressClass::Metadata),
        ("/go/mapped", "::ffff:10.0.0.1", AddressClass::Private),
    ] {
        match get(&client, server.url(path)).await {
            Err(OutboundError::Refused {
                ip: got,
                why: got_why,
                ..
            }) => {
                assert_eq!(got, ip.parse::<IpAddr>().unwrap(), "{path}");
                assert_eq!(got_why, why, "{path}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // Only the redirecting hops were served, never their targets.
    assert_eq!(server.requests() - before, 3);
    assert!(matches!(
        get(&client, server.url("/go/ftp")).await,
        Err(OutboundError::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn redirects_are_limited() {
    let server = Server::start().await;
    let client = reaching_the_server(OutboundPolicy {
        max_redirects: 2,
        ..policy()
    });
    match get(&client, server.url("/go/loop")).await {
        Err(OutboundError::TooManyRedirects { max, .. }) => assert_eq!(max, 2),
        other => panic!("{other:?}"),
    }
    // The first request and two redirects.
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn the_body_is_capped_with_or_without_a_length() {
    let server = Server::start().await;
    let client = reaching_the_server(OutboundPolicy {
        max_response_bytes: 1024,
        ..policy()
    });
    for path in ["/big", "/chunked-big"] {
        match get(&client, server.url(path)).await {
            Err(OutboundError::TooLarge { limit, .. }) => assert_eq!(limit, 1024, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert_eq!(get(&client, server.url("/ok")).await.unwrap().body, b"hello");
}

#[tokio::test]
async fn the_whole_request_is_time_capped() {
    let server = Server::start().await;
    let client = reaching_the_server(OutboundPolicy {
        timeout: Duration::from_millis(300),
        ..policy()
    });
    let started = Instant::now();
    match get(&client, server.url("/slow")).await {
        Err(OutboundError::Timeout { limit, .. }) => assert_eq!(limit, Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn errors_name_the_host_and_never_the_path_or_query() {
    let server = Server::start().await;
    let refused = get(
        &Outbound::new(policy()).unwrap(),
        server.url("/ok/secret-path?token=s3cret"),
    )
    .await
    .unwrap_err();
    // A port nothing listens on: the transport error.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        addr
    };
    let unreachable = get(
        &reaching_the_server(policy()),
        Url::parse(&format!("http://{closed}/secret-path?token=s3cret")).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unreachable, OutboundError::Transport { .. }),
        "{unreachable:?}"
    );
    for err in [refused, unreachable] {
        let text = format!("{err} {err:?}");
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(
            !text.contains("s3cret") && !text.contains("secret-path"),
            "{text}"
        );
    }
}
