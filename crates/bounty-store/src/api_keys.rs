//! API keys: create, list, revoke, and authenticate by hash.
//!
//! Only the SHA-256 of a key is stored (see `bounty_core::api_key`).
//! Authentication is one indexed lookup on that hash. "Last used" is
//! written at most once a minute per key, so a busy key does not turn
//! every read request into a write.

use bounty_core::{AccountId, ApiKeyHash, ApiKeyId, ApiKeyMode, KeyName, NewApiKey, PageLimit, Timestamp};
use chrono::Duration;

use crate::db::on_pool;
use crate::{Page, Store, StoreError};

/// How stale `last_used_at` may get before a request refreshes it.
const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

/// A stored API key. It never holds the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The account it acts for.
    pub account_id: AccountId,
    /// Its label.
    pub name: String,
    /// Live or test.
    pub mode: ApiKeyMode,
    /// The first characters of the key (`bk_live_AbCd`).
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    pub(crate) fn new_unused(
        id: ApiKeyId,
        account_id: AccountId,
        name: &KeyName,
        key: &NewApiKey,
        now: Timestamp,
    ) -> Self {
        ApiKey {
            id,
            account_id,
            name: name.as_str().to_owned(),
            mode: key.mode,
            prefix: key.prefix.clone(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        }
    }
}

/// Who a valid key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedKey {
    /// The key's account: every query of the request is scoped by it.
    pub account_id: AccountId,
    /// The key itself.
    pub key_id: ApiKeyId,
    /// Live or test.
    pub mode: ApiKeyMode,
    /// When it was last used, before this request.
    pub last_used_at: Option<Timestamp>,
}

macro_rules! key_columns {
    () => {
        "id, account_id, name, mode, prefix, created_at, last_used_at, revoked_at"
    };
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    account_id: String,
    name: String,
    mode: String,
    prefix: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

fn corrupt(column: &str, value: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("api_keys.{column} `{value}`: {e}"))
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(r: ApiKeyRow) -> Result<Self, Self::Error> {
        Ok(ApiKey {
            id: r.id.parse().map_err(|e| corrupt("id", &r.id, e))?,
            account_id: r
                .account_id
                .parse()
                .map_err(|e| corrupt("account_id", &r.account_id, e))?,
            mode: r.mode.parse().map_err(|e| corrupt("mode", &r.mode, e))?,
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

/// Inserts a key row for `account`, if that account exists; returns
/// whether it did. One statement, so SQLite never has to upgrade a read
/// transaction to a write (which fails at once instead of waiting).
pub(crate) async fn insert_key<'c, DB>(
    conn: impl sqlx::Executor<'c, Database = DB>,
    account: AccountId,
    id: ApiKeyId,
    name: &KeyName,
    key: &NewApiKey,
    now: Timestamp,
) -> Result<bool, StoreError>
where
    DB: sqlx::Database,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let inserted = sqlx::query::<DB>(
        "insert into api_keys (id, account_id, name, mode, prefix, key_hash, created_at)
         select $1, $2, $3, $4, $5, $6, $7
         where exists (select 1 from accounts where id = $2)
         returning id",
    )
    .bind(id.to_string())
    .bind(account.to_string())
    .bind(name.as_str().to_owned())
    .bind(key.mode.as_str().to_owned())
    .bind(key.prefix.clone())
    .bind(key.hash.as_str().to_owned())
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

impl Store {
    /// Creates a key for `account`; `None` when the account does not exist.
    pub async fn create_api_key(
        &self,
        account: AccountId,
        name: &KeyName,
        key: &NewApiKey,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = self.now();
        let id = ApiKeyId::new();
        let created = on_pool!(&self.db, pool => insert_key(pool, account, id, name, key, now).await?);
        Ok(created.then(|| ApiKey::new_unused(id, account, name, key, now)))
    }

    /// The account's keys, newest first, revoked ones included.
    pub async fn list_api_keys(
        &self,
        account: AccountId,
        limit: PageLimit,
        after: Option<ApiKeyId>,
    ) -> Result<Page<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", key_columns!(), " from api_keys
                 where account_id = $1 and ($2 is null or id < $2)
                 order by id desc
                 limit $3"
            ))
            .bind(account.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let keys = rows
            .into_iter()
            .map(ApiKey::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(keys, limit.get(), |k| k.id.to_string()))
    }

    /// One of the account's keys.
    pub async fn get_api_key(&self, account: AccountId, id: ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<ApiKeyRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", key_columns!(), " from api_keys where account_id = $1 and id = $2"))
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(ApiKey::try_from).transpose()
    }

    /// Revokes one of the account's keys. Revoking twice keeps the first
    /// revocation time. `None` when the account has no such key.
    pub async fn revoke_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = self.now();
        let row: Option<ApiKeyRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "update api_keys set revoked_at = coalesce(revoked_at, $3)
                 where account_id = $1 and id = $2
                 returning ", key_columns!()
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(ApiKey::try_from).transpose()
    }

    /// The live (unrevoked) key with this hash. This lookup is how a
    /// request learns its account, so it is the one key query not scoped
    /// by account.
    pub async fn authenticate(&self, hash: &ApiKeyHash) -> Result<Option<AuthenticatedKey>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            account_id: String,
            mode: String,
            last_used_at: Option<Timestamp>,
        }
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, account_id, mode, last_used_at from api_keys
                 where key_hash = $1 and revoked_at is null",
            )
            .bind(hash.as_str().to_owned())
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| {
            Ok(AuthenticatedKey {
                key_id: r.id.parse().map_err(|e| corrupt("id", &r.id, e))?,
                account_id: r
                    .account_id
                    .parse()
                    .map_err(|e| corrupt("account_id", &r.account_id, e))?,
                mode: r.mode.parse().map_err(|e| corrupt("mode", &r.mode, e))?,
                last_used_at: r.last_used_at,
            })
        })
        .transpose()
    }

    /// Records that a key was just used, unless it was recorded less than a
    /// minute ago. Returns whether a write happened.
    pub async fn touch_api_key(&self, key: &AuthenticatedKey) -> Result<bool, StoreError> {
        let now = self.now();
        if key.last_used_at.is_some_and(|t| now - t < LAST_USED_RESOLUTION) {
            return Ok(false);
        }
        let result = on_pool!(&self.db, pool => {
            sqlx::query(
                "update api_keys set last_used_at = $3
                 where account_id = $1 and id = $2
                   and (last_used_at is null or last_used_at < $4)",
            )
            .bind(key.account_id.to_string())
            .bind(key.key_id.to_string())
            .bind(now)
            .bind(now - LAST_USED_RESOLUTION)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result > 0)
    }
}
