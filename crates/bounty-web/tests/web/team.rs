//! Teammates over real HTTP: the `viewer` role (every page, no change),
//! the team page and its owner-only actions, invites by one-time link (once,
//! expiring, never to an email that has a user), the last owner, and
//! tenant isolation of all of it.

use bounty_core::{AccountId, InviteId, UserId};
use bounty_store::{Email, UserRole};
use chrono::Duration;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, Page, TestApp, logged};

const VIEWER_REFUSED: &str = "Viewers can see this account but not change it.";
const OWNER_ONLY: &str = "Only an owner of this account can do that.";
const LAST_OWNER: &str = "That would leave the account without an owner.";
const DEAD_LINK: &str = "This link does not work";
const NEW_PASSWORD: &str = "a brand new password";

/// The id of the user with `email`.
async fn user_id(app: &TestApp, email: &str) -> UserId {
    let found = app.store.find_user_by_email(&Email::parse(email).unwrap()).await;
    found.unwrap().expect("the user exists").user.id
}

/// Invites `email` as `role` from the owner's browser; the answer page.
async fn invite(b: &mut Browser, email: &str, role: &str) -> Page {
    let csrf = b.csrf().await;
    b.post(
        "/team/invites",
        &[("email", email), ("role", role), ("csrf", &csrf)],
    )
    .await
}

/// The invite link (`/invite/…`) on an invite's answer page.
fn link_on(page: &Page) -> String {
    page.assert_status(StatusCode::OK);
    let start = page.body.find("/invite/").expect("a link on the page");
    let len = page.body[start..].find('"').expect("the link's closing quote");
    page.body[start..start + len].to_owned()
}

/// Accepts an invite in `b` with `password`.
async fn accept(b: &mut Browser, link: &str, password: &str, confirm: &str) -> Page {
    let form = b.get(link).await;
    form.assert_status(StatusCode::OK);
    let csrf = form.csrf();
    b.post(
        link,
        &[("password", password), ("confirm", confirm), ("csrf", &csrf)],
    )
    .await
}

async fn viewers_see_every_page_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    let task = seed::resolved_task(&app.store, &t, "Refund for order 1042").await;
    let ann = seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, t.account, "vic@acme.test", UserRole::Viewer).await;
    let mut vic = app.logged_in("vic@acme.test", PASSWORD).await;

    for path in [
        "/",
        "/tasks",
        &format!("/tasks/{task}"),
        "/agents",
        &format!("/agents/{}", t.agent),
        "/integrations",
        "/usage",
        "/api-keys",
        "/invoices",
        "/billing",
        "/team",
    ] {
        let page = vic.get(path).await;
        page.assert_status(StatusCode::OK).assert_contains("(viewer)");
        // The only forms a viewer is shown: logout and the live/test switch.
        let forms = page.body.matches("method=\"post\"").count();
        assert_eq!(forms, 2, "{path} shows a viewer an action form: {}", page.body);
    }

    let posts: Vec<_> = [
        "/api-keys".to_owned(),
        format!("/api-keys/{}/revoke", t.key),
        "/agents".to_owned(),
        format!("/agents/{}", t.agent),
        "/integrations".to_owned(),
        "/billing/cap".to_owned(),
        format!("/tasks/{task}/dispute"),
        "/team/invites".to_owned(),
        format!("/team/users/{ann}/role"),
        format!("/team/users/{ann}/remove"),
    ]
    .into_iter()
    .map(|path| (path, vec![("name", "x"), ("role", "viewer")]))
    .collect();
    vic.post_each(&posts, StatusCode::FORBIDDEN, VIEWER_REFUSED).await;
    let csrf = vic.csrf().await;
    // Nothing changed.
    let keys = app
        .store
        .list_api_keys(t.account, bounty_core::PageLimit::default(), None)
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1);
    assert!(keys.items[0].revoked_at.is_none());
    assert_eq!(app.store.list_users(t.account).await.unwrap().len(), 2);

    // Without the session's token a viewer's form is still a CSRF refusal.
    vic.post("/api-keys", &[("csrf", "wrong"), ("name", "x")])
        .await
        .assert_status(StatusCode::FORBIDDEN)
        .assert_contains("This form has expired");
    // The live/test switch and logout stay open to viewers.
    let r = vic.post("/mode", &[("csrf", &csrf), ("mode", "test")]).await;
    r.assert_status(StatusCode::SEE_OTHER);
    let r = vic.post("/logout", &[("csrf", &csrf)]).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
    assert_eq!(vic.get("/").await.status, StatusCode::SEE_OTHER);
}

