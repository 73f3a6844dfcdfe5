//! Bring your own key: an account's own OpenAI-compatible endpoint and its
//! sealed key.
//!
//! The store never sees the key in the clear: the server seals it before
//! `set_byok` and the worker opens it after `byok`. What a page or the API
//! may show is the endpoint and `key_hint` (the last four characters).

use bounty_core::{AccountId, Timestamp};

use crate::db::on_pool;
use crate::{Store, StoreError};

/// The associated data an account's BYOK key is sealed with, so that a
/// sealed key copied into another account's row does not open.
pub fn byok_sealing_aad(account: AccountId) -> String {
    format!("{account}/byok/api_key")
}

/// An account's own endpoint and sealed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByokRecord {
    pub base_url: String,
    /// The key, sealed; opened only by the worker that calls with it.
    pub sealed_key: String,
    /// The key's last four characters, for people to recognise it.
    pub key_hint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Store {
    /// Sets (or replaces) the account's own endpoint and sealed key.
    pub async fn set_byok(
        &self,
        account: AccountId,
        base_url: &str,
        sealed_key: &str,
        key_hint: &str,
    ) -> Result<ByokRecord, StoreError> {
        let now = self.now();
        let row: (String, String, String, Timestamp, Timestamp) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "insert into account_byok (account_id, base_url, sealed_key, key_hint, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $5)
                 on conflict (account_id) do update set base_url = excluded.base_url,
                     sealed_key = excluded.sealed_key, key_hint = excluded.key_hint,
                     updated_at = excluded.updated_at
                 returning base_url, sealed_key, key_hint, created_at, updated_at",
            )
            .bind(account.to_string())
            .bind(base_url.to_owned())
            .bind(sealed_key.to_owned())
            .bind(key_hint.to_owned())
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(record(row))
    }

    /// The account's own endpoint and sealed key, if it set one.
    pub async fn byok(&self, account: AccountId) -> Result<Option<ByokRecord>, StoreError> {
        let row: Option<(String, String, String, Timestamp, Timestamp)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select base_url, sealed_key, key_hint, created_at, updated_at from account_byok
                 where account_id = $1",
            )
            .bind(account.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(record))
    }

    /// Removes the account's own key; `false` when it had none. Its BYOK
    /// models then fail their tasks, uncharged, until a key is set again.
    pub async fn delete_byok(&self, account: AccountId) -> Result<bool, StoreError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("delete from account_byok where account_id = $1")
                .bind(account.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }
}

fn record(
    (base_url, sealed_key, key_hint, created_at, updated_at): (String, String, String, Timestamp, Timestamp),
) -> ByokRecord {
    ByokRecord {
        base_url,
        sealed_key,
        key_hint,
        created_at,
        updated_at,
    }
}
