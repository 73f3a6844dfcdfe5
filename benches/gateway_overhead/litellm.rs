//! The LiteLLM proxy, the peer Bounty is compared with, run as its docs
//! say: a `config.yaml` with one `model_list` entry pointing at the same
//! fake upstream, and `litellm --config config.yaml --port PORT` as a child
//! process. It has a master key (random per run; LiteLLM refuses to start
//! without one) and no database, so LiteLLM runs in its lightest mode: no
//! virtual keys, spend logs or budgets (Bounty does all three).
//!
//! The proxy's defaults are kept (one uvicorn worker). One environment
//! variable is set, `LITELLM_LOCAL_MODEL_COST_MAP=True`, so that startup
//! reads the cost map shipped with the package instead of fetching it from
//! GitHub (this machine may have no network). Its output goes to a log file
//! in the temp dir, and the process group is ended when the bench ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

/// How long the proxy may take to answer `/health/liveliness`.
const STARTUP: Duration = Duration::from_secs(180);

/// The `litellm` executable: on `PATH`, or pyenv's shim.
pub fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("litellm"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let shim = PathBuf::from("/root/.pyenv/shims/litellm");
        shim.is_file().then_some(shim)
    })
}

/// The running proxy; dropping it ends the process group.
pub struct LiteLlm {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base: String,
    /// The master key, the bearer of every request.
    pub key: String,
    pub version: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        // The child leads its own process group (see `start`): end the
        // group, so uvicorn's workers go too.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// `litellm --version`, first line.
fn version(exe: &Path) -> String {
    Command::new(exe)
        .arg("--version")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.contains("Version"))
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// Starts the proxy in front of `upstream` (`http://…/v1`) and waits
/// until it is live.
pub fn start(rt: &Handle, exe: &Path, upstream: &str) -> Result<LiteLlm, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let config = dir.path().join("config.yaml");
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| format!("random master key: {e}"))?;
    let key: String = std::iter::once("sk-".to_owned())
        .chain(secret.iter().map(|b| format!("{b:02x}")))
        .collect();
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: upstream\n    litellm_params:\n      model: openai/upstream\n      api_base: {upstream}\n      api_key: sk-fake\ngeneral_settings:\n  master_key: {key}\n"
        ),
    )
    .map_err(|e| format!("write config: {e}"))?;
    let log = dir.path().join("litellm.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
    let port = free_port();
    let version = version(exe);
    let mut command = Command::new(exe);
    command
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
    let mut proxy = LiteLlm {
        child,
        base: format!("http://127.0.0.1:{port}/v1"),
        key,
        version,
        log,
        _dir: dir,
    };
    let health = format!("http://127.0.0.1:{port}/health/liveliness");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            return Err(format!(
                "litellm exited ({status}) before it was live; its log ends:\n{}",
                log_tail(&proxy.log)
            ));
        }
        let live = rt.block_on(async {
            client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        if live {
            return Ok(proxy);
        }
        if started.elapsed() > STARTUP {
            return Err(format!(
                "litellm not live after {STARTUP:?}; its log ends:\n{}",
                log_tail(&proxy.log)
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The last lines of the proxy's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
