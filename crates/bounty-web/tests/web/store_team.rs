//! The store's team and one-time links, on both backends: single use under
//! concurrency (invites and reset links), the last owner under concurrent
//! demotions, the viewer role in the schema, and account scoping.

use bounty_store::{
    Email, InviteAccepted, InviteCreated, NewInvite, Realm, ResetHolder, Store, TeamChange, TokenHash,
    UserRole,
};
use chrono::Duration;

use crate::on_both_backends;
use crate::support::seed;
use crate::support::{Backend, TestApp};

fn hash_of(n: u8) -> TokenHash {
    TokenHash::from_hex(format!("{n:02x}").repeat(32))
}

async fn user(
    store: &Store,
    account: bounty_core::AccountId,
    email: &str,
    role: UserRole,
) -> bounty_core::UserId {
    store
        .create_user(account, &Email::parse(email).unwrap(), "$argon2id$h", role)
        .await
        .unwrap()
        .expect("the account exists")
        .id
}

async fn an_invite_is_accepted_once_even_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let t = seed::tenant(store, "Acme").await;
    let ann = user(store, t.account, "ann@acme.test", UserRole::Owner).await;
    let new = NewInvite {
        email: Email::parse("vic@acme.test").unwrap(),
        role: UserRole::Viewer,
        token_hash: hash_of(1),
        invited_by: ann,
        expires_at: store.now() + Duration::days(7),
    };
    let InviteCreated::Created(invite) = store.create_invite(t.account, &new).await.unwrap() else {
        panic!("created");
    };
    assert_eq!(
        invite.invited_by.as_ref().map(Email::as_str),
        Some("ann@acme.test")
    );
    assert!(
        !format!("{new:?}").contains(hash_of(1).as_str()),
        "Debug hides the hash"
    );

    let link = hash_of(1);
    let (a, b) = tokio::join!(
        store.accept_invite(&link, "$argon2id$a"),
        store.accept_invite(&link, "$argon2id$b"),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let accepted: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            InviteAccepted::Accepted(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 1, "{outcomes:?}");
    assert!(outcomes.contains(&InviteAccepted::Dead));
    assert_eq!(accepted[0].role, UserRole::Viewer);
    assert_eq!(accepted[0].account_id, t.account);
    assert_eq!(store.list_users(t.account).await.unwrap().len(), 2);
    assert!(store.invite_by_token_hash(&hash_of(1)).await.unwrap().is_none());

    // An email with a user cannot be invited.
    let taken = NewInvite {
        token_hash: hash_of(2),
        ..new.clone()
    };
    assert_eq!(
        store.create_invite(t.account, &taken).await.unwrap(),
        InviteCreated::EmailTaken
    );
}

async fn two_owners_demoting_each_other_keep_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let t = seed::tenant(store, "Acme").await;
    let ann = user(store, t.account, "ann@acme.test", UserRole::Owner).await;
    let bob = user(store, t.account, "bob@acme.test", UserRole::Owner).await;
    let (a, b) = tokio::join!(
        store.set_user_role(t.account, ann, UserRole::Member),
        store.set_user_role(t.account, bob, UserRole::Viewer),
    );
    let mut changes = [a.unwrap(), b.unwrap()];
    changes.sort_by_key(|c| *c == TeamChange::LastOwner);
    assert_eq!(changes, [TeamChange::Done, TeamChange::LastOwner]);
    let owners = store
        .list_users(t.account)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.role == UserRole::Owner)
        .count();
    assert_eq!(owners, 1);

    // Removals too, and a removed user's sessions go with it.
    let carl = user(store, t.account, "carl@acme.test", UserRole::Owner).await;
    let new = bounty_store::NewSession {
        token_hash: hash_of(9),
        csrf_secret: "c".into(),
        expires_at: store.now() + Duration::hours(1),
    };
    store
        .create_session(t.account, carl, &new)
        .await
        .unwrap()
        .unwrap();
    let owner_left = if store.get_user(t.account, ann).await.unwrap().unwrap().role == UserRole::Owner {
        ann
    } else {
        bob
    };
    let (a, b) = tokio::join!(
        store.remove_user(t.account, owner_left),
        store.remove_user(t.account, carl),
    );
    let mut changes = [a.unwrap(), b.unwrap()];
    changes.sort_by_key(|c| *c == TeamChange::LastOwner);
    assert_eq!(changes, [TeamChange::Done, TeamChange::LastOwner]);
    // Whichever went first, one owner is left.
    let users = store.list_users(t.account).await.unwrap();
    assert_eq!(users.iter().filter(|u| u.role == UserRole::Owner).count(), 1);
    if !users.iter().any(|u| u.id == carl) {
        assert!(store.session_by_token_hash(&hash_of(9)).await.unwrap().is_none());
    }
    // Another account's id is not found.
    let other = seed::tenant(store, "Globex").await;
    assert_eq!(
        store
            .set_user_role(other.account, users[0].id, UserRole::Member)
            .await
            .unwrap(),
        TeamChange::NotFound
    );
    assert_eq!(
        store.remove_user(other.account, users[0].id).await.unwrap(),
        TeamChange::NotFound
    );
}

async fn a_reset_link_is_used_once_even_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let t = seed::tenant(store, "Acme").await;
    let ann = user(store, t.account, "ann@acme.test", UserRole::Owner).await;
    let holder = ResetHolder::User {
        account: t.account,
        user: ann,
    };
    store
        .create_password_reset(holder, &hash_of(3), store.now() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .password_reset_email(Realm::Customer, &hash_of(3))
            .await
            .unwrap()
            .map(|e| e.as_str().to_owned()),
        Some("ann@acme.test".to_owned())
    );
    assert!(
        store
            .password_reset_email(Realm::Operator, &hash_of(3))
            .await
            .unwrap()
            .is_none(),
        "realms do not mix"
    );
    let link = hash_of(3);
    let (a, b) = tokio::join!(
        store.use_password_reset(Realm::Customer, &link, "$argon2id$a"),
        store.use_password_reset(Realm::Customer, &link, "$argon2id$b"),
    );
    let used: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(used, vec![holder]);
    let hash = store
        .find_user_by_email(&Email::parse("ann@acme.test").unwrap())
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(hash == "$argon2id$a" || hash == "$argon2id$b");

    // Expired: dead.
    store
        .create_password_reset(holder, &hash_of(4), store.now() + Duration::hours(1))
        .await
        .unwrap();
    app.clock.advance(Duration::hours(1));
    assert!(
        store
            .use_password_reset(Realm::Customer, &hash_of(4), "$argon2id$c")
            .await
            .unwrap()
            .is_none()
    );
}

on_both_backends!(
    an_invite_is_accepted_once_even_at_once,
    two_owners_demoting_each_other_keep_one,
    a_reset_link_is_used_once_even_at_once,
);
