//! The store directly, with an injected clock: what the API cannot show.

use std::sync::Arc;

use bounty_core::{AccountName, ApiKeyMode, ApiKeySecret, Clock, KeyName, ManualClock, NewApiKey};
use bounty_store::Store;
use sqlx::Connection;

use crate::support::{Backend, TestDatabase};

backend_tests!(
    last_used_is_written_at_most_once_a_minute,
    only_the_hash_of_a_key_is_stored
);

async fn store_with_clock(db: &TestDatabase, clock: Arc<ManualClock>) -> Store {
    crate::support::migrated_store(db, clock).await
}

/// Creates an account "Acme" with one key of `mode`.
async fn with_account(store: &Store, mode: ApiKeyMode) -> NewApiKey {
    let key = ApiKeySecret::generate(mode);
    let (name, key_name) = (AccountName::parse("Acme").unwrap(), KeyName::parse("k").unwrap());
    store.create_account(&name, &key_name, &key).await.unwrap();
    key
}

async fn last_used_is_written_at_most_once_a_minute(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = store_with_clock(&db, clock.clone()).await;
    let key = with_account(&store, ApiKeyMode::Live).await;

    let auth = store.authenticate(&key.hash).await.unwrap().unwrap();
    assert_eq!(auth.last_used_at, None);
    assert!(store.touch_api_key(&auth).await.unwrap(), "first use is recorded");
    let first = clock.now();

    clock.advance(chrono::Duration::seconds(30));
    let auth = store.authenticate(&key.hash).await.unwrap().unwrap();
    assert_eq!(auth.last_used_at, Some(first));
    assert!(!store.touch_api_key(&auth).await.unwrap(), "30 s later: no write");

    clock.advance(chrono::Duration::seconds(31));
    let auth = store.authenticate(&key.hash).await.unwrap().unwrap();
    assert!(
        store.touch_api_key(&auth).await.unwrap(),
        "61 s later: written again"
    );
    let auth = store.authenticate(&key.hash).await.unwrap().unwrap();
    assert_eq!(auth.last_used_at, Some(clock.now()));
}

async fn only_the_hash_of_a_key_is_stored(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_with_clock(&db, Arc::new(ManualClock::new(chrono::Utc::now()))).await;
    let key = with_account(&store, ApiKeyMode::Test).await;
    let secret = key.secret.expose().to_owned();
    // Read every column of the row as text, on either backend.
    let sql =
        "select id || '|' || account_id || '|' || name || '|' || mode || '|' || prefix || '|' || key_hash
               from api_keys";
    let row: String = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    };
    assert!(!row.contains(&secret), "the key itself is not stored: {row}");
    assert!(
        !row.contains(&secret[12..]),
        "no part beyond the visible prefix is stored"
    );
    assert!(row.ends_with(key.hash.as_str()));
}
