//! Workers: claim tasks, run them, finish them. Safe to run in any number
//! of processes against one database.
//!
//! Each claimed task runs in its own tokio task under a lease that a
//! heartbeat renews every third of the lease. If the heartbeat finds the
//! lease lost (this worker stalled past its expiry and another claimed the
//! task), the attempt is abandoned without writing anything but the model
//! calls it paid for. If the process dies, the lease simply expires and
//! another worker claims the task again; the fenced finish makes sure only
//! one attempt ever completes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bounty_core::{AgentId, VerificationPolicy, retry_delay};
use bounty_models::router::{Overrides, Router};
use bounty_models::{Message, ProviderError, Role};
use bounty_store::{AttemptEnd, ClaimedTask, NewModelCall, Store, StoreError, TaskError, TaskOutput};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::prompt;
use crate::schema::OutputSchema;
use crate::verify::{self, VerifyInput};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in leases and attempts (`host:pid:…`).
    pub id: String,
    /// Tasks run at once.
    pub concurrency: u32,
    /// How long a claim lasts without renewal; a crashed worker's tasks
    /// are claimed again after this.
    pub lease: Duration,
    /// How often an idle worker looks for due tasks.
    pub poll_interval: Duration,
    /// Base of the jittered exponential backoff between attempts.
    pub retry_base: Duration,
    /// Cap of that backoff.
    pub retry_max: Duration,
    /// On shutdown, how long running tasks may take to finish. Tasks still
    /// running then are left to their leases.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// A worker id unique to this process and call.
    pub fn default_id() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".to_owned());
        let suffix = bounty_core::id::new_ulid().to_string();
        format!("{host}:{}:{}", std::process::id(), &suffix[suffix.len() - 6..])
    }
}

/// An agent version, prepared to run: versions never change, so this is
/// cached for the life of the worker.
struct PreparedAgent {
    instructions: String,
    route: Vec<String>,
    schema: Option<(serde_json::Value, OutputSchema)>,
    overrides: Overrides,
    policy: VerificationPolicy,
}

const AGENT_CACHE_MAX: usize = 1024;

struct Inner {
    store: Store,
    router: Router,
    config: WorkerConfig,
    agents: Mutex<HashMap<(AgentId, i32), Arc<PreparedAgent>>>,
}

/// A worker; `run` it until cancelled.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
    wake: Arc<Notify>,
}

enum Prepared {
    Ready(Arc<PreparedAgent>),
    /// The task can never run: fail it.
    Invalid(TaskError),
}

