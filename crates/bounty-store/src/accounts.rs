//! Accounts: the tenants.
//!
//! An account is created together with its first API key, in one
//! transaction, so there is never an account nobody can authenticate as;
//! the same transaction queues the creation of its Stripe customer in the
//! outbox.

use bounty_core::{AccountId, AccountName, ApiKeyId, KeyName, NewApiKey, PageLimit, Timestamp};

use crate::api_keys::{ApiKey, insert_key};
use crate::db::{BeginWrite, on_pool};
use crate::{Page, Store, StoreError};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    name: String,
    created_at: Timestamp,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        Ok(Account {
            id: row
                .id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("accounts.id `{}`: {e}", row.id)))?,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

impl Store {
    /// Creates an account and its first API key, atomically.
    pub async fn create_account(
        &self,
        name: &AccountName,
        key_name: &KeyName,
        key: &NewApiKey,
    ) -> Result<(Account, ApiKey), StoreError> {
        let now = self.now();
        let account = Account {
            id: AccountId::new(),
            name: name.as_str().to_owned(),
            created_at: now,
        };
        let key_id = ApiKeyId::new();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("insert into accounts (id, name, created_at) values ($1, $2, $3)")
                .bind(account.id.to_string())
                .bind(&account.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // The account row is in this transaction, so the key insert must
            // see it; if it ever does not, roll back rather than commit an
            // account nobody can authenticate as.
            if !insert_key(&mut *tx, account.id, key_id, key_name, key, now).await? {
                return Err(StoreError::Corrupt(format!(
                    "the first key of {} was not inserted; nothing was committed",
                    account.id
                )));
            }
            // Its Stripe customer, then its subscription on the metered
            // price, then the gateway's cost-plus price on that
            // subscription, are created by the outbox sender.
            for kind in ["stripe_customer", "stripe_subscription", "stripe_subscription_item"] {
                let mut payload = serde_json::json!({"account_id": account.id.to_string()});
                if kind == "stripe_customer" {
                    payload["name"] = serde_json::json!(account.name);
                }
                sqlx::query(
                    "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status,
                         attempts, next_attempt_at, created_at)
                     values ($1, $2, $3, null, $4, $5, 'pending', 0, $6, $6)",
                )
                .bind(bounty_core::OutboxId::new().to_string())
                .bind(account.id.to_string())
                .bind(kind)
                .bind(payload.to_string())
                .bind(format!("{kind}:{}", account.id))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        let key = ApiKey::new_unused(key_id, account.id, key_name, key, now);
        Ok((account, key))
    }

    /// The account, if it exists.
    pub async fn get_account(&self, account: AccountId) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = on_pool!(&self.db, pool => {
            sqlx::query_as("select id, name, created_at from accounts where id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(Account::try_from).transpose()
    }

    /// Every account, newest first. Operator use only (the CLI): this is
    /// the one listing that is not scoped to an account.
    pub async fn admin_list_accounts(
        &self,
        limit: PageLimit,
        after: Option<AccountId>,
    ) -> Result<Page<Account>, StoreError> {
        let rows: Vec<AccountRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, name, created_at from accounts
                 where ($1 is null or id < $1)
                 order by id desc
                 limit $2",
            )
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let accounts = rows
            .into_iter()
            .map(Account::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(accounts, limit.get(), |a| a.id.to_string()))
    }
}
