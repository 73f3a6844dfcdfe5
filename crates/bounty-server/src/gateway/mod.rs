//! The OpenAI-compatible gateway: what it serves, and what it keeps
//! between requests.
//!
//! - [`GatewaySettings`]: the gateway model names clients send, each a
//!   route of configured models (`[gateway.models.NAME] route = [...]`).
//!   Every configured model is also a gateway model of its own name.
//! - [`Recorder`]: writes every call behind the response, in batches
//!   (one transaction per batch), so that recording costs a request no
//!   database round trip. A graceful shutdown flushes it. What a crash can
//!   lose is bounded by one batch in flight: those calls' cost is not
//!   recorded, and so never charged (never the other way round).
//! - A short-lived cache of the agents named by `Bounty-Agent`.
//! - [`error`]: OpenAI's error shape.

pub(crate) mod cascade;
pub mod error;
pub mod recorder;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bounty_core::verdict::PolicyMode;
use bounty_core::verification::{VerificationPolicy, VerifierSpec};
use bounty_core::{AccountId, AgentId};
use bounty_models::ModelRegistry;
use bounty_store::gateway_budget::GatewayLimit;
use bounty_store::{Store, StoreError};
use serde::Deserialize;

pub use recorder::Recorder;

/// `[gateway]`: the model names the gateway serves.
///
/// ```toml
/// [gateway.models.fast]
/// route = ["gpt-4o-mini", "local-tiny"]   # tried in order on errors
///
/// [gateway.models.smart]                  # a cascade: cheapest first,
/// route = ["local-tiny", "gpt-4o"]        # escalated when the verifier
/// [gateway.models.smart.verifier]         # rejects an answer
/// verifiers = [
///   { kind = "rules", non_empty = true, forbidden_phrases = ["I cannot"] },
///   { kind = "judge", model = "gpt-4o-mini", rubric = "Answers the question.", threshold = 0.7 },
/// ]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Gateway model names and their routes. A configured model not named
    /// here is served under its own name, alone.
    pub models: BTreeMap<String, GatewayModelSettings>,
}

/// `[gateway.models.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayModelSettings {
    /// Configured models (`[models.NAME]`), tried in order: the next one
    /// answers when one fails with a provider error that another model may
    /// not have (5xx, 429, timeouts, an unreachable endpoint).
    pub route: Vec<String>,
    /// Serve repeats of a request from the exact-match cache. Only
    /// answers to calls whose task was verified resolved are served, and
    /// never across accounts.
    #[serde(default)]
    pub cache: bool,
    /// Makes the route a cascade: each model's answer but the last is
    /// checked, and one the verifier rejects is escalated to the next
    /// model (errors still fall back as without one).
    #[serde(default)]
    pub verifier: Option<GatewayVerifier>,
}

/// `[gateway.models.NAME.verifier]`: the checks a cascade step's answer
/// must pass, combined by `mode` as in an agent's verification policy.
/// Only verifiers that can judge one answer on its own: `rules` (its
/// `schema` checks the request's `response_format`) and `judge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayVerifier {
    /// How the verifiers' decisions combine (default `all_of`).
    #[serde(default)]
    pub mode: PolicyMode,
    /// The verifiers, in order; at least one.
    pub verifiers: Vec<VerifierSpec>,
}

impl GatewayVerifier {
    /// The verifier as a policy [`bounty_agents::verify::run_policy`]
    /// runs, after checking it: the kinds, the rules' patterns and lists,
    /// the judges' models, and a route with a model to escalate to. The
    /// error names the field under `gateway.models.NAME.verifier`.
    fn policy(
        &self,
        name: &str,
        route: &[String],
        registry: &ModelRegistry,
    ) -> Result<VerificationPolicy, String> {
        let at = format!("gateway.models.{name}.verifier");
        if route.len() < 2 {
            return Err(format!(
                "{at}: a cascade needs a route of at least two models (the answer of the last one is never escalated)"
            ));
        }
        if self.verifiers.is_empty() {
            return Err(format!("{at}.verifiers: must list at least one verifier"));
        }
        for (i, spec) in self.verifiers.iter().enumerate() {
            if !matches!(spec, VerifierSpec::Rules(_) | VerifierSpec::Judge(_)) {
                return Err(format!(
                    "{at}.verifiers[{i}].kind: {:?} cannot check one answer on its own; a gateway cascade takes `rules` and `judge`",
                    spec.kind()
                ));
            }
        }
        let policy = VerificationPolicy {
            mode: self.mode,
            verifiers: self.verifiers.clone(),
            ..VerificationPolicy::default()
        };
        if let Some((field, message)) = bounty_agents::verify::policy_problems(&policy, registry)
            .into_iter()
            .next()
        {
            let field = field.strip_prefix("verifier_policy").unwrap_or(&field);
            return Err(format!("{at}{field}: {message}"));
        }
        Ok(policy)
    }
}

