//! Test fixtures shared by this crate's unit tests.

use bounty_core::{AccountId, AgentId, ApiKeyMode, IntegrationId, IntegrationKind, IntegrationState};
use bounty_store::Integration;

/// An active integration of `kind` and `mode`, with fresh ids and no
/// secrets sealed yet.
pub(crate) fn integration(kind: IntegrationKind, mode: ApiKeyMode) -> Integration {
    Integration {
        id: IntegrationId::new(),
        account_id: AccountId::new(),
        kind,
        name: kind.label().into(),
        agent_id: AgentId::new(),
        secret_sealed: String::new(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        reply_sealed: None,
        state: IntegrationState::Active,
        disabled_reason: None,
        rejected_count: 0,
        last_rejected_at: None,
        last_rejected_code: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        mode,
    }
}
