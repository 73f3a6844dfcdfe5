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

use bounty_core::{
    AccountId, AgentId, Decision, KnowledgeSourceId, Money, RoutingPolicy, VerificationPolicy, cache_key,
    retry_delay,
};
use bounty_models::router::{Overrides, Router};
use bounty_models::{ByokKey, Embedder, Message, ProviderError, Role, ToolDefinition};
use bounty_outbound::{Outbound, OutboundPolicy};
use bounty_store::{
    AttemptEnd, CacheUse, ClaimedTask, NewModelCall, NewToolCall, Store, StoreError, Task, TaskError,
    TaskOutput, ToolCallOutcome, byok_sealing_aad,
};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::knowledge::{Retrieval, retrieve};
use crate::prompt;
use crate::schema::OutputSchema;
use crate::tools::PreparedTool;
use crate::turn::{self, TurnContext, TurnEnd};
use crate::verify::{self, PolicyRun, VerifyInput};

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
    /// How often the worker bills gateway calls made at cost plus markup
    /// (`bounty_billing::gateway`): each sweep writes one ledger line per
    /// account and batch of calls.
    pub gateway_bill_interval: Duration,
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
    routing: RoutingPolicy,
    /// Its tools, opened and compiled.
    tools: Vec<PreparedTool>,
    /// What the model is offered: the tools, then `handoff` when allowed.
    definitions: Vec<ToolDefinition>,
    /// The knowledge sources it may search.
    knowledge: Vec<KnowledgeSourceId>,
    max_steps: u32,
    /// Whether it may hand a conversation to a person.
    handoff: bool,
}

impl PreparedAgent {
    /// Whether its answers depend on live systems, so are neither cached
    /// nor replayed by a shadow (which would call its tools again).
    fn acts(&self) -> bool {
        !self.tools.is_empty()
    }
}

/// An output and what the verifiers made of it.
struct Answer {
    text: String,
    /// Schema violations; `None` without a schema.
    errors: Option<Vec<String>>,
    model: String,
    run: PolicyRun,
    /// Why the conversation goes to a person, when it does.
    handoff: Option<String>,
    /// The messages the turn added after the prompt (tool calls and
    /// their results, then the answer).
    added: Vec<Message>,
}

/// The `model` a gateway task's reported output is recorded under.
pub const GATEWAY_MODEL: &str = "gateway";

/// Chunks put in the prompt per turn.
const KNOWLEDGE_TOP_K: usize = 5;

const AGENT_CACHE_MAX: usize = 1024;

struct Inner {
    store: Store,
    router: Router,
    config: WorkerConfig,
    agents: Mutex<HashMap<(AgentId, i32), Arc<PreparedAgent>>>,
    /// Shadow runs in flight, at most `concurrency`.
    shadow_slots: Arc<Semaphore>,
}

/// Opens a secret sealed with the master keys: `(sealed, associated
/// data)` → the plaintext, or `None` when it does not open. The binary
/// wires it to the keyring, so this crate never holds the keys.
pub type OpenSecret = Arc<dyn Fn(&str, &[u8]) -> Option<String> + Send + Sync>;

