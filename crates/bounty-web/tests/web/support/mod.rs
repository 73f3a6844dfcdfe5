//! The dashboard served for real on `127.0.0.1:0`, over a real store on a
//! fresh database, with a manual clock; a small cookie-keeping browser;
//! and fixtures that seed accounts through the store's public API.

pub mod logged;
pub mod receiver;
pub mod seed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bounty_core::{Clock, ManualClock};
use bounty_integrations::{KeyId, Keyring, SealKey};
pub use bounty_store::testing::Backend;
use bounty_store::testing::TestDatabase;
use bounty_store::{DatabaseOptions, Store};
use bounty_web::{PasswordHasher, WebState};
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

/// Runs each named `async fn name(backend: Backend)` once per backend, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The cheapest argon2id: tests hash many passwords in debug builds.
pub fn cheap_hasher() -> PasswordHasher {
    PasswordHasher::with_cost(8, 1, 1).expect("argon2 accepts its minimum cost")
}

/// Master keys for a test: one fresh key.
pub fn test_keyring() -> Keyring {
    Keyring::new(
        "k1".parse::<KeyId>().expect("a key id"),
        SealKey::generate().expect("OS randomness"),
    )
}

/// The dashboard, running.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    /// The master keys integration secrets are sealed with, when set.
    pub keyring: Option<Arc<Keyring>>,
    /// What the test webhook receiver got, when one is mounted.
    pub received: Option<receiver::Received>,
    _db: TestDatabase,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// The dashboard on a fresh, migrated database of `backend`, at
    /// 2026-05-10 12:00 UTC, with cheap password hashing and fresh master
    /// keys, and no `self_url`.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// As [`TestApp::spawn`], with the state adjusted by `tune` first.
    pub async fn spawn_with(backend: Backend, tune: impl FnOnce(&mut WebState)) -> TestApp {
        TestApp::spawn_inner(backend, tune, false).await
    }

    /// As [`TestApp::spawn`], with `self_url` set to the app's own address
    /// and a test webhook receiver mounted at `/webhooks/in/{id}` beside the
    /// dashboard, as the server mounts its real one
    /// ([`receiver`](crate::support::receiver)).
    pub async fn spawn_with_receiver(backend: Backend) -> TestApp {
        TestApp::spawn_inner(backend, |_| {}, true).await
    }

    async fn spawn_inner(backend: Backend, tune: impl FnOnce(&mut WebState), with_receiver: bool) -> TestApp {
        let db = TestDatabase::create(backend).await;
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 5, 10, 12, 0, 0)
                .single()
                .expect("a valid time"),
        ));
        let opts = DatabaseOptions {
            url: db.url().to_owned(),
            max_connections: 5,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
        };
        let store = Store::connect(&opts, clock.clone() as Arc<dyn Clock>)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut state = WebState::new(store.clone(), false);
        state.passwords = cheap_hasher();
        state.keyring = Some(Arc::new(test_keyring()));
        if with_receiver {
            state.self_url = Some(format!("http://{addr}/"));
        }
        tune(&mut state);
        let mut app = bounty_web::router(state.clone()).fallback(bounty_web::not_found);
        let mut received = None;
        if with_receiver {
            let keys = state
                .keyring
                .clone()
                .expect("the receiver opens secrets with the keys");
            let (route, got) = receiver::route(store.clone(), keys);
            app = app.merge(route);
            received = Some(got);
        }
        let server = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serve");
        });
        TestApp {
            addr,
            store,
            clock,
            keyring: state.keyring.clone(),
            received,
            _db: db,
            server,
        }
    }

    /// A browser with no cookies.
    pub fn browser(&self) -> Browser {
        Browser {
            base: format!("http://{}", self.addr),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser logged in as `email` with `password`.
    pub async fn logged_in(&self, email: &str, password: &str) -> Browser {
        let mut b = self.browser();
        let r = b.login(email, password).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login of {email}: {}", r.body);
        b
    }
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The value of the first `name="csrf"` hidden input.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf input in {}", self.body))
            + marker.len();
        let len = self.body[start..].find('"').expect("a closing quote");
        self.body[start..start + len].to_owned()
    }

    /// The `Set-Cookie` header for `name`, whole.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    /// Asserts the body contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "expected {needle:?} in: {}",
            self.body
        );
        self
    }

    /// Asserts the body does not contain `needle`.
    #[track_caller]
    pub fn assert_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.body.contains(needle),
            "did not expect {needle:?} in: {}",
            self.body
        );
        self
    }
}

/// A client that keeps cookies as a browser would (by name; paths and
/// expiry beyond `Max-Age=0` are not modelled) and follows no redirects.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        for v in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let first = v.split(';').next().unwrap_or_default();
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            if v.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = r.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            req = req.header(COOKIE, self.cookie_header());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("GET");
        self.read(r).await
    }

    /// `POST path` with a urlencoded form.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).expect("form");
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if !self.cookies.is_empty() {
            req = req.header(COOKIE, self.cookie_header());
        }
        let r = req.send().await.expect("POST");
        self.read(r).await
    }

    /// Loads the login form, then posts it.
    pub async fn login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        form.assert_status(StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    /// Loads the operator console's login form, then posts it.
    pub async fn ops_login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/ops/login").await;
        form.assert_status(StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/ops/login",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    /// Posts each form (the session's CSRF token added) and checks the
    /// answer's status and that it says `says`.
    pub async fn post_each(&mut self, posts: &[(String, Vec<(&str, &str)>)], status: StatusCode, says: &str) {
        let csrf = self.csrf().await;
        for (path, form) in posts {
            let mut form = form.clone();
            form.push(("csrf", &csrf));
            let page = self.post(path, &form).await;
            assert_eq!(page.status, status, "POST {path}: {}", page.body);
            page.assert_contains(says);
        }
    }

    /// The session's CSRF token, read from a signed-in page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/api-keys").await;
        page.assert_status(StatusCode::OK);
        page.csrf()
    }
}
