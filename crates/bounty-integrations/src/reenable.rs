//! Turning a disabled integration's replies back on, after a test ping.
//!
//! An integration is disabled when its helpdesk answers a reply 410 Gone
//! (or fails for days). Before it is turned back on, [`crate::reply::ping`]
//! proves the helpdesk answers its credentials again, so the replies
//! parked meanwhile are not sent into the same wall. The API, the
//! dashboard and the CLI all go through [`enable_integration`].

use bounty_core::{AccountId, IntegrationId, IntegrationState};
use bounty_store::{Store, StoreError};

use crate::reply::{ReplyError, ping};
use crate::sender::target_of;
use crate::status::open_reply;
use crate::{Keyring, ReplySettingsError};

/// What turning it on did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    /// Replies parked while it was off, queued again oldest first.
    pub replies_queued: u64,
    /// The helpdesk answered the test ping (`false`: it was on already,
    /// has no reply-back, or the ping was skipped).
    pub pinged: bool,
}

/// Why it was not turned on.
#[derive(Debug, thiserror::Error)]
pub enum EnableError {
    #[error("no such integration")]
    NotFound,
    /// The helpdesk did not answer the ping with a 2xx: nothing changed.
    #[error("the test ping failed: {0}")]
    PingFailed(ReplyError),
    /// Its reply settings do not open (no master keys, or the key that
    /// sealed them is gone).
    #[error(transparent)]
    Unreadable(#[from] ReplySettingsError),
    #[error("no master keys are configured to open the reply settings with")]
    NoKeys,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Turns `id`'s replies back on and queues the replies parked while it
/// was off, oldest first; when `ping` and it is disabled, only after its
/// helpdesk answered a test ping. One that is on changes nothing.
pub async fn enable_integration(
    store: &Store,
    keyring: Option<&Keyring>,
    http: &reqwest::Client,
    account: AccountId,
    id: IntegrationId,
    ping_first: bool,
) -> Result<Enabled, EnableError> {
    let integration = store
        .get_integration(account, id)
        .await?
        .ok_or(EnableError::NotFound)?;
    let mut pinged = false;
    if ping_first && integration.state == IntegrationState::Disabled {
        let keys = keyring.ok_or(EnableError::NoKeys)?;
        if let Some(settings) = open_reply(keys, &integration)? {
            ping(http, &target_of(settings), store.now())
                .await
                .map_err(EnableError::PingFailed)?;
            pinged = true;
        }
    }
    let replies_queued = store
        .enable_integration(account, id)
        .await?
        .ok_or(EnableError::NotFound)?;
    tracing::info!(account.id = %account, integration.id = %id, pinged, replies_queued, "integration enabled");
    Ok(Enabled {
        replies_queued,
        pinged,
    })
}