impl Worker {
    pub fn new(store: Store, router: Router, config: WorkerConfig) -> Self {
        Worker {
            inner: Arc::new(Inner {
                store,
                router,
                config,
                agents: Mutex::new(HashMap::new()),
            }),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker when notified (the server notifies on every new
    /// task), instead of waiting for the next poll.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Claims and runs tasks until `cancel`, then lets running tasks finish
    /// within the shutdown grace.
    pub async fn run(self, cancel: CancellationToken) {
        let config = &self.inner.config;
        let concurrency = config.concurrency.max(1);
        tracing::info!(worker = %config.id, concurrency, lease_ms = config.lease.as_millis() as u64, "worker started");
        let mut running: JoinSet<()> = JoinSet::new();
        let mut next_sweep = tokio::time::Instant::now();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep = tokio::time::Instant::now() + config.poll_interval;
                match self.inner.store.fail_expired_tasks().await {
                    Ok(failed) => {
                        for (account, task) in failed {
                            tracing::warn!(account.id = %account, task.id = %task, "task failed: its lease expired with no attempts left");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not sweep expired leases"),
                }
                match self.inner.store.lapse_outcomes(100).await {
                    Ok(lapsed) => {
                        for (account, outcome) in lapsed {
                            tracing::info!(account.id = %account, outcome.id = %outcome, "outcome window lapsed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not lapse outcome windows"),
                }
            }
            let free = concurrency.saturating_sub(running.len() as u32);
            let mut store_down = false;
            if free > 0 {
                match self.inner.store.claim_tasks(&config.id, free, config.lease).await {
                    Ok(claimed) => {
                        for task in claimed {
                            let worker = self.clone();
                            running.spawn(async move { worker.run_one(task).await });
                        }
                    }
                    Err(e) => {
                        store_down = true;
                        tracing::warn!(error = %e, "could not claim tasks; retrying after the poll interval");
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Err(e) = joined && e.is_panic() {
                        tracing::error!(error = %e, "a task runner panicked; its lease will expire and the task will be retried");
                    }
                }
                _ = self.wake.notified(), if !store_down => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
        }
        tracing::info!(worker = %config.id, running = running.len(), "worker stopping");
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                worker = %config.id,
                abandoned = running.len(),
                "shutdown grace elapsed; abandoning running tasks to their leases"
            );
            running.abort_all();
        }
        tracing::info!(worker = %config.id, "worker stopped");
    }

    /// Runs one claimed task to the end of its attempt.
    pub async fn run_one(&self, claimed: ClaimedTask) {
        let span = tracing::info_span!(
            "task",
            account.id = %claimed.task.account_id,
            task.id = %claimed.task.id,
            attempt = claimed.attempt,
            worker = %self.inner.config.id,
        );
        self.attempt(claimed).instrument(span).await
    }

    async fn attempt(&self, claimed: ClaimedTask) {
        let inner = &self.inner;
        tracing::info!("attempt started");
        let agent = match self.prepare(&claimed).await {
            Ok(Prepared::Ready(agent)) => agent,
            Ok(Prepared::Invalid(error)) => {
                self.finish(&claimed, AttemptEnd::Failed(error), &[]).await;
                return;
            }
            Err(e) => {
                // The database is unreachable: leave the task to its lease.
                tracing::warn!(error = %e, "could not load the agent; the task will be retried when its lease expires");
                return;
            }
        };
        let messages = prompt::build(
            &agent.instructions,
            agent.schema.as_ref().map(|(v, _)| v),
            &claimed.task.input,
        );
        let route = inner.router.generate(
            &agent.route,
            &messages,
            agent.overrides,
            agent.schema.as_ref().map(|(v, _)| v),
        );
        // The model, then the verifiers, all under the renewed lease.
        let work = async {
            let result = route.await;
            let mut calls: Vec<NewModelCall> = result.calls.iter().map(to_new_call).collect();
            let end = match result.result {
                Ok(routed) => {
                    let text = routed.generation.text;
                    let compiled = agent.schema.as_ref().map(|(_, s)| s);
                    let errors = compiled.map(|s| s.violations(&text));
                    if let Some(errors) = &errors
                        && !errors.is_empty()
                    {
                        tracing::warn!(
                            violations = errors.len(),
                            "output does not match the agent's schema"
                        );
                    }
                    tracing::info!(
                        model = %routed.model,
                        prompt_tokens = routed.generation.usage.prompt_tokens,
                        completion_tokens = routed.generation.usage.completion_tokens,
                        "agent produced its output"
                    );
                    let input = VerifyInput {
                        output: &text,
                        output_schema: compiled,
                        task: &claimed.task.input,
                        instructions: &agent.instructions,
                    };
                    let run = verify::run_policy(&agent.policy, &input, &inner.router).await;
                    tracing::info!(decision = %run.decision, verdicts = run.verdicts.len(), "output verified");
                    calls.extend(run.judge_calls.iter().map(to_new_call));
                    let mut transcript = messages.clone();
                    transcript.push(Message::new(Role::Assistant, text.clone()));
                    AttemptEnd::Completed(TaskOutput {
                        text,
                        errors,
                        model: routed.model,
                        transcript: serde_json::to_value(&transcript).expect("messages serialize"),
                        decision: run.decision,
                        verdicts: run.verdicts,
                    })
                }
                Err(error) => self.failure(&claimed, &error),
            };
            (end, calls)
        };
        let (end, calls) = tokio::select! {
            done = work => done,
            () = self.hold_lease(&claimed) => {
                tracing::warn!("lease lost while the task was running; abandoning this attempt");
                return;
            }
        };
        self.finish(&claimed, end, &calls).await;
    }

    fn failure(&self, claimed: &ClaimedTask, error: &ProviderError) -> AttemptEnd {
        let config = &self.inner.config;
        let task_error = TaskError {
            code: error.code().to_owned(),
            message: error.to_string(),
        };
        if error.is_transient() && claimed.attempt < claimed.task.max_attempts {
            let delay = retry_delay(
                claimed.attempt.max(1) as u32,
                config.retry_base,
                config.retry_max,
                bounty_core::random_unit(),
            );
            tracing::warn!(code = error.code(), %error, retry_in_ms = delay.as_millis() as u64, "attempt failed; will retry");
            let run_at = self.inner.store.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            AttemptEnd::Retry {
                error: task_error,
                run_at,
            }
        } else {
            tracing::warn!(code = error.code(), %error, "task failed");
            AttemptEnd::Failed(task_error)
        }
    }

    /// Writes the end of the attempt with its model calls, retrying a few times through a
    /// database blip; if it still cannot, the lease expires and the task is
    /// attempted again.
    async fn finish(&self, claimed: &ClaimedTask, end: AttemptEnd, calls: &[NewModelCall]) {
        match retrying(|| self.inner.store.finish_attempt(claimed, &end, calls)).await {
            Ok(true) => tracing::info!(outcome = outcome_name(&end), "attempt finished"),
            Ok(false) => {
                tracing::warn!("lease lost before the attempt finished; another worker owns the task now")
            }
            Err(e) => {
                tracing::error!(error = %e, "could not finish the attempt; it will run again after its lease expires")
            }
        }
    }

    /// Renews the lease every third of its length; returns when it is lost.
    async fn hold_lease(&self, claimed: &ClaimedTask) {
        let lease = self.inner.config.lease;
        let every = (lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            match self.inner.store.renew_lease(claimed, lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "could not renew the lease; will try again"),
            }
        }
    }

    async fn prepare(&self, claimed: &ClaimedTask) -> Result<Prepared, StoreError> {
        let key = (claimed.task.agent_id, claimed.task.agent_version);
        if let Some(agent) = self.inner.agents.lock().expect("agent cache lock").get(&key) {
            return Ok(Prepared::Ready(Arc::clone(agent)));
        }
        let agent = self
            .inner
            .store
            .get_agent(
                claimed.task.account_id,
                claimed.task.agent_id,
                Some(claimed.task.agent_version),
            )
            .await?;
        let Some(agent) = agent else {
            return Ok(Prepared::Invalid(TaskError {
                code: "agent_not_found".to_owned(),
                message: format!(
                    "agent {} version {} does not exist",
                    claimed.task.agent_id, claimed.task.agent_version
                ),
            }));
        };
        let schema = match agent.output_schema {
            None => None,
            Some(value) => match OutputSchema::compile(&value) {
                Ok(compiled) => Some((value, compiled)),
                Err(e) => {
                    return Ok(Prepared::Invalid(TaskError {
                        code: "invalid_output_schema".to_owned(),
                        message: format!("the agent's output schema {e}"),
                    }));
                }
            },
        };
        let prepared = Arc::new(PreparedAgent {
            instructions: agent.instructions,
            route: agent.model_route,
            schema,
            overrides: Overrides {
                max_tokens: agent.params.max_tokens,
                temperature: agent.params.temperature,
                seed: agent.params.seed,
            },
            policy: agent.verifier_policy,
        });
        let mut cache = self.inner.agents.lock().expect("agent cache lock");
        if cache.len() >= AGENT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&prepared));
        Ok(Prepared::Ready(prepared))
    }
}

fn outcome_name(end: &AttemptEnd) -> &'static str {
    match end {
        AttemptEnd::Completed(_) => "completed",
        AttemptEnd::Retry { .. } => "retry",
        AttemptEnd::Failed(_) => "failed",
    }
}

fn to_new_call(call: &bounty_models::CallRecord) -> NewModelCall {
    NewModelCall {
        model: call.model.clone(),
        provider: call.provider.map(|p| p.as_str().to_owned()),
        prompt_tokens: i64::try_from(call.usage.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(call.usage.completion_tokens).unwrap_or(i64::MAX),
        latency_us: i64::try_from(call.latency.as_micros()).unwrap_or(i64::MAX),
        cost_micros: call.cost.micros,
        currency: call.cost.currency.as_str().to_owned(),
        cache_hit: call.cache_hit,
        byok: call.byok,
        error: call.error.as_ref().map(|e| TaskError {
            code: e.code().to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Runs a store write up to 3 times while the database is unavailable.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut wait = Duration::from_millis(100);
    for _ in 0..2 {
        match op().await {
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable; retrying");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
            other => return other,
        }
    }
    op().await
}