/// A resolved `Bounty-Agent` (or none such), and when it was resolved.
type CachedAgent = (Option<AgentId>, Instant);

/// An account's limits, and when they were read.
type CachedLimits = (Arc<Vec<GatewayLimit>>, Instant);

/// How long a `Bounty-Agent` name stays resolved in this process.
const AGENT_TTL: Duration = Duration::from_secs(30);

/// How long an account's budget limits are read from this process's
/// cache: the bound on how stale a limit changed by another process is
/// (a change through this process applies at once).
pub const LIMITS_TTL: Duration = Duration::from_secs(5);

/// The gateway's state: routes, the call recorder, the agent cache.
pub struct Gateway {
    routes: BTreeMap<String, Vec<String>>,
    /// Cascades: gateway models whose answers are verified, and how.
    verifiers: BTreeMap<String, Arc<VerificationPolicy>>,
    /// Gateway models served from the exact-match cache.
    cached: std::collections::BTreeSet<String>,
    store: Store,
    recorder: OnceLock<Recorder>,
    agents: Mutex<HashMap<(AccountId, String), CachedAgent>>,
    limits: Mutex<HashMap<AccountId, CachedLimits>>,
    started: i64,
}

impl Gateway {
    /// The gateway over `registry`: each configured model under its own
    /// name, then `settings`' routes. A route naming an unknown model is
    /// refused with the table and the name.
    pub fn new(
        store: Store,
        registry: &ModelRegistry,
        settings: &GatewaySettings,
    ) -> Result<Gateway, String> {
        let mut routes: BTreeMap<String, Vec<String>> = registry
            .iter()
            .map(|m| (m.name().to_owned(), vec![m.name().to_owned()]))
            .collect();
        let mut verifiers = BTreeMap::new();
        for (name, model) in &settings.models {
            bounty_models::config::check_name(name)
                .map_err(|e| format!("gateway.models.{name}: {}", e.message))?;
            if model.route.is_empty() {
                return Err(format!(
                    "gateway.models.{name}.route: must name at least one model"
                ));
            }
            if let Some(unknown) = model.route.iter().find(|m| registry.get(m).is_none()) {
                return Err(format!(
                    "gateway.models.{name}.route: {unknown:?} is not a configured model ([models.{unknown}])"
                ));
            }
            if let Some(verifier) = &model.verifier {
                let policy = verifier.policy(name, &model.route, registry)?;
                verifiers.insert(name.clone(), Arc::new(policy));
            }
            routes.insert(name.clone(), model.route.clone());
        }
        let cached = settings
            .models
            .iter()
            .filter(|(_, m)| m.cache)
            .map(|(name, _)| name.clone())
            .collect();
        Ok(Gateway {
            routes,
            verifiers,
            cached,
            store,
            recorder: OnceLock::new(),
            agents: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            started: chrono::Utc::now().timestamp(),
        })
    }

    /// The route of gateway model `name`.
    pub fn route(&self, name: &str) -> Option<&[String]> {
        self.routes.get(name).map(Vec::as_slice)
    }

    /// The verifier of gateway model `name`, when its route is a cascade.
    pub fn verifier(&self, name: &str) -> Option<&Arc<VerificationPolicy>> {
        self.verifiers.get(name)
    }

    /// Whether gateway model `name` is served from the cache.
    pub fn caches(&self, name: &str) -> bool {
        self.cached.contains(name)
    }