async fn members_see_the_team_and_cannot_manage_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    let ann = seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, t.account, "meg@acme.test", UserRole::Member).await;
    let mut meg = app.logged_in("meg@acme.test", PASSWORD).await;

    let team = meg.get("/team").await;
    team.assert_status(StatusCode::OK)
        .assert_contains("ann@acme.test")
        .assert_contains("meg@acme.test")
        .assert_contains("Only an owner of this account can invite")
        .assert_lacks("action=\"/team/invites\"")
        .assert_lacks("/remove");
    let posts = [
        (
            "/team/invites".to_owned(),
            vec![("email", "new@acme.test"), ("role", "owner")],
        ),
        (format!("/team/users/{ann}/role"), vec![("role", "viewer")]),
        (format!("/team/users/{ann}/remove"), vec![]),
    ];
    meg.post_each(&posts, StatusCode::FORBIDDEN, OWNER_ONLY).await;
    assert!(
        app.store
            .list_pending_invites(t.account)
            .await
            .unwrap()
            .is_empty()
    );
    let users = app.store.list_users(t.account).await.unwrap();
    assert!(users.iter().any(|u| u.id == ann && u.role == UserRole::Owner));
}

async fn an_invite_link_works_once_and_signs_in_with_its_role(backend: Backend) {
    logged::capture();
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;

    let created = invite(&mut ann, "Vic@Acme.test", "viewer").await;
    created
        .assert_contains("vic@acme.test (viewer)")
        .assert_contains("shown only once");
    assert_eq!(
        created.headers.get("cache-control").unwrap(),
        "no-store",
        "the link stays out of caches"
    );
    let link = link_on(&created);
    let token = link.trim_start_matches("/invite/").to_owned();
    // The link is logged once (no mailer), and nowhere else.
    let pending = app.store.list_pending_invites(t.account).await.unwrap();
    assert_eq!(pending.len(), 1);
    let id = pending[0].id.to_string();
    assert_eq!(logged::link_for("invite.id", &id).as_deref(), Some(link.as_str()));
    assert_eq!(logged::events_holding(&token), 1);
    // The team page lists it, without its link.
    ann.get("/team")
        .await
        .assert_contains("vic@acme.test")
        .assert_lacks(&token);

    // Someone else opens the link too, and waits.
    let mut late = app.browser();
    let late_csrf = late.get(&link).await.csrf();
    let mut vic = app.browser();
    let form = vic.get(&link).await;
    form.assert_status(StatusCode::OK)
        .assert_contains("Join Acme")
        .assert_contains("viewer");
    // A refused password names its field, and uses nothing up.
    accept(&mut vic, &link, "short", "short")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("`password` must be at least 12 characters.");
    accept(&mut vic, &link, NEW_PASSWORD, "another password")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("`confirm` must repeat `password` exactly.");
    let r = accept(&mut vic, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/"));
    vic.get("/")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("vic@acme.test")
        .assert_contains("(viewer)");
    let vic_id = user_id(&app, "vic@acme.test").await;
    let user = app.store.get_user(t.account, vic_id).await.unwrap().unwrap();
    assert_eq!(user.role, UserRole::Viewer);
    assert!(
        app.store
            .list_pending_invites(t.account)
            .await
            .unwrap()
            .is_empty()
    );
    app.logged_in("vic@acme.test", NEW_PASSWORD).await;

    // Twice: refused, whoever tries.
    app.browser()
        .get(&link)
        .await
        .assert_status(StatusCode::NOT_FOUND)
        .assert_contains(DEAD_LINK);
    late.post(
        &link,
        &[
            ("password", "someone else's pw"),
            ("confirm", "someone else's pw"),
            ("csrf", &late_csrf),
        ],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND)
    .assert_contains(DEAD_LINK);
    assert_eq!(app.store.list_users(t.account).await.unwrap().len(), 2);
    // Garbage and unknown tokens are the same dead link.
    for bad in [
        "/invite/nope",
        "/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        app.browser()
            .get(bad)
            .await
            .assert_status(StatusCode::NOT_FOUND)
            .assert_contains(DEAD_LINK);
    }
    assert_eq!(
        logged::events_holding(&token),
        1,
        "the token was logged once only"
    );
}

async fn expired_and_revoked_invites_are_dead(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;

    let revoked = link_on(&invite(&mut ann, "rev@acme.test", "member").await);
    let id = app.store.list_pending_invites(t.account).await.unwrap()[0].id;
    let csrf = ann.csrf().await;
    let r = ann
        .post(&format!("/team/invites/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    app.browser()
        .get(&revoked)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // A second invite of an email replaces the first.
    let first = link_on(&invite(&mut ann, "mo@acme.test", "member").await);
    let second = link_on(&invite(&mut ann, "mo@acme.test", "owner").await);
    app.browser()
        .get(&first)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.browser()
        .get(&second)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("owner");

    // Seven days later, the second has expired too, and is listed no more.
    let mut mo = app.browser();
    let form = mo.get(&second).await;
    let csrf = form.csrf();
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    mo.get(&second)
        .await
        .assert_status(StatusCode::NOT_FOUND)
        .assert_contains(DEAD_LINK);
    mo.post(
        &second,
        &[
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
            ("csrf", &csrf),
        ],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    assert!(
        app.store
            .list_pending_invites(t.account)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .find_user_by_email(&Email::parse("mo@acme.test").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn invites_are_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    let globex = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, acme.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, globex.account, "gus@globex.test", UserRole::Member).await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;

    invite(&mut ann, "GUS@globex.test", "member")
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("`email`: gus@globex.test already has a Bounty login");
    invite(&mut ann, "ann@acme.test", "member")
        .await
        .assert_status(StatusCode::CONFLICT);
    invite(&mut ann, "not an email", "member")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("`email` is not an email address.")
        .assert_contains("value=\"not an email\"");
    invite(&mut ann, "new@acme.test", "admin")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("`role` must be owner, member or viewer.");
    let csrf = ann.csrf().await;
    ann.post(
        "/team/invites",
        &[("email", "a\0b@acme.test"), ("role", "member"), ("csrf", &csrf)],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("`email` contains a NUL character");
    assert!(
        app.store
            .list_pending_invites(acme.account)
            .await
            .unwrap()
            .is_empty()
    );

    // An email that gets a user after its invite was made: the accept is
    // refused, naming why.
    let link = link_on(&invite(&mut ann, "late@acme.test", "member").await);
    seed::user(&app.store, globex.account, "late@acme.test", UserRole::Member).await;
    accept(&mut app.browser(), &link, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("`email`: late@acme.test has had a Bounty login");
}

async fn the_last_owner_cannot_leave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    let ann = seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let bob = seed::user(&app.store, t.account, "bob@acme.test", UserRole::Member).await;
    let mut ann_b = app.logged_in("ann@acme.test", PASSWORD).await;
    let mut bob_b = app.logged_in("bob@acme.test", PASSWORD).await;
    let posts = [
        (format!("/team/users/{ann}/role"), vec![("role", "member")]),
        (format!("/team/users/{ann}/remove"), vec![]),
    ];
    ann_b.post_each(&posts, StatusCode::CONFLICT, LAST_OWNER).await;
    let csrf = ann_b.csrf().await;
    // Make Bob an owner: now Ann may step down, and Bob may remove her.
    let posts = [
        (format!("/team/users/{bob}/role"), vec![("role", "owner")]),
        (format!("/team/users/{ann}/role"), vec![("role", "viewer")]),
    ];
    ann_b.post_each(&posts, StatusCode::SEE_OTHER, "").await;
    // Ann is a viewer from her next request: her forms are refused.
    ann_b
        .get("/team")
        .await
        .assert_contains("(viewer)")
        .assert_lacks("action=\"/team/invites\"");
    ann_b
        .post(
            &format!("/team/users/{bob}/role"),
            &[("role", "member"), ("csrf", &csrf)],
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let bob_csrf = bob_b.csrf().await;
    bob_b
        .post(
            &format!("/team/users/{bob}/role"),
            &[("role", "member"), ("csrf", &bob_csrf)],
        )
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains(LAST_OWNER);
    let r = bob_b
        .post(&format!("/team/users/{ann}/remove"), &[("csrf", &bob_csrf)])
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    // Removed: her session is gone, and so is she.
    assert_eq!(ann_b.get("/team").await.location(), Some("/login"));
    assert_eq!(
        ann_b.login("ann@acme.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let users = app.store.list_users(t.account).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].id, users[0].role), (bob, UserRole::Owner));
    // A bad role is a 400 naming the field; a bad id a 404.
    bob_b
        .post(
            &format!("/team/users/{bob}/role"),
            &[("role", "boss"), ("csrf", &bob_csrf)],
        )
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("`role`");
    bob_b
        .post("/team/users/nope/remove", &[("csrf", &bob_csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

async fn an_owner_cannot_touch_another_accounts_team(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    let globex = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, acme.account, "ann@acme.test", UserRole::Owner).await;
    let gus = seed::user(&app.store, globex.account, "gus@globex.test", UserRole::Owner).await;
    let gia = seed::user(&app.store, globex.account, "gia@globex.test", UserRole::Member).await;
    let mut gus_b = app.logged_in("gus@globex.test", PASSWORD).await;
    link_on(&invite(&mut gus_b, "new@globex.test", "member").await);
    let globex_invite: InviteId = app.store.list_pending_invites(globex.account).await.unwrap()[0].id;

    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    ann.get("/team")
        .await
        .assert_lacks("globex.test")
        .assert_lacks(&gia.to_string());
    let posts = [
        (format!("/team/users/{gia}/role"), vec![("role", "owner")]),
        (format!("/team/users/{gus}/role"), vec![("role", "viewer")]),
        (format!("/team/users/{gia}/remove"), vec![]),
        (format!("/team/invites/{globex_invite}/revoke"), vec![]),
    ];
    ann.post_each(&posts, StatusCode::NOT_FOUND, "Not found").await;
    let users = app.store.list_users(globex.account).await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().any(|u| u.id == gus && u.role == UserRole::Owner));
    assert!(users.iter().any(|u| u.id == gia && u.role == UserRole::Member));
    assert_eq!(
        app.store
            .list_pending_invites(globex.account)
            .await
            .unwrap()
            .len(),
        1
    );
    // And the store itself answers nothing across accounts.
    let other = AccountId::new();
    assert!(app.store.list_pending_invites(other).await.unwrap().is_empty());
    assert!(
        !app.store
            .revoke_invite(acme.account, globex_invite)
            .await
            .unwrap()
    );
}

on_both_backends!(
    viewers_see_every_page_and_change_nothing,
    members_see_the_team_and_cannot_manage_it,
    an_invite_link_works_once_and_signs_in_with_its_role,
    expired_and_revoked_invites_are_dead,
    invites_are_refused_with_the_field_named,
    the_last_owner_cannot_leave,
    an_owner_cannot_touch_another_accounts_team,
);