/// A worker; `run` it until cancelled.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
    wake: Arc<Notify>,
    /// Opens accounts' own (BYOK) keys and tools' sealed headers; without
    /// it BYOK models fail and sealed headers do not open.
    open_secret: Option<OpenSecret>,
    /// Agents' tools call out through it; without it every tool call is
    /// refused.
    outbound: Option<Arc<Outbound>>,
    /// The embedding model knowledge is searched with (`[knowledge]
    /// embedding_model`); without it retrieval is keyword only.
    embedder: Option<Arc<Embedder>>,
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
                shadow_slots: Arc::new(Semaphore::new(config.concurrency.max(1) as usize)),
                config,
                agents: Mutex::new(HashMap::new()),
            }),
            wake: Arc::new(Notify::new()),
            open_secret: None,
            outbound: Outbound::new(OutboundPolicy::default()).ok().map(Arc::new),
            embedder: None,
        }
    }

    /// Agents' tools call out under `policy` (`[tools] allow_private`,
    /// caps). Without this call the default policy applies: private
    /// addresses refused.
    pub fn with_outbound(mut self, policy: OutboundPolicy) -> Self {
        self.outbound = match Outbound::new(policy) {
            Ok(outbound) => Some(Arc::new(outbound)),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the outbound HTTP client: agents' tool calls will be refused");
                None
            }
        };
        self
    }

    /// Searches agents' knowledge with `embedder` (the model knowledge is
    /// indexed with) as well as by keyword.
    pub fn with_knowledge_embedder(mut self, embedder: Option<Arc<Embedder>>) -> Self {
        self.embedder = embedder;
        self
    }

    /// Opens accounts' own keys with `open`, so agents may route to BYOK
    /// models.
    pub fn with_secrets(mut self, open: Option<OpenSecret>) -> Self {
        self.open_secret = open;
        self
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
        let mut next_bill = tokio::time::Instant::now() + config.gateway_bill_interval;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep = tokio::time::Instant::now() + config.poll_interval;
                match crate::finish::fail_expired_tasks(&self.inner.store).await {
                    Ok(failed) => {
                        for (account, task) in failed {
                            tracing::warn!(account.id = %account, task.id = %task, "task failed: its lease expired with no attempts left");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not sweep expired leases"),
                }
                match bounty_billing::settle::lapse_outcomes(&self.inner.store, 100).await {
                    Ok(lapsed) => {
                        for (account, outcome) in lapsed {
                            tracing::info!(account.id = %account, outcome.id = %outcome, "outcome window lapsed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not lapse outcome windows"),
                }
            }
            if tokio::time::Instant::now() >= next_bill {
                next_bill = tokio::time::Instant::now() + config.gateway_bill_interval;
                if let Err(e) = bounty_billing::gateway::bill_cost_plus(&self.inner.store).await {
                    tracing::warn!(error = %e, "could not bill gateway calls at cost plus");
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
        if claimed.task.gateway_ref.is_some() {
            self.verify_reported(&claimed, &agent).await;
            return;
        }
        // The ticket and the conversation after it, up to this turn.
        let task = &claimed.task;
        let history = match self
            .inner
            .store
            .conversation_until(task.account_id, task.id, task.turn)
            .await
        {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the conversation; the task will be retried when its lease expires");
                return;
            }
        };
        let mut messages = prompt::build_conversation(
            &agent.instructions,
            agent.schema.as_ref().map(|(v, _)| v),
            &task.input,
            &history,
        );
        // The knowledge for this turn goes in right after the system prompt.
        let retrieval = self.retrieve(&agent, task.account_id, &messages).await;
        let knowledge_at = retrieval.as_ref().map(|r| {
            let at = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
            messages.insert(at, Message::new(Role::System, knowledge_prompt(r)));
            at
        });
        let retrieved: Vec<String> = retrieval
            .iter()
            .flat_map(|r| r.chunks.iter().map(|c| c.id.to_string()))
            .collect();
        // Verifiers judge the whole conversation, not only its first message.
        let judged = with_conversation(&claimed, &history);
        // The model (or the cache), then the verifiers, all under the
        // renewed lease.
        let work = async {
            let (answer, calls, tool_calls, cache) =
                self.answer(&agent, &judged, &messages, &retrieved).await;
            let end = match answer {
                Ok(answer) => {
                    let transcript =
                        transcript(&messages, &answer.added, retrieval.as_ref().zip(knowledge_at));
                    AttemptEnd::Completed(TaskOutput {
                        handoff: answer.handoff,
                        text: answer.text,
                        errors: answer.errors,
                        model: answer.model,
                        transcript,
                        decision: answer.run.decision,
                        verdicts: answer.run.verdicts,
                        cache,
                    })
                }
                Err(error) => self.failure(&claimed, &error),
            };
            (end, calls, tool_calls)
        };
        let (end, calls, tool_calls) = tokio::select! {
            done = work => done,
            () = self.hold_lease(&claimed) => {
                tracing::warn!("lease lost while the task was running; abandoning this attempt");
                return;
            }
        };
        let completed = matches!(end, AttemptEnd::Completed(_));
        let finished = self.finish_with_tools(&claimed, end, &calls, &tool_calls).await;
        if finished && completed && !agent.acts() {
            self.maybe_shadow(&agent, &claimed, messages, retrieved);
        }
    }

    /// A gateway task: the customer's own agent did the work through the
    /// gateway and reported its answer. The agent's verification policy
    /// decides it exactly as it decides an answer Bounty produced; only
    /// the judges' calls are this attempt's (the gateway calls are the
    /// task's already).
    async fn verify_reported(&self, claimed: &ClaimedTask, agent: &PreparedAgent) {
        let text = claimed.task.output.clone().unwrap_or_default();
        let work = self.verify(agent, claimed, text, GATEWAY_MODEL.to_owned(), &[], &[]);
        let answer = tokio::select! {
            answer = work => answer,
            () = self.hold_lease(claimed) => {
                tracing::warn!("lease lost while verifying a reported outcome; abandoning this attempt");
                return;
            }
        };
        let calls: Vec<NewModelCall> = answer.run.judge_calls.iter().map(to_new_call).collect();
        let end = AttemptEnd::Completed(TaskOutput {
            handoff: None,
            transcript: serde_json::json!([{"role": "assistant", "content": answer.text}]),
            text: answer.text,
            errors: answer.errors,
            model: answer.model,
            decision: answer.run.decision,
            verdicts: answer.run.verdicts,
            cache: None,
        });
        self.finish(claimed, end, &calls).await;
    }

    /// The agent's knowledge for the turn's last customer message, or
    /// `None` when it has no sources or nothing matched. A store error is
    /// logged and the turn goes on without knowledge.
    async fn retrieve(
        &self,
        agent: &PreparedAgent,
        account: AccountId,
        messages: &[Message],
    ) -> Option<Retrieval> {
        if agent.knowledge.is_empty() {
            return None;
        }
        let query = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)?
            .content
            .as_str();
        let store = &self.inner.store;
        match retrieve(
            store,
            self.embedder.as_deref(),
            account,
            &agent.knowledge,
            query,
            KNOWLEDGE_TOP_K,
        )
        .await
        {
            Ok(r) if r.chunks.is_empty() => None,
            Ok(r) => {
                tracing::info!(
                    chunks = r.chunks.len(),
                    keyword_hits = r.keyword_hits,
                    vector_hits = r.vector_hits,
                    latency_ms = r.latency.as_millis() as u64,
                    "knowledge retrieved"
                );
                Some(r)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not search the agent's knowledge; answering without it");
                None
            }
        }
    }

    /// On the share of completed tasks the agent's shadow policy picks,
    /// runs the student model on the same prompt in the background and
    /// records its call and verdict as shadow ones. Nothing it does reaches
    /// the task's output, outcome or charge, which are already committed.
    /// At most `concurrency` shadows run at once; beyond that a pick is
    /// skipped rather than queued.
    fn maybe_shadow(
        &self,
        agent: &Arc<PreparedAgent>,
        claimed: &ClaimedTask,
        messages: Vec<Message>,
        retrieved: Vec<String>,
    ) {
        let Some(shadow) = &agent.routing.shadow else {
            return;
        };
        if !shadow.picks(bounty_core::random_unit()) {
            return;
        }
        let Ok(permit) = Arc::clone(&self.inner.shadow_slots).try_acquire_owned() else {
            tracing::debug!("every shadow slot is busy; skipping this task's shadow run");
            return;
        };
        let (worker, agent, claimed) = (self.clone(), Arc::clone(agent), claimed.clone());
        let span = tracing::info_span!("shadow", model = %shadow.model);
        tokio::spawn(
            async move {
                let _permit = permit;
                worker.shadow(&agent, &claimed, &messages, &retrieved).await;
            }
            .instrument(span),
        );
    }

    async fn shadow(
        &self,
        agent: &PreparedAgent,
        claimed: &ClaimedTask,
        messages: &[Message],
        retrieved: &[String],
    ) {
        let Some(shadow) = &agent.routing.shadow else {
            return;
        };
        let student = [shadow.model.clone()];
        let routed = self
            .inner
            .router
            .generate(
                &student,
                messages,
                agent.overrides,
                agent.schema.as_ref().map(|(v, _)| v),
            )
            .await;
        let mut calls: Vec<NewModelCall> = routed.calls.iter().map(to_new_call).collect();
        if let Ok(routed) = routed.result {
            let answer = self
                .verify(
                    agent,
                    claimed,
                    routed.generation.text,
                    routed.model,
                    retrieved,
                    &[],
                )
                .await;
            if let Some(answered) = calls.last_mut() {
                answered.verdict = Some(answer.run.decision);
            }
            calls.extend(answer.run.judge_calls.iter().map(to_new_call));
            tracing::info!(decision = %answer.run.decision, "shadow student verified");
        }
        for c in &mut calls {
            c.shadow = true;
        }
        if let Err(e) = retrying(|| self.inner.store.record_shadow_calls(claimed, &calls)).await {
            tracing::warn!(error = %e, "could not record the shadow run");
        }
    }

    /// The task's answer, verified: served from the verified-answer cache
    /// when the agent caches and a hit passes verification again, else from
    /// the route. Returns every model call made (judges' included, each
    /// answering call with its verdict) and how the cache was used.
    async fn answer(
        &self,
        agent: &PreparedAgent,
        claimed: &ClaimedTask,
        messages: &[Message],
        retrieved: &[String],
    ) -> (
        Result<Answer, ProviderError>,
        Vec<NewModelCall>,
        Vec<NewToolCall>,
        Option<CacheUse>,
    ) {
        let mut calls: Vec<NewModelCall> = Vec::new();
        let mut tool_calls: Vec<NewToolCall> = Vec::new();
        // The cache keys on the ticket alone: a conversation's later
        // messages are not in it, so a conversation never reads it.
        // An agent with tools answers from live systems: never cached.
        let conversation = messages.iter().filter(|m| m.role == Role::User).count() > 1;
        let (served, cache) = match conversation || agent.acts() {
            true => (None, None),
            false => {
                self.answer_from_cache(agent, claimed, retrieved, &mut calls)
                    .await
            }
        };
        if let Some(answer) = served {
            return (Ok(answer), calls, tool_calls, cache);
        }
        let result = self
            .answer_from_route(agent, claimed, messages, retrieved, &mut calls, &mut tool_calls)
            .await;
        (result, calls, tool_calls, cache)
    }

    /// A verified answer from the cache, when the agent caches and a hit
    /// passes verification again; and how the cache was used (`None`: the
    /// agent does not cache, or the lookup failed). The hit's calls (its
    /// re-verification, judges included) go to `calls` either way.
    async fn answer_from_cache(
        &self,
        agent: &PreparedAgent,
        claimed: &ClaimedTask,
        retrieved: &[String],
        calls: &mut Vec<NewModelCall>,
    ) -> (Option<Answer>, Option<CacheUse>) {
        if agent.routing.cache.is_none() {
            return (None, None);
        }
        let task = &claimed.task;
        let key = cache_key(task.agent_version, &task.input);
        let hit = match self
            .inner
            .store
            .cached_answer(task.account_id, task.agent_id, task.agent_version, &key)
            .await
        {
            Ok(Some(hit)) => hit,
            Ok(None) => return (None, Some(CacheUse { saved: None })),
            Err(e) => {
                tracing::warn!(error = %e, "could not look up the answer cache; asking the route");
                return (None, None);
            }
        };
        let answer = self
            .verify(
                agent,
                claimed,
                hit.output.clone(),
                hit.model.clone(),
                retrieved,
                &[],
            )
            .await;
        let served = match &agent.routing.cascade {
            Some(c) => !c.escalates(answer.run.decision, &answer.run.verdicts),
            None => answer.run.decision != Decision::Fail,
        };
        calls.push(NewModelCall {
            model: hit.model.clone(),
            provider: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            reasoning_tokens: 0,
            latency_us: 0,
            cost: Money::zero(hit.cost.currency),
            cache_hit: true,
            byok: false,
            error: None,
            verdict: Some(answer.run.decision),
            shadow: false,
        });
        calls.extend(answer.run.judge_calls.iter().map(to_new_call));
        let cache = Some(CacheUse {
            saved: served.then_some(hit.cost),
        });
        if served {
            tracing::info!(source.task.id = %hit.task_id, "served a verified answer from the cache");
            return (Some(answer), cache);
        }
        tracing::warn!(source.task.id = %hit.task_id, "a cached answer failed verification; asking the route");
        (None, cache)
    }

    /// The route's steps: without a cascade one step (its models are
    /// fallbacks for provider errors); with one, each model is a step,
    /// those under the cascade's pass-rate floor left out.
    async fn route_steps(&self, agent: &PreparedAgent, task: &Task) -> Vec<Vec<String>> {
        let Some(cascade) = &agent.routing.cascade else {
            return vec![agent.route.clone()];
        };
        let rates = if cascade.pass_rate_floor_bp.is_some() {
            self.inner
                .store
                .model_pass_rates(task.account_id, task.agent_id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read pass rates; trying every model");
                    Default::default()
                })
        } else {
            Default::default()
        };
        cascade
            .steps(&agent.route, |m| rates.get(m).map(|r| r.live).unwrap_or_default())
            .into_iter()
            .map(|m| vec![m.clone()])
            .collect()
    }

    /// The route's verified answer: each step in turn, a rejected output
    /// escalating to the next step of a cascade. Every call goes to `calls`.
    async fn answer_from_route(
        &self,
        agent: &PreparedAgent,
        claimed: &ClaimedTask,
        messages: &[Message],
        retrieved: &[String],
        calls: &mut Vec<NewModelCall>,
        tool_calls: &mut Vec<NewToolCall>,
    ) -> Result<Answer, ProviderError> {
        let task = &claimed.task;
        // The database being away is a transient failure, retried.
        let byok = self
            .byok_key(agent, task.account_id)
            .await
            .map_err(|e| ProviderError::Unreachable(format!("could not read the account's own key: {e}")))?;
        let steps = self.route_steps(agent, task).await;
        let ctx = TurnContext {
            router: &self.inner.router,
            outbound: self.outbound.as_deref(),
            tools: &agent.tools,
            definitions: &agent.definitions,
            max_steps: agent.max_steps,
            overrides: agent.overrides,
            schema: agent.schema.as_ref().map(|(v, _)| v),
            byok: byok.as_ref(),
            task: task.id,
            turn: task.turn,
        };
        let mut last: Option<Answer> = None;
        let mut error = None;
        for (i, step) in steps.iter().enumerate() {
            let run = turn::run_turn(&ctx, step, messages).await;
            let mut step_calls: Vec<NewModelCall> = run.calls.iter().map(to_new_call).collect();
            let results: Vec<(String, Option<u16>)> = run
                .tool_calls
                .iter()
                .filter(|c| c.outcome != ToolCallOutcome::Handoff)
                .map(|c| (c.tool.clone(), c.status))
                .collect();
            tool_calls.extend(run.tool_calls);
            let end = match run.result {
                Ok(end) => end,
                Err(e @ (ProviderError::ToolUnavailable(_) | ProviderError::ToolRefused(_))) => {
                    // A broken tool is not the model's fault: no other
                    // model is tried, and the task is never resolved on it.
                    calls.extend(step_calls);
                    return Err(e);
                }
                Err(e) => {
                    calls.extend(step_calls);
                    error = Some(e);
                    continue;
                }
            };
            let (text, model) = match end {
                TurnEnd::Answer { text, model } => (text, model),
                TurnEnd::Handoff { reason, model } => {
                    calls.extend(step_calls);
                    tracing::info!(model = %model, reason = %reason, "the agent handed the conversation to a person");
                    return Ok(Answer {
                        text: format!("Handed to a person: {reason}"),
                        errors: None,
                        model,
                        run: PolicyRun {
                            decision: Decision::Fail,
                            verdicts: Vec::new(),
                            judge_calls: Vec::new(),
                        },
                        handoff: Some(reason),
                        added: run.messages,
                    });
                }
            };
            tracing::info!(model = %model, steps = results.len(), "agent produced its output");
            let mut answer = self
                .verify(agent, claimed, text, model, retrieved, &results)
                .await;
            answer.added = run.messages;
            if let Some(answered) = step_calls.last_mut() {
                answered.verdict = Some(answer.run.decision);
            }
            calls.extend(step_calls);
            calls.extend(answer.run.judge_calls.iter().map(to_new_call));
            error = None;
            let escalate = agent
                .routing
                .cascade
                .as_ref()
                .is_some_and(|c| c.escalates(answer.run.decision, &answer.run.verdicts));
            if escalate && i + 1 < steps.len() {
                tracing::info!(model = %answer.model, decision = %answer.run.decision, "output not accepted; escalating to the next model");
                last = Some(answer);
                continue;
            }
            return Ok(hand_off_if_rejected(agent, answer));
        }
        // Every step was tried. A transient error on the last one is worth
        // another attempt; otherwise the last output stands, rejected.
        match (last, error) {
            (Some(answer), None) => Ok(hand_off_if_rejected(agent, answer)),
            (Some(answer), Some(e)) if !e.is_transient() => Ok(hand_off_if_rejected(agent, answer)),
            (_, Some(e)) => Err(e),
            (None, None) => Err(ProviderError::NotConfigured(
                "the model route is empty".to_owned(),
            )),
        }
    }

    /// The account's own key, when the agent's route has a BYOK model and
    /// the account set one that opens. A key that does not open is logged
    /// (never its value) and treated as missing: the BYOK call then fails
    /// the task, uncharged, naming the cause.
    async fn byok_key(
        &self,
        agent: &PreparedAgent,
        account: AccountId,
    ) -> Result<Option<ByokKey>, StoreError> {
        let registry = self.inner.router.registry();
        if !agent
            .route
            .iter()
            .any(|m| registry.get(m).is_some_and(|m| m.is_byok()))
        {
            return Ok(None);
        }
        let Some(record) = self.inner.store.byok(account).await? else {
            return Ok(None);
        };
        let Some(open) = &self.open_secret else {
            tracing::warn!(
                "an agent routes to a BYOK model, but this worker has no master keys to open keys with"
            );
            return Ok(None);
        };
        match open(&record.sealed_key, byok_sealing_aad(account).as_bytes()) {
            Some(key) => Ok(Some(ByokKey {
                base_url: record.base_url,
                api_key: key.into(),
            })),
            None => {
                tracing::warn!("the account's own key does not open with the configured master keys");
                Ok(None)
            }
        }
    }

    /// Runs the agent's verification policy on one output, with the
    /// chunks retrieved for the turn and its tools' results.
    async fn verify(
        &self,
        agent: &PreparedAgent,
        claimed: &ClaimedTask,
        text: String,
        model: String,
        retrieved: &[String],
        tool_results: &[(String, Option<u16>)],
    ) -> Answer {
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
        let input = VerifyInput {
            output: &text,
            output_schema: compiled,
            task: &claimed.task.input,
            instructions: &agent.instructions,
            retrieved,
            tool_results,
        };
        let run = verify::run_policy(&agent.policy, &input, &self.inner.router).await;
        tracing::info!(model = %model, decision = %run.decision, verdicts = run.verdicts.len(), "output verified");
        let added = vec![Message::new(Role::Assistant, text.clone())];
        Answer {
            text,
            errors,
            model,
            run,
            handoff: None,
            added,
        }
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
    /// Returns whether this attempt's end was written.
    async fn finish(&self, claimed: &ClaimedTask, end: AttemptEnd, calls: &[NewModelCall]) -> bool {
        self.finish_with_tools(claimed, end, calls, &[]).await
    }

    /// [`Worker::finish`] with the attempt's tool calls.
    async fn finish_with_tools(
        &self,
        claimed: &ClaimedTask,
        end: AttemptEnd,
        calls: &[NewModelCall],
        tools: &[NewToolCall],
    ) -> bool {
        let store = &self.inner.store;
        match retrying(|| crate::finish::finish_attempt_with_tools(store, claimed, &end, calls, tools)).await
        {
            Ok(true) => {
                tracing::info!(outcome = outcome_name(&end), "attempt finished");
                true
            }
            Ok(false) => {
                tracing::warn!("lease lost before the attempt finished; another worker owns the task now");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "could not finish the attempt; it will run again after its lease expires");
                false
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
        let open = |sealed: &str, aad: &[u8]| self.open_secret.as_ref().and_then(|open| open(sealed, aad));
        let tools = match crate::tools::prepare_agent_tools(&agent, open) {
            Ok(tools) => tools,
            Err(e) => {
                return Ok(Prepared::Invalid(TaskError {
                    code: "invalid_tool".to_owned(),
                    message: e.to_string(),
                }));
            }
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
        let mut definitions: Vec<ToolDefinition> = tools
            .iter()
            .map(|t| ToolDefinition {
                name: t.name().to_owned(),
                description: t.description().to_owned(),
                parameters: t.parameters().clone(),
            })
            .collect();
        if agent.handoff {
            definitions.push(turn::handoff_definition());
        }
        let prepared = Arc::new(PreparedAgent {
            tools,
            definitions,
            knowledge: agent.knowledge,
            max_steps: agent.max_steps,
            handoff: agent.handoff,
            instructions: agent.instructions,
            route: agent.model_route,
            schema,
            overrides: Overrides {
                max_tokens: agent.params.max_tokens,
                temperature: agent.params.temperature,
                seed: agent.params.seed,
            },
            policy: agent.verifier_policy,
            routing: agent.routing,
        });
        let mut cache = self.inner.agents.lock().expect("agent cache lock");
        if cache.len() >= AGENT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&prepared));
        Ok(Prepared::Ready(prepared))
    }
}

/// The answer, or, when it was rejected and the agent may hand off, the
/// hand-off: a conversation the agent could not resolve goes to a person
/// (escalated, never charged) instead of failing.
fn hand_off_if_rejected(agent: &PreparedAgent, mut answer: Answer) -> Answer {
    if agent.handoff && answer.handoff.is_none() && answer.run.decision == Decision::Fail {
        let why: Vec<&str> = answer
            .run
            .verdicts
            .iter()
            .filter(|v| v.decision == Decision::Fail)
            .map(|v| v.reason.as_str())
            .collect();
        let reason = format!("the answer did not pass verification ({})", why.join("; "));
        tracing::info!(%reason, "handing the conversation to a person");
        answer.handoff = Some(reason);
    }
    answer
}

/// The claimed task as its verifiers see it: on a later turn, the ticket's
/// body followed by the conversation since, so a judge grades the answer
/// to the customer's latest message.
fn with_conversation(
    claimed: &ClaimedTask,
    history: &[bounty_store::conversation::ConversationMessage],
) -> ClaimedTask {
    let mut judged = claimed.clone();
    if history.is_empty() {
        return judged;
    }
    let body = &mut judged.task.input.body;
    body.push_str("\n\nThe conversation since:");
    for m in history {
        let who = match m.role {
            bounty_core::conversation::MessageRole::Customer => "Customer",
            bounty_core::conversation::MessageRole::Agent => "Agent",
        };
        body.push('\n');
        body.push_str(who);
        body.push_str(": ");
        body.push_str(m.body.trim());
    }
    judged
}

/// The system message that gives the model the turn's knowledge, each
/// chunk under its id for citation.
fn knowledge_prompt(retrieval: &Retrieval) -> String {
    let mut out = String::from(
        "Knowledge from the help center. Use it when it answers the question, and cite the id of every \
         passage you use in square brackets, like [kc_…]:",
    );
    for c in &retrieval.chunks {
        out.push_str("\n\n[");
        out.push_str(c.id.as_str());
        out.push_str("] ");
        out.push_str(&c.link);
        if let Some(h) = c.heading.as_deref().filter(|h| !h.is_empty()) {
            out.push_str(" — ");
            out.push_str(h);
        }
        out.push('\n');
        out.push_str(c.text.trim());
    }
    out
}

/// The turn's transcript: the prompt, then what the turn added. The
/// knowledge message carries the retrieval that made it (query, chunk
/// ids and scores, latency) under `retrieval`.
fn transcript(
    prompt: &[Message],
    added: &[Message],
    knowledge: Option<(&Retrieval, usize)>,
) -> serde_json::Value {
    let mut items: Vec<serde_json::Value> = prompt
        .iter()
        .chain(added)
        .map(|m| serde_json::to_value(m).expect("messages serialize"))
        .collect();
    if let Some((retrieval, at)) = knowledge
        && let Some(serde_json::Value::Object(message)) = items.get_mut(at)
    {
        let chunks: Vec<serde_json::Value> = retrieval
            .chunks
            .iter()
            .map(|c| serde_json::json!({"id": c.id.as_str(), "score": c.score, "source_id": c.source_id.to_string(), "link": c.link}))
            .collect();
        message.insert(
            "retrieval".to_owned(),
            serde_json::json!({
                "query": retrieval.query,
                "chunks": chunks,
                "latency_ms": retrieval.latency.as_secs_f64() * 1000.0,
                "keyword_hits": retrieval.keyword_hits,
                "vector_hits": retrieval.vector_hits,
                "embedding_model": retrieval.embedding_model,
            }),
        );
    }
    serde_json::Value::Array(items)
}

fn outcome_name(end: &AttemptEnd) -> &'static str {
    match end {
        AttemptEnd::Completed(_) => "completed",
        AttemptEnd::Retry { .. } => "retry",
        AttemptEnd::Failed(_) => "failed",
    }
}

/// A router call as a task's model call records it.
pub fn to_new_call(call: &bounty_models::CallRecord) -> NewModelCall {
    NewModelCall {
        model: call.model.clone(),
        provider: call.provider.map(|p| p.as_str().to_owned()),
        prompt_tokens: i64::try_from(call.usage.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(call.usage.completion_tokens).unwrap_or(i64::MAX),
        cached_tokens: i64::try_from(call.usage.cached_tokens).unwrap_or(i64::MAX),
        reasoning_tokens: i64::try_from(call.usage.reasoning_tokens).unwrap_or(i64::MAX),
        latency_us: i64::try_from(call.latency.as_micros()).unwrap_or(i64::MAX),
        cost: call.cost,
        cache_hit: call.cache_hit,
        byok: call.byok,
        error: call.error.as_ref().map(|e| TaskError {
            code: e.code().to_owned(),
            message: e.to_string(),
        }),
        verdict: None,
        shadow: false,
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