    /// Every gateway model and its route, by name.
    pub fn models(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.routes.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// When this process started serving, as OpenAI's `created`.
    pub fn started(&self) -> i64 {
        self.started
    }

    /// The recorder, started on first use (inside the runtime).
    pub fn recorder(&self) -> &Recorder {
        self.recorder.get_or_init(|| Recorder::start(self.store.clone()))
    }

    /// Waits until every call recorded so far is written.
    pub async fn flush(&self) {
        if let Some(recorder) = self.recorder.get() {
            recorder.flush().await;
        }
    }

    /// The cached resolution of `given` (an agent id or name) in
    /// `account`, when fresh.
    pub(crate) fn cached_agent(&self, account: AccountId, given: &str) -> Option<Option<AgentId>> {
        let agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents
            .get(&(account, given.to_owned()))
            .filter(|(_, at)| at.elapsed() < AGENT_TTL)
            .map(|(id, _)| *id)
    }

    /// The account's budget limits (its own and its keys'), from the
    /// cache when fresh.
    pub(crate) async fn limits(&self, account: AccountId) -> Result<Arc<Vec<GatewayLimit>>, StoreError> {
        {
            let cache = self.limits.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((limits, at)) = cache.get(&account)
                && at.elapsed() < LIMITS_TTL
            {
                return Ok(Arc::clone(limits));
            }
        }
        let limits = Arc::new(self.store.gateway_limits(account).await?);
        let mut cache = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < LIMITS_TTL);
        }
        cache.insert(account, (Arc::clone(&limits), Instant::now()));
        Ok(limits)
    }

    /// Forgets the account's cached limits (they were just changed).
    pub(crate) fn forget_limits(&self, account: AccountId) {
        let mut cache = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(&account);
    }

    pub(crate) fn cache_agent(&self, account: AccountId, given: &str, id: Option<AgentId>) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if agents.len() > 10_000 {
            agents.retain(|_, (_, at)| at.elapsed() < AGENT_TTL);
        }
        agents.insert((account, given.to_owned()), (id, Instant::now()));
    }
}

/// A gateway over no models: what a state starts with.
pub(crate) fn empty(store: Store) -> Arc<Gateway> {
    Arc::new(
        Gateway::new(store, &ModelRegistry::default(), &GatewaySettings::default())
            .unwrap_or_else(|e| unreachable!("an empty gateway is valid: {e}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ModelRegistry {
        let remote = |name: &str| {
            let config: bounty_models::config::ModelConfig = serde_json::from_value(serde_json::json!({
                "provider": "openai", "base_url": "http://127.0.0.1:9/v1", "model": name, "api_key": "sk-x",
                "price": {"input_per_million": "1.00", "output_per_million": "1.00"},
            }))
            .unwrap();
            (name.to_owned(), config)
        };
        ModelRegistry::from_config(&[remote("cheap"), remote("big")].into_iter().collect()).unwrap()
    }

    fn verifier(verifiers: serde_json::Value) -> GatewayVerifier {
        serde_json::from_value(serde_json::json!({ "verifiers": verifiers })).unwrap()
    }

    #[test]
    fn a_cascades_verifier_is_checked_field_by_field() {
        let route = ["cheap".to_owned(), "big".to_owned()];
        let registry = registry();
        let ok = verifier(serde_json::json!([
            {"kind": "rules", "non_empty": true},
            {"kind": "judge", "model": "big", "rubric": "Answers it."},
        ]));
        assert_eq!(ok.policy("smart", &route, &registry).unwrap().verifiers.len(), 2);
        let refused =
            |v: &GatewayVerifier, route: &[String]| v.policy("smart", route, &registry).unwrap_err();
        assert!(
            refused(&ok, &route[..1])
                .starts_with("gateway.models.smart.verifier: a cascade needs a route of at least two"),
            "{}",
            refused(&ok, &route[..1])
        );
        let external = verifier(serde_json::json!([{"kind": "external"}]));
        assert!(refused(&external, &route).starts_with("gateway.models.smart.verifier.verifiers[0].kind:"));
        let unknown = verifier(serde_json::json!([{"kind": "judge", "model": "nope", "rubric": "r"}]));
        assert!(refused(&unknown, &route).starts_with("gateway.models.smart.verifier.verifiers[0].model:"));
        let pattern = verifier(serde_json::json!([{"kind": "rules", "must_match": ["("]}]));
        assert!(
            refused(&pattern, &route)
                .starts_with("gateway.models.smart.verifier.verifiers[0].must_match[0]:")
        );
        assert!(
            refused(&verifier(serde_json::json!([])), &route).ends_with("must list at least one verifier")
        );
    }
}
