//! The store's users, sessions and login attempts, on both backends:
//! the constraints, the account scoping, and the counting windows.

use bounty_store::{Email, NewSession, SessionTokenHash, StoreError, UserRole};
use chrono::Duration;

use crate::on_both_backends;
use crate::support::seed;
use crate::support::{Backend, TestApp};

fn hash_of(n: u8) -> SessionTokenHash {
    SessionTokenHash::from_hex(format!("{n:02x}").repeat(32))
}

async fn users_are_unique_by_email_and_scoped_by_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let a = seed::tenant(store, "Acme").await;
    let b = seed::tenant(store, "Globex").await;
    let email = Email::parse("Ann@Acme.test").unwrap();
    let ann = store
        .create_user(a.account, &email, "$argon2id$x", UserRole::Owner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.email.as_str(), "ann@acme.test");
    assert_eq!(ann.role, UserRole::Owner);
    // Case-insensitively unique, across accounts.
    let again = Email::parse("ANN@acme.test").unwrap();
    match store
        .create_user(b.account, &again, "$argon2id$y", UserRole::Member)
        .await
    {
        Err(StoreError::Constraint { constraint, .. }) => assert_eq!(constraint, "users_email_key"),
        other => panic!("expected users_email_key, got {other:?}"),
    }
    // No account, no user.
    let ghost = bounty_core::AccountId::new();
    let e = Email::parse("ghost@x.test").unwrap();
    assert!(
        store
            .create_user(ghost, &e, "h", UserRole::Member)
            .await
            .unwrap()
            .is_none()
    );
    // Found by email for login, with its hash; by id only in its account.
    let login = store.find_user_by_email(&again).await.unwrap().unwrap();
    assert_eq!(login.user.id, ann.id);
    assert_eq!(login.password_hash, "$argon2id$x");
    assert!(!format!("{login:?}").contains("argon2id"), "Debug hides the hash");
    assert!(store.get_user(a.account, ann.id).await.unwrap().is_some());
    assert!(store.get_user(b.account, ann.id).await.unwrap().is_none());
    assert_eq!(store.list_users(a.account).await.unwrap().len(), 1);
    assert!(store.list_users(b.account).await.unwrap().is_empty());
    // Another account cannot change the password.
    assert!(!store.set_password(b.account, ann.id, "h2").await.unwrap());
    assert_eq!(
        store
            .find_user_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$x"
    );
    assert!(store.set_password(a.account, ann.id, "h2").await.unwrap());
    assert_eq!(
        store
            .find_user_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "h2"
    );
}

async fn sessions_live_until_expiry_or_revocation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let a = seed::tenant(store, "Acme").await;
    let b = seed::tenant(store, "Globex").await;
    let ann = store
        .create_user(
            a.account,
            &Email::parse("ann@acme.test").unwrap(),
            "h",
            UserRole::Member,
        )
        .await
        .unwrap()
        .unwrap();
    let new = |n: u8| NewSession {
        token_hash: hash_of(n),
        csrf_secret: format!("csrf{n}"),
        expires_at: store.now() + Duration::hours(1),
    };
    // A session for a user of another account is refused.
    assert!(
        store
            .create_session(b.account, ann.id, &new(1))
            .await
            .unwrap()
            .is_none()
    );
    let s = store
        .create_session(a.account, ann.id, &new(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!format!("{s:?}").contains("csrf1"), "Debug hides the CSRF secret");
    let found = store.session_by_token_hash(&hash_of(1)).await.unwrap().unwrap();
    assert_eq!(found, s);
    assert_eq!(
        (found.account_id, found.role, found.csrf_secret.as_str()),
        (a.account, UserRole::Member, "csrf1")
    );
    assert!(store.session_by_token_hash(&hash_of(9)).await.unwrap().is_none());
    // The token hash is unique.
    assert!(matches!(
        store.create_session(a.account, ann.id, &new(1)).await,
        Err(StoreError::Constraint { constraint, .. }) if constraint == "sessions_token_hash_key"
    ));
    // Revocation is scoped by account.
    assert!(!store.revoke_session(b.account, &s.id).await.unwrap());
    assert!(store.session_by_token_hash(&hash_of(1)).await.unwrap().is_some());
    assert!(store.revoke_session(a.account, &s.id).await.unwrap());
    assert!(store.session_by_token_hash(&hash_of(1)).await.unwrap().is_none());
    // Expiry is exclusive of its instant.
    store
        .create_session(a.account, ann.id, &new(2))
        .await
        .unwrap()
        .unwrap();
    app.clock.advance(Duration::hours(1) - Duration::microseconds(1));
    assert!(store.session_by_token_hash(&hash_of(2)).await.unwrap().is_some());
    app.clock.advance(Duration::microseconds(1));
    assert!(store.session_by_token_hash(&hash_of(2)).await.unwrap().is_none());
    // A new password revokes the user's live sessions.
    store
        .create_session(a.account, ann.id, &new(3))
        .await
        .unwrap()
        .unwrap();
    assert!(store.set_password(a.account, ann.id, "h2").await.unwrap());
    assert!(store.session_by_token_hash(&hash_of(3)).await.unwrap().is_none());
}

async fn login_failures_are_counted_in_a_sliding_window(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let w = Duration::minutes(15);
    for _ in 0..3 {
        store
            .record_login_attempt("Ann@acme.test", "10.0.0.1", false)
            .await
            .unwrap();
    }
    store
        .record_login_attempt("bob@acme.test", "10.0.0.1", false)
        .await
        .unwrap();
    store
        .record_login_attempt("ann@acme.test", "10.0.0.2", false)
        .await
        .unwrap();
    let f = store
        .recent_failed_logins("ANN@acme.test", "10.0.0.1", w)
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_ip), (4, 4));
    // A success clears the email's count, not the address's.
    app.clock.advance(Duration::seconds(1));
    store
        .record_login_attempt("ann@acme.test", "10.0.0.2", true)
        .await
        .unwrap();
    let f = store
        .recent_failed_logins("ann@acme.test", "10.0.0.1", w)
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_ip), (0, 4));
    app.clock.advance(Duration::seconds(1));
    store
        .record_login_attempt("ann@acme.test", "10.0.0.3", false)
        .await
        .unwrap();
    assert_eq!(
        store
            .recent_failed_logins("ann@acme.test", "x", w)
            .await
            .unwrap()
            .by_email,
        1
    );
    // Old failures slide out of the window.
    app.clock.advance(Duration::minutes(15));
    let f = store
        .recent_failed_logins("bob@acme.test", "10.0.0.1", w)
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_ip), (0, 0));
    // And are pruned after a day, when new attempts arrive.
    app.clock.advance(Duration::days(1));
    store
        .record_login_attempt("new@acme.test", "10.0.0.9", false)
        .await
        .unwrap();
    let f = store
        .recent_failed_logins("ann@acme.test", "10.0.0.1", Duration::days(30))
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_ip), (0, 0));
}

on_both_backends!(
    users_are_unique_by_email_and_scoped_by_account,
    sessions_live_until_expiry_or_revocation,
    login_failures_are_counted_in_a_sliding_window,
);
