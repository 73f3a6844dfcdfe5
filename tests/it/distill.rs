//! `bounty distill export`, the real binary over a real database: only the
//! verified-resolved traces of one agent of one account, in the window,
//! reach the dataset; the manifest describes the file exactly; bad input
//! exits 2 and an existing file is never clobbered without `--force`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use bounty_core::{
    AccountId, AgentId, AgentName, Decision, ManualClock, ModelRoute, OutcomeType, TaskId, TaskInput,
};
use bounty_store::{AgentPatch, AgentSpec, AttemptEnd, NewTask, Store, TaskOutput};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::billing::{account_with_agent, store_test_policy};
use crate::support::{Backend, TestDatabase};

backend_tests!(
    exports_only_resolved_traces_of_the_agent_in_the_window,
    bad_input_exits_2_and_an_existing_file_is_kept,
);

async fn store_with_clock(db: &TestDatabase, clock: Arc<ManualClock>) -> Store {
    crate::support::migrated_store(db, clock).await
}

/// A system prompt, the customer's question and the assistant's `answer`.
fn chat(answer: &str) -> Value {
    json!([
        {"role": "system", "content": "You are a helpful support agent."},
        {"role": "user", "content": "Subject: Help\n\nMy order is late."},
        {"role": "assistant", "content": answer},
    ])
}

