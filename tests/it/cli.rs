//! The real `bounty` binary: accounts from the CLI, serve, signals,
//! configuration errors, two servers starting at once on Postgres, and a
//! demo that still verifies its integration's deliveries after a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use sqlx::Connection;

use crate::support::{Backend, TestDatabase, json_of};

backend_tests!(
    accounts_create_then_the_key_works_over_http,
    dashboard_users_are_created_and_reset_from_the_cli,
    the_demo_still_verifies_its_deliveries_after_a_restart,
);

/// `bounty` with a clean environment: no stray config from the machine.
fn bounty(dir: &std::path::Path) -> Command {
    crate::support::bounty_command(dir)
}

/// A running `bounty serve`; killed on drop.
struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(dir: &std::path::Path, url: &str) -> Served {
        let mut child = bounty(dir)
            .args(["--database-url", url, "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bounty serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("bounty listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Served { child, base }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        crate::support::terminate(&mut self.child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn accounts_create_then_the_key_works_over_http(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let out = bounty(dir.path())
        .args([
            "--database-url",
            db.url(),
            "accounts",
            "create",
            "Acme Corp",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"]["secret"].as_str().unwrap().to_owned();
    let account = created["account"]["id"].as_str().unwrap().to_owned();
    // The secret never reaches the logs.
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&key));

    let served = Served::start(dir.path(), db.url());
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/v1/account", served.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let me = json_of(resp, 200).await;
    assert_eq!(me["id"], account);
    assert_eq!(me["name"], "Acme Corp");

    let listed = bounty(dir.path())
        .args([
            "--database-url",
            db.url(),
            "api-keys",
            "list",
            "--account",
            &account,
            "--json",
        ])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let key_id = listed["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        !listed.to_string().contains(&key),
        "a listing never shows the secret"
    );

    let revoked = bounty(dir.path())
        .args([
            "--database-url",
            db.url(),
            "api-keys",
            "revoke",
            "--account",
            &account,
            &key_id,
        ])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let resp = client
        .get(format!("{}/v1/account", served.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    assert!(served.terminate().success(), "SIGTERM is a clean exit");
}

#[test]
fn serve_with_no_configuration_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bounty(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    assert!(
        line.starts_with("bounty listening on http://127.0.0.1:"),
        "{line}"
    );
    // The first run says how to get into the dashboard.
    let hint = lines.next().unwrap().unwrap();
    assert!(
        hint.contains("bounty users create") && hint.contains("--demo"),
        "{hint}"
    );
    assert!(dir.path().join("bounty-data/bounty.db").is_file());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // (environment, bounty.toml content, the key the error must name)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("BOUNTY_SERVER__REQUEST_TIMEOUT_MS", "soon")],
            None,
            "server.request_timeout_ms",
        ),
        (vec![("DATABASE_URL", "mysql://x")], None, "database.url"),
        (vec![("BOUNTY_LOG__FORMAT", "xml")], None, "log.format"),
        (
            vec![("BOUNTY_DATABASE__MAX_CONNECTIONS", "0")],
            None,
            "database.max_connections",
        ),
        (
            vec![],
            Some("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n"),
            "lisen",
        ),
        (vec![], Some("[server\n"), "bounty.toml"),
        (
            vec![],
            Some(
                "[models.tiny]\nprovider = \"llama\"\npath = \"nope.gguf\"\nprice = { per_cpu_second = \"0.0001\" }\n",
            ),
            "models.tiny.path",
        ),
        (
            vec![],
            Some(
                "[models.tiny]\nprovider = \"llama\"\npath = \"bounty.toml\"\nprice = { per_cpu_second = \"0.0001\" }\n",
            ),
            "models.tiny.path",
        ),
        (
            vec![],
            Some(
                "[models.gpt]\nprovider = \"openai\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\nprice = { input_per_million = \"abc\", output_per_million = \"1\" }\n",
            ),
            "models.gpt.price.input_per_million",
        ),
        (vec![], Some("[models.x]\nprovider = \"magic\"\n"), "models.x"),
        (
            vec![("BOUNTY_WORKER__CONCURRENCY", "0")],
            None,
            "worker.concurrency",
        ),
    ];
    for (env, file, key) in cases {
        let toml = dir.path().join("bounty.toml");
        match file {
            Some(content) => std::fs::write(&toml, content).unwrap(),
            None => {
                let _ = std::fs::remove_file(&toml);
            }
        }
        let mut cmd = bounty(dir.path());
        cmd.arg("migrate");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?} {file:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert!(!dir.path().join("bounty-data").exists(), "nothing was created");
    }
    let out = bounty(dir.path())
        .args(["--config", "missing.toml", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_teaches_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = bounty(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve",
        "worker",
        "models",
        "migrate",
        "accounts",
        "api-keys",
        "DATABASE_URL",
    ] {
        assert!(help.contains(cmd), "--help does not mention {cmd}");
    }
    let out = bounty(dir.path())
        .args(["accounts", "create", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("shown again"));
}

/// Two servers start at once on one fresh Postgres database: both come up,
/// and each migration is applied exactly once (advisory lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_start_at_once_on_one_postgres() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url().to_owned();
    let (a, b) = {
        let (d1, d2, u1, u2) = (
            dir.path().to_owned(),
            dir.path().to_owned(),
            url.clone(),
            url.clone(),
        );
        let a = std::thread::spawn(move || Served::start(&d1, &u1));
        let b = std::thread::spawn(move || Served::start(&d2, &u2));
        (a.join().unwrap(), b.join().unwrap())
    };
    for s in [&a, &b] {
        let resp = reqwest::get(format!("{}/readyz", s.base)).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("select version, success from _sqlx_migrations order by version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(rows.len(), files, "each migration recorded once: {rows:?}");
    assert!(rows.iter().all(|(_, ok)| *ok));
    conn.close().await.unwrap();
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// `bounty models list` shows the configured models without their keys;
/// `bounty models check NAME` loads a real GGUF and generates with it.
#[test]
fn models_list_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = bounty_models::testing::gguf::write_tiny_llama(dir.path()).unwrap();
    let toml = format!(
        "[models.tiny]\nprovider = \"llama\"\npath = {:?}\nthreads = 1\nprice = {{ per_cpu_second = \"0.0001\" }}\n\n\
         [models.gpt]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"gpt-4o-mini\"\n\
         api_key = \"sk-very-secret\"\nprice = {{ input_per_million = \"0.15\", output_per_million = \"0.60\" }}\n",
        gguf.display().to_string()
    );
    std::fs::write(dir.path().join("bounty.toml"), toml).unwrap();
    let out = bounty(dir.path()).args(["models", "list"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("tiny") && stdout.contains("llama"), "{stdout}");
    assert!(
        stdout.contains("gpt-4o-mini") && stdout.contains("0.150000 USD in"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-very-secret"));
    let out = bounty(dir.path())
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("sk-very-secret"));

    let out = bounty(dir.path())
        .args(["models", "check", "tiny", "--max-tokens", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("loaded in"), "{stdout}");
    assert!(stdout.contains("8 completion"), "{stdout}");
    assert!(stdout.contains("tokens/s generation"), "{stdout}");

    let out = bounty(dir.path())
        .args(["models", "check", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    // A remote model that is down fails the check, naming the model.
    let out = bounty(dir.path())
        .args(["models", "check", "gpt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gpt") && !stderr.contains("sk-very-secret"),
        "{stderr}"
    );
}

/// `bounty credits grant`, `billing set-cap`, `billing show` and `usage`
/// against a real database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_billing_and_usage_commands() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = bounty(dir.path())
            .args(["--database-url", db.url()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, _) = run(&["accounts", "create", "Acme", "--json"]);
    assert!(ok);
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let account = created["account"]["id"].as_str().unwrap().to_owned();
    let (ok, stdout, stderr) = run(&[
        "credits",
        "grant",
        "--account",
        &account,
        "12.5",
        "--memo",
        "pilot",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("balance 12.500 CU"), "{stdout}");
    let (ok, _, stderr) = run(&["credits", "grant", "--account", &account, "0"]);
    assert!(!ok && stderr.contains("positive"), "{stderr}");
    let (ok, stdout, _) = run(&["credits", "show", "--account", &account]);
    assert!(ok && stdout.contains("pilot"), "{stdout}");
    let (ok, _, stderr) = run(&["billing", "set-cap", "--account", &account, "--monthly", "250.00"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = run(&["billing", "show", "--account", &account]);
    assert!(ok && stdout.contains("250.000000 USD"), "{stdout}");
    let (ok, stdout, _) = run(&["usage", "--account", &account, "--group-by", "agent"]);
    assert!(ok && stdout.contains("total"), "{stdout}");
    let (ok, stdout, _) = run(&["usage", "--account", &account, "--json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["total"]["outcomes_resolved"], 0);
    let (ok, _, stderr) = run(&["usage", "--account", "acct_01JD3K8Q9V7Y2X4W6T5R3P1N0M"]);
    assert!(!ok && stderr.contains("no account"), "{stderr}");
    // The account's Stripe customer, subscription and the gateway price
    // on it wait in the outbox.
    let (ok, stdout, _) = run(&["outbox", "list"]);
    assert!(ok && stdout.starts_with("3 pending, 0 failed"), "{stdout}");
    assert!(stdout.contains("stripe_subscription_item"), "{stdout}");
    assert!(stdout.contains("stripe_customer"), "{stdout}");
    assert!(stdout.contains("stripe_subscription"), "{stdout}");
    let (ok, stdout, _) = run(&["outbox", "list", "--json", "--status", "pending"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        list["data"][0]["idempotency_key"],
        format!("stripe_subscription_item:{account}")
    );
    let (ok, _, stderr) = run(&["outbox", "retry", &id]);
    assert!(!ok && stderr.contains("no failed outbox row"), "{stderr}");
}

async fn dashboard_users_are_created_and_reset_from_the_cli(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = bounty(dir.path());
        cmd.arg("--database-url").arg(db.url()).args(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, stdout, _) = run(&["accounts", "create", "Acme", "--json"], None);
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let account = created["account"]["id"].as_str().unwrap().to_owned();
    // A generated password, printed once.
    let (code, stdout, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "Ops@Acme.test",
            "--role",
            "owner",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("ops@acme.test") && stdout.contains("owner"),
        "{stdout}"
    );
    let password = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 20 && !l.contains(' '))
        .unwrap_or_else(|| panic!("no password in {stdout}"));
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    // The same email again, a bad role, a short stdin password: refused.
    let (code, _, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "ops@acme.test",
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("already exists") || stderr.contains("users_email_key"),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "b@acme.test",
            "--role",
            "admin",
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--role"), "{stderr}");
    let (code, _, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "c@acme.test",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("at least 12"), "{stderr}");
    let (code, _, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "c@acme.test",
            "--password-stdin",
        ],
        Some("a-long-enough-password\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    // Listing never shows a password or hash.
    let (_, stdout, _) = run(&["users", "list", "--account", &account, "--json"], None);
    let users: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(!stdout.contains("argon2") && !stdout.contains(password));
    // A reset prints a new password; an unknown user is named.
    let (code, stdout, _) = run(
        &[
            "users",
            "reset-password",
            "--account",
            &account,
            "--email",
            "ops@acme.test",
        ],
        None,
    );
    assert_eq!(code, Some(0));
    assert!(
        !stdout.contains(password) && stdout.contains("New password"),
        "{stdout}"
    );
    let (code, _, stderr) = run(
        &[
            "users",
            "reset-password",
            "--account",
            &account,
            "--email",
            "nobody@acme.test",
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no user nobody@acme.test"), "{stderr}");

    // A viewer is a role like the others.
    let (code, _, stderr) = run(
        &[
            "users",
            "create",
            "--account",
            &account,
            "--email",
            "v@acme.test",
            "--role",
            "viewer",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    // Instead of a password, a one-time link (a dashboard path), found by
    // email alone; and the same for an operator, in its own realm.
    let (code, stdout, stderr) = run(
        &["users", "reset-password", "--email", "ops@acme.test", "--link"],
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let link = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("/password/reset/"))
        .unwrap_or_else(|| panic!("no link in {stdout}"));
    assert_eq!(link.len(), "/password/reset/".len() + 43, "{link}");
    // Each case: the arguments after `users`, the exit code, and what
    // stdout or stderr says.
    fn user<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["users"][..], args].concat()
    }
    for (args, code, says) in [
        (
            user(&["create", "--operator", "--email", "me@bounty.test"]),
            0,
            "Created operator",
        ),
        (
            user(&[
                "reset-password",
                "--operator",
                "--email",
                "me@bounty.test",
                "--link",
            ]),
            0,
            "/ops/password/reset/",
        ),
        (
            user(&["reset-password", "--operator", "--email", "me@bounty.test"]),
            0,
            "New password",
        ),
        (
            user(&[
                "reset-password",
                "--operator",
                "--email",
                "nobody@bounty.test",
                "--link",
            ]),
            1,
            "no operator nobody@bounty.test",
        ),
        // Without --link a user's reset names its account.
        (
            user(&["reset-password", "--email", "ops@acme.test"]),
            2,
            "--account",
        ),
    ] {
        let (got, stdout, stderr) = run(&args, None);
        assert_eq!(got, Some(code), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains(says) || stderr.contains(says),
            "{args:?}: {stdout}{stderr}"
        );
    }
}

/// `bounty outcomes reverse`: the operator's goodwill reversal, with the
/// operator and reason on the receipt; refusals exit 2 naming why.
#[tokio::test]
async fn outcomes_reverse_is_the_operators_goodwill() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::support::migrated_store(&db, std::sync::Arc::new(bounty_core::SystemClock)).await;
    let (account, agent) = crate::support::billing::account_with_agent(&store, Default::default()).await;
    crate::support::stripe::charge_one(&store, account, agent, 0).await;
    let outcome = crate::support::stripe::outcome_ids(&store, account).await[0];
    let run = |args: &[&str]| {
        let out = bounty(dir.path())
            .args(["--database-url", db.url()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (account, outcome) = (account.to_string(), outcome.to_string());
    let reverse = |operator: &str| {
        run(&[
            "outcomes",
            "reverse",
            "--account",
            &account,
            &outcome,
            "--operator",
            operator,
            "--reason",
            "wrong answer",
        ])
    };
    let (code, _, stderr) = reverse("a:b");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--operator"), "{stderr}");
    let (code, stdout, stderr) = reverse("alice");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("resolved -> reversed"), "{stdout}");
    assert!(
        stdout.contains("alice") && stdout.contains("wrong answer"),
        "{stdout}"
    );
    let events = store
        .outcome_events(account.parse().unwrap(), outcome.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        events.last().unwrap().actor,
        Some(bounty_core::Actor::operator("alice").unwrap())
    );
    // Once reversed, it is final.
    let (code, _, stderr) = reverse("alice");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot reverse"), "{stderr}");
}

/// A running `bounty serve --demo` and what its banner said.
struct Demo {
    child: Child,
    base: String,
    /// `http://…/webhooks/in/int_…`.
    inbound: String,
    secret: String,
}

impl Demo {
    /// Starts the demo in `dir` (on Postgres when `url` is given, else on
    /// its default SQLite database in `dir`) and reads its banner.
    fn start(dir: &std::path::Path, url: Option<&str>) -> Demo {
        let mut cmd = bounty(dir);
        if let Some(url) = url {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bounty serve --demo");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        while let Some(Ok(line)) = lines.next() {
            let done = line.starts_with("Send a ticket") || line.contains("is broken");
            banner.push(line);
            if done || banner.len() > 8 {
                break;
            }
        }
        let find = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in the banner: {banner:#?}"))
                .to_owned()
        };
        let base = find("bounty listening on ");
        let hook = find("Send a ticket: POST ");
        let (inbound, rest) = hook.split_once(' ').unwrap();
        let secret = rest
            .trim_start_matches("(Standard Webhooks, secret ")
            .trim_end_matches(')')
            .to_owned();
        Demo {
            child,
            base,
            inbound: inbound.to_owned(),
            secret,
        }
    }

    /// A signed `ticket.created` delivery to the demo integration.
    async fn deliver(&self, ticket: &str) -> reqwest::Response {
        let body = serde_json::json!({
            "type": "ticket.created",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "data": {"ticket_id": ticket, "subject": "After a restart", "body": "Is my order late?"},
        })
        .to_string();
        let headers = bounty_integrations::sign(
            bounty_integrations::IntegrationKind::Standard,
            self.secret.as_bytes(),
            body.as_bytes(),
            &bounty_integrations::Delivery {
                id: &format!("msg_{ticket}"),
                timestamp: chrono::Utc::now(),
            },
        )
        .unwrap();
        let mut request = reqwest::Client::new()
            .post(&self.inbound)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        crate::support::terminate(&mut self.child)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn the_demo_still_verifies_its_deliveries_after_a_restart(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let url = (backend == Backend::Postgres).then(|| db.url().to_owned());
    let dir = tempfile::tempdir().unwrap();
    let first = Demo::start(dir.path(), url.as_deref());
    let resp = first.deliver("RESTART-1").await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    let (inbound, secret) = (first.inbound.clone(), first.secret.clone());
    assert!(first.terminate().success(), "SIGTERM is a clean exit");

    // The demo's master key is kept, readable by its owner only.
    let key_file = dir.path().join("bounty-data/demo-master-key");
    let text = std::fs::read_to_string(&key_file).expect("the demo keeps its master key");
    assert!(text.starts_with("demo:"), "a keyring entry");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // Restarted in the same place: the same integration and secret, which
    // still open, so a signed delivery verifies (it was a 500 before).
    let second = Demo::start(dir.path(), url.as_deref());
    let path = |u: &str| u.split_once("/webhooks/").map(|(_, p)| p.to_owned());
    assert_eq!(path(&second.inbound), path(&inbound));
    assert_eq!(second.secret, secret);
    let resp = second.deliver("RESTART-2").await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    let health = reqwest::get(format!("{}/readyz", second.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(second.terminate().success());
}

/// `bounty.example.toml` is a working configuration: as shipped (every key
/// at its default) and with its example models uncommented.
#[test]
fn the_example_configuration_loads() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bounty.example.toml"))
        .expect("bounty.example.toml at the repository root");
    std::fs::write(dir.path().join("bounty.toml"), &example).unwrap();
    let out = bounty(dir.path())
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The remote examples, uncommented (the local one needs a GGUF file).
    let start = example.find("# [models.gpt-small]").expect("the remote example");
    let models: String = example[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .filter(|l| l.starts_with('[') || l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let head = &example[..example.find("# Models by name").unwrap()];
    std::fs::write(dir.path().join("bounty.toml"), format!("{head}\n{models}")).unwrap();
    let out = bounty(dir.path())
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("gpt-small") && stdout.contains("their-gpt"),
        "{stdout}"
    );
}
