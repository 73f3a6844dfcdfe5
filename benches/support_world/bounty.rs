//! Bounty as a customer runs it: the real `bounty` binary, `serve
//! --no-worker` for the API and separate `bounty worker` processes (which
//! the kill runs SIGKILL), over a SQLite file or a Postgres database, with
//! a bounty.toml naming the skill models, the tiny local llama and
//! `[tools] allow_private` (the shop is on 127.0.0.1). Its logs go to a
//! file in the run's directory, shown when something fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Settings of a run's bounty.toml.
pub struct Settings<'a> {
    pub models_url: &'a str,
    pub gguf: Option<&'a Path>,
    pub concurrency: u32,
    pub lease_ms: u64,
    /// Hybrid retrieval: `[knowledge] embedding_model` on the skill
    /// server's `/v1/embeddings` (a build without it refuses the key).
    pub embeddings: bool,
}

/// Writes `dir/bounty.toml`.
pub fn write_config(dir: &Path, s: &Settings<'_>) {
    let master = format!("{:064x}", 0x5eed_u128);
    let local = s.gguf.map_or(String::new(), |path| {
        format!(
            "\n[models.tiny]\nprovider = \"llama\"\npath = \"{}\"\ncontext_size = 8192\nthreads = 1\n\
             defaults = {{ max_tokens = 96, temperature = 0.0, seed = 0 }}\n\
             price = {{ per_cpu_second = \"0.00002\" }}\n",
            path.display()
        )
    });
    let embeddings = if s.embeddings {
        format!(
            "\n[embeddings.bench]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"bench-embed\"\n\
             api_key = \"sk-bench\"\nbatch = 64\nmax_retries = 0\n\n[knowledge]\nembedding_model = \"bench\"\n",
            s.models_url
        )
    } else {
        String::new()
    };
    let toml = format!(
        r#"[log]
level = "warn"

[worker]
in_serve = false
concurrency = {concurrency}
lease_ms = {lease}
poll_interval_ms = 10
max_attempts = 8
retry_base_ms = 50
retry_max_ms = 400
shutdown_grace_ms = 10000

[tools]
allow_private = true

[secrets]
master_keys = "bench:{master}"

[models.support-llm]
provider = "openai"
base_url = "{url}"
model = "support-llm"
api_key = "sk-bench"
request_timeout_ms = 30000
max_retries = 0
price = {{ input_per_million = "2.50", output_per_million = "10.00" }}
{local}{embeddings}"#,
        concurrency = s.concurrency,
        lease = s.lease_ms,
        url = s.models_url,
    );
    std::fs::write(dir.join("bounty.toml"), toml).expect("write bounty.toml");
}

/// The `bounty` binary in `dir`, with no stray configuration from the
/// machine, logging to `dir/bounty.log`.
fn bounty(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bounty"));
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BOUNTY_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("BOUNTY_") && k.contains("__") {
            cmd.env_remove(k);
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("bounty.log"))
        .expect("open bounty.log");
    cmd.stderr(log);
    cmd
}

/// The last lines of the run's log.
pub fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("bounty.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs a one-shot command; its stdout, or the error with the log.
fn once(dir: &Path, db: &str, args: &[&str]) -> Result<String, String> {
    let out = bounty(dir)
        .args(["--database-url", db])
        .args(args)
        .output()
        .map_err(|e| format!("spawn bounty: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("bounty {args:?} failed: {}", log_tail(dir)))
    }
}

/// Migrates the database and creates the bench's account: its API key.
pub fn account(dir: &Path, db: &str) -> Result<(String, String), String> {
    once(dir, db, &["migrate"])?;
    let out = once(dir, db, &["accounts", "create", "Support World", "--json"])?;
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("accounts create --json: {e}"))?;
    let key = v["api_key"]["secret"]
        .as_str()
        .ok_or("no api_key.secret")?
        .to_owned();
    let account = v["account"]["id"].as_str().ok_or("no account.id")?.to_owned();
    Ok((account, key))
}

/// A child process, killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Spawns `args` and returns it with its first stdout line; the rest
    /// of its stdout is drained in the background.
    fn spawn(dir: &Path, db: &str, args: &[&str]) -> Result<(Proc, String), String> {
        let mut child = bounty(dir)
            .args(["--database-url", db])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn bounty: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        std::thread::spawn(move || for _ in stdout.lines() {});
        if line.is_empty() {
            return Err(format!("bounty {args:?} exited: {}", log_tail(dir)));
        }
        Ok((Proc { child }, line.trim().to_owned()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to 30 s (then SIGKILL).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        for _ in 0..600 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_hard();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// `bounty serve --no-worker` on a free port: the process and its base URL.
pub fn serve(dir: &Path, db: &str) -> Result<(Proc, String), String> {
    let (proc, line) = Proc::spawn(dir, db, &["serve", "--no-worker", "--listen", "127.0.0.1:0"])?;
    let base = line
        .strip_prefix("bounty listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok((proc, base))
}

/// `bounty worker`.
pub fn worker(dir: &Path, db: &str) -> Result<Proc, String> {
    let (proc, line) = Proc::spawn(dir, db, &["worker"])?;
    if line.starts_with("bounty worker ") {
        Ok(proc)
    } else {
        Err(format!("unexpected first line {line:?}"))
    }
}

/// The API with the account's key.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

/// The tiny llama: stories260K where the machine keeps it, else a
/// generated random-weight one in `dir`.
pub fn tiny_llama(dir: &Path) -> (PathBuf, &'static str) {
    match bounty_models::tiny_gguf::stories260k() {
        Some(path) => (path, "stories260K"),
        None => (
            bounty_models::tiny_gguf::write_tiny_llama(dir).expect("write the tiny llama"),
            "generated tiny llama",
        ),
    }
}