/// Runs one task of `agent` (at `version`) through the real claim and
/// finish path, answered by `model` with `transcript`, and verified with
/// `decision`.
async fn finish(
    store: &Store,
    account: AccountId,
    agent: AgentId,
    version: i32,
    model: &str,
    transcript: Value,
    decision: Decision,
) -> TaskId {
    let new = NewTask {
        agent_id: agent,
        agent_version: version,
        input: TaskInput {
            body: "My order is late.".into(),
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode: bounty_core::ApiKeyMode::Live,
    };
    store.create_task(account, &new).await.unwrap();
    let claimed = store
        .claim_tasks("test", 1, Duration::from_secs(3600))
        .await
        .unwrap()
        .pop()
        .expect("the new task is due");
    let end = AttemptEnd::Completed(TaskOutput {
        handoff: None,
        text: "done".into(),
        errors: None,
        model: model.into(),
        transcript,
        decision,
        verdicts: Vec::new(),
        cache: None,
    });
    assert!(
        bounty_agents::finish::finish_attempt(store, &claimed, &end, &[])
            .await
            .unwrap()
    );
    claimed.task.id
}

/// `bounty --database-url URL distill export ARGS…` in `dir`.
fn export(dir: &Path, url: &str, args: &[&str]) -> Output {
    crate::support::bounty_command(dir)
        .args(["--database-url", url, "distill", "export"])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The dataset's lines, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

async fn exports_only_resolved_traces_of_the_agent_in_the_window(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let now = chrono::Utc::now();
    // Seeded through a store whose clock starts two months ago, so one
    // outcome is decided before the default 30-day window.
    let clock = Arc::new(ManualClock::new(now - chrono::Duration::days(60)));
    let store = store_with_clock(&db, clock.clone()).await;
    let (account, support) = account_with_agent(&store, store_test_policy()).await;
    let old = finish(&store, account, support, 1, "m-big", chat("old"), Decision::Pass).await;
    clock.set(now - chrono::Duration::minutes(5));

    let v1 = finish(&store, account, support, 1, "m-big", chat("v1"), Decision::Pass).await;
    store
        .update_agent(
            account,
            support,
            &AgentPatch {
                instructions: Some("Be brief.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let v2 = finish(&store, account, support, 2, "m-small", chat("v2"), Decision::Pass).await;
    // Resolved, but not a conversation ending with the assistant: skipped.
    let question_only = json!([{"role": "user", "content": "Hello?"}]);
    finish(
        &store,
        account,
        support,
        2,
        "m-small",
        question_only,
        Decision::Pass,
    )
    .await;
    finish(
        &store,
        account,
        support,
        2,
        "m-small",
        Value::Null,
        Decision::Pass,
    )
    .await;
    // A failed outcome with a perfectly good transcript: never exported.
    let failed = finish(
        &store,
        account,
        support,
        2,
        "m-big",
        chat("wrong"),
        Decision::Fail,
    )
    .await;
    // Another agent of the account, and the same agent name in another account.
    let billing = store
        .create_agent(
            account,
            &AgentSpec {
                name: AgentName::parse("billing").unwrap(),
                instructions: "x".into(),
                model_route: ModelRoute::parse(vec!["m".into()]).unwrap(),
                output_schema: None,
                outcome_type: OutcomeType::parse("ticket.resolved").unwrap(),
                verifier_policy: store_test_policy(),
                params: Default::default(),
                routing: Default::default(),
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
            },
        )
        .await
        .unwrap();
    let other_agent = finish(&store, account, billing.id, 1, "m-big", chat("b"), Decision::Pass).await;
    let (other_account, their_support) = account_with_agent(&store, store_test_policy()).await;
    let other_tenant = finish(
        &store,
        other_account,
        their_support,
        1,
        "m-big",
        chat("theirs"),
        Decision::Pass,
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let out = export(
        dir.path(),
        db.url(),
        &[
            "--account",
            &account.to_string(),
            "--agent",
            "support",
            "--out",
            "traces.jsonl",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("traces.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest, on_disk, "--json prints the manifest it wrote");

    let path = dir.path().join("traces.jsonl");
    let records = lines(&path);
    let exported: BTreeSet<String> = records
        .iter()
        .map(|r| r["metadata"]["task_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        exported,
        BTreeSet::from([v1.to_string(), v2.to_string()]),
        "absent: old {old}, failed {failed}, other agent {other_agent}, other account {other_tenant}"
    );
    for r in &records {
        let messages = r["messages"].as_array().unwrap();
        assert_eq!(messages.last().unwrap()["role"], "assistant", "{r}");
        assert_eq!(messages.len(), 3, "{r}");
        let task: TaskId = r["metadata"]["task_id"].as_str().unwrap().parse().unwrap();
        let outcome = store.outcome_of_task(account, task).await.unwrap().unwrap();
        assert_eq!(r["metadata"]["outcome_id"], outcome.id.to_string());
        let decided: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(r["metadata"]["decided_at"].clone()).unwrap();
        assert_eq!(Some(decided), outcome.decided_at);
    }
    let v2_line = records
        .iter()
        .find(|r| r["metadata"]["task_id"] == v2.to_string())
        .unwrap();
    assert_eq!(v2_line["metadata"]["agent_version"], 2);
    assert_eq!(v2_line["metadata"]["model"], "m-small");
    assert_eq!(v2_line["messages"][2]["content"], "v2");

    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(manifest["format"], "bounty.distill.v1");
    assert_eq!(manifest["account_id"], account.to_string());
    assert_eq!(manifest["agent_id"], support.to_string());
    assert_eq!(manifest["agent_name"], "support");
    assert_eq!(manifest["records"], 2);
    assert_eq!(
        manifest["skipped"],
        json!({"last_not_assistant": 1, "not_messages": 1})
    );
    assert_eq!(manifest["models"], json!({"m-big": 1, "m-small": 1}));
    assert_eq!(manifest["agent_versions"], json!({"1": 1, "2": 1}));
    assert_eq!(manifest["bytes"], bytes.len());
    assert_eq!(
        manifest["sha256"],
        format!("{:x}", Sha256::digest(&bytes)),
        "the manifest's hash is the file's"
    );
    let names: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["traces.jsonl".to_owned(), "traces.manifest.json".to_owned()]),
        "no temporary file is left behind"
    );

    // The window is what left the old one out.
    let since = (now - chrono::Duration::days(90)).to_rfc3339();
    let out = export(
        dir.path(),
        db.url(),
        &[
            "--account",
            &account.to_string(),
            "--agent",
            "support",
            "--since",
            &since,
            "--out",
            "all.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("exported 3 traces of agent support"),
        "{summary}"
    );
    let all: BTreeSet<String> = lines(&dir.path().join("all.jsonl"))
        .iter()
        .map(|r| r["metadata"]["task_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        all,
        BTreeSet::from([old.to_string(), v1.to_string(), v2.to_string()])
    );

    // Without --out: ./distill-NAME-DATE.jsonl and its manifest.
    let fresh = tempfile::tempdir().unwrap();
    let out = export(
        fresh.path(),
        db.url(),
        &["--account", &account.to_string(), "--agent", "support"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = std::fs::read_dir(fresh.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("distill-support-20") && n.ends_with(".jsonl")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".manifest.json")), "{names:?}");
}

async fn bad_input_exits_2_and_an_existing_file_is_kept(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let clock = Arc::new(ManualClock::new(
        chrono::Utc::now() - chrono::Duration::minutes(5),
    ));
    let store = store_with_clock(&db, clock).await;
    let (account, support) = account_with_agent(&store, store_test_policy()).await;
    finish(&store, account, support, 1, "m", chat("fine"), Decision::Pass).await;
    let account = account.to_string();
    let dir = tempfile::tempdir().unwrap();

    // (flags, what the message must name)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--account",
                &account,
                "--agent",
                "support",
                "--since",
                "yesterday",
            ],
            "--since",
        ),
        (
            vec![
                "--account",
                &account,
                "--agent",
                "support",
                "--until",
                "2026-13-01T00:00:00Z",
            ],
            "--until",
        ),
        (
            vec![
                "--account",
                &account,
                "--agent",
                "support",
                "--since",
                "2026-02-01T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
            "--since",
        ),
        (
            vec![
                "--account",
                "acct_01JD3K8Q9V7Y2X4W6T5R3P1N0M",
                "--agent",
                "support",
            ],
            "--account",
        ),
        (vec!["--account", &account, "--agent", "nobody"], "--agent"),
    ];
    for (args, flag) in cases {
        let out = export(dir.path(), db.url(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a refused export writes nothing"
    );

    let path = dir.path().join("traces.jsonl");
    std::fs::write(&path, "keep me\n").unwrap();
    let args = [
        "--account",
        &account,
        "--agent",
        "support",
        "--out",
        "traces.jsonl",
    ];
    let out = export(dir.path(), db.url(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me\n");
    assert!(!dir.path().join("traces.manifest.json").exists());

    let forced = [&args[..], &["--force"]].concat();
    let out = export(dir.path(), db.url(), &forced);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&path).len(), 1, "--force replaces the file");
    assert!(dir.path().join("traces.manifest.json").exists());
}
