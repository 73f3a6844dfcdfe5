//! Real `bounty worker` processes: several on one Postgres never run one
//! task at the same time, and a worker killed mid-task leaves the task to
//! be completed, exactly once, by another.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use bounty_core::TaskStatus;
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_store::TaskFilter;

use crate::support::{Backend, TestApp, TestOptions};

backend_tests!(
    a_worker_killed_mid_task_leaves_it_to_another_exactly_once,
    sigterm_lets_a_running_task_finish_then_exits_cleanly,
);

/// A running `bounty worker`; killed on drop.
struct WorkerProcess {
    child: Child,
    id: String,
}

/// Writes a bounty.toml with one remote model at `fake` and fast worker
/// settings into `dir`.
fn write_config(dir: &std::path::Path, fake: &FakeOpenAi, lease_ms: u64) {
    let toml = format!(
        r#"
[log]
level = "warn"

[worker]
in_serve = false
concurrency = 4
lease_ms = {lease_ms}
poll_interval_ms = 50
retry_base_ms = 50
retry_max_ms = 200
shutdown_grace_ms = 5000

[models.fake]
provider = "openai"
base_url = "{}"
model = "fake-gpt"
api_key = "sk-test"
request_timeout_ms = 60000
max_retries = 0
price = {{ input_per_million = "0.15", output_per_million = "0.60" }}
"#,
        fake.base_url()
    );
    std::fs::write(dir.join("bounty.toml"), toml).unwrap();
}

impl WorkerProcess {
    fn start(dir: &std::path::Path, url: &str) -> WorkerProcess {
        let mut cmd = crate::support::bounty_command(dir);
        cmd.env_remove("RUST_LOG")
            .args(["--database-url", url, "worker"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn bounty worker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the started line");
        let id = line
            .strip_prefix("bounty worker ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        WorkerProcess { child, id }
    }

    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        crate::support::terminate(&mut self.child)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API (no worker of its own) over a fresh database, knowing `fake`.
async fn spawn(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    TestApp::spawn_with(backend, TestOptions::remote_models(&[("fake", &fake.base_url())])).await
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three worker processes on one Postgres work 40 tasks: every task is
/// completed, each model request is made once, and no task is ever in
/// flight twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_worker_processes_never_run_a_task_twice() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::Delay(Duration::from_millis(30)));
    let app = spawn(Backend::Postgres, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake, 10_000);
    app.agent(&key, "support", &["fake"], None).await;
    const N: usize = 40;
    for i in 0..N {
        app.task(&key, "support", &format!("ticket number {i}")).await;
    }
    let workers: Vec<WorkerProcess> = (0..3)
        .map(|_| WorkerProcess::start(dir.path(), app.database_url()))
        .collect();
    let filter = TaskFilter {
        status: Some(TaskStatus::Completed),
        ..Default::default()
    };
    wait_until("every task to complete", Duration::from_secs(60), async || {
        let page = app
            .store
            .list_tasks(account, &filter, bounty_core::PageLimit::new(100).unwrap(), None)
            .await
            .unwrap();
        page.items.len() == N
    })
    .await;
    for w in workers {
        assert!(w.terminate().success());
    }
    assert_eq!(
        fake.max_in_flight_per_prompt(),
        1,
        "a task was in flight twice at once"
    );
    let mut per_prompt = std::collections::HashMap::new();
    for r in fake.requests() {
        *per_prompt
            .entry(r.last_user_message().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(per_prompt.len(), N);
    assert!(
        per_prompt.values().all(|&n| n == 1),
        "a task ran twice: {per_prompt:?}"
    );
    let all = app
        .store
        .list_tasks(
            account,
            &TaskFilter::default(),
            bounty_core::PageLimit::new(100).unwrap(),
            None,
        )
        .await
        .unwrap();
    let mut by_worker = std::collections::HashMap::new();
    for t in &all.items {
        assert_eq!(t.attempts, 1, "task {} took {} attempts", t.id, t.attempts);
        let attempts = app.store.task_attempts(account, t.id).await.unwrap();
        *by_worker.entry(attempts[0].worker.clone()).or_insert(0) += 1;
    }
    assert!(
        by_worker.len() >= 2,
        "the work was shared between processes: {by_worker:?}"
    );
}

async fn a_worker_killed_mid_task_leaves_it_to_another_exactly_once(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    // The first worker's model call never returns: it dies mid-task.
    fake.push(Behavior::Hang);
    let app = spawn(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake, 1_500);
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "please help").await;
    let id = task["id"].as_str().unwrap().to_owned();

    let mut first = WorkerProcess::start(dir.path(), app.database_url());
    wait_until(
        "the first worker to call the model",
        Duration::from_secs(30),
        async || fake.request_count() == 1,
    )
    .await;
    first.kill_hard();
    let second = WorkerProcess::start(dir.path(), app.database_url());
    let done = app.wait_for_task(&key, &id, Duration::from_secs(30)).await;
    assert!(second.terminate().success());

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"]["text"], "Subject: Help\n\nplease help",
        "the echo of the ticket"
    );
    assert_eq!(done["attempts"], 2);
    let history = done["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["worker"], first.id.as_str());
    assert_eq!(history[0]["outcome"], "lease_expired");
    assert_eq!(history[1]["outcome"], "completed");
    assert_ne!(history[1]["worker"], history[0]["worker"]);
    // The killed worker never recorded its call; the live one did, once.
    let calls = done["model_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["attempt"], 2);
    assert_eq!(fake.request_count(), 2);
}

async fn sigterm_lets_a_running_task_finish_then_exits_cleanly(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    // The model takes 1.5 s: the signal arrives while it works.
    fake.set_default(Behavior::Delay(Duration::from_millis(1500)));
    let app = spawn(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake, 10_000);
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "slow one").await;
    let worker = WorkerProcess::start(dir.path(), app.database_url());
    wait_until(
        "the worker to call the model",
        Duration::from_secs(30),
        async || fake.request_count() == 1,
    )
    .await;
    let id = worker.id.clone();
    let status = worker.terminate();
    assert!(status.success(), "a clean exit: {status:?}");
    // The task finished before the process exited, in its first attempt.
    let done = app.get_task(&key, task["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["attempt_history"][0]["worker"], id.as_str());
    assert_eq!(done["outcome"]["status"], "resolved");
}
