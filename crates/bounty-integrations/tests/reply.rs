//! The reply-back clients over real HTTP against the fake helpdesk: what
//! each vendor receives for a resolve and a handoff (exact JSON, auth
//! headers), how each failure is sorted, and that a retry after an
//! ambiguous failure never posts twice.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bounty_core::clock::Timestamp;
use bounty_integrations::reply::{INTERCOM_API_VERSION, USER_AGENT};
use bounty_integrations::retry::next_delay;
use bounty_integrations::testing::{FakeHelpdesk, Fault, PostKind, RecordedPost, RecordedRequest};
use bounty_integrations::{
    IntegrationKind, Reply, ReplyAction, ReplyCredentials, ReplyError, ReplySent, ReplyTarget, send_reply,
};
use secrecy::SecretString;
use serde_json::{Value, json};

const ZENDESK: IntegrationKind = IntegrationKind::Zendesk;
const INTERCOM: IntegrationKind = IntegrationKind::Intercom;
const CHATWOOT: IntegrationKind = IntegrationKind::Chatwoot;
const STANDARD: IntegrationKind = IntegrationKind::Standard;
/// The vendors that are read back for a marker (Standard dedupes instead).
const READ_BACK: [IntegrationKind; 3] = [ZENDESK, INTERCOM, CHATWOOT];

const REPLY_ID: &str = "obx_01JF3K8Z2Q9V6M4N7P5R1T0W8X";

/// A realistic ticket id per vendor.
fn ticket(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Zendesk => "48213",
        IntegrationKind::Intercom => "215463212345",
        IntegrationKind::Chatwoot => "1742",
        IntegrationKind::Standard => "T-100",
    }
}

fn resolve() -> ReplyAction {
    ReplyAction::Resolve {
        body: "Your refund of $42.00 was issued today.".into(),
    }
}

fn handoff() -> ReplyAction {
    ReplyAction::Handoff {
        note: "Bounty could not verify a fix: refund amount disputed.".into(),
    }
}

/// The Standard receiver checks the signature against the wall clock.
fn now() -> Timestamp {
    chrono::Utc::now()
}

struct Harness {
    fake: FakeHelpdesk,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        Harness {
            fake: FakeHelpdesk::start().await,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        kind: IntegrationKind,
        action: &ReplyAction,
        reply_id: &str,
        attempt: u32,
    ) -> Result<ReplySent, ReplyError> {
        self.send_to(&self.fake.target(kind), ticket(kind), action, reply_id, attempt)
            .await
    }

    async fn send_to(
        &self,
        target: &ReplyTarget,
        ticket: &str,
        action: &ReplyAction,
        reply_id: &str,
        attempt: u32,
    ) -> Result<ReplySent, ReplyError> {
        let data = json!({ "task_id": "task_01JF3K8Y", "outcome": "resolved" });
        let reply = Reply {
            ticket_external_id: ticket,
            action,
            reply_id,
            data: &data,
            attempt,
        };
        send_reply(&self.http, target, &reply, now()).await
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.fake.requests()
    }

    /// The posts of one kind.
    fn posts_of(&self, kind: &PostKind) -> Vec<RecordedPost> {
        self.fake
            .posts()
            .into_iter()
            .filter(|p| &p.kind == kind)
            .collect()
    }
}

fn post(vendor: IntegrationKind, kind: PostKind, body: Option<&str>, reply_id: Option<&str>) -> RecordedPost {
    RecordedPost {
        vendor,
        ticket: ticket(vendor).to_owned(),
        kind,
        body: body.map(str::to_owned),
        reply_id: reply_id.map(str::to_owned),
    }
}

fn assert_common_headers(request: &RecordedRequest) {
    assert_eq!(request.header("user-agent"), Some(USER_AGENT), "{request:?}");
    assert_eq!(request.header("accept"), Some("application/json"));
    if request.method != "GET" {
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
}

fn zendesk_basic_auth() -> String {
    let credentials = format!(
        "{}/token:{}",
        FakeHelpdesk::ZENDESK_EMAIL,
        FakeHelpdesk::ZENDESK_API_TOKEN
    );
    format!("Basic {}", BASE64.encode(credentials))
}

fn marked(text: &str) -> String {
    format!("{text}\n<!-- bounty:{REPLY_ID} -->")
}

// ---------------------------------------------------------------- Zendesk

#[tokio::test]
async fn zendesk_resolve_is_one_update_that_comments_solves_and_marks() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(ZENDESK, &resolve(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    assert_eq!(
        requests.len(),
        1,
        "the first try reads nothing back: {requests:?}"
    );
    let put = &requests[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/api/v2/tickets/48213.json")
    );
    assert_eq!(put.header("authorization"), Some(zendesk_basic_auth().as_str()));
    assert_common_headers(put);
    assert_eq!(
        put.body,
        Some(json!({"ticket": {
            "comment": {"body": "Your refund of $42.00 was issued today.", "public": true},
            "status": "solved",
            "metadata": {"bounty_reply_id": REPLY_ID},
        }}))
    );
    assert_eq!(
        h.fake.posts(),
        [
            post(
                ZENDESK,
                PostKind::Reply,
                Some("Your refund of $42.00 was issued today."),
                Some(REPLY_ID)
            ),
            post(ZENDESK, PostKind::Solve, None, Some(REPLY_ID)),
        ]
    );
    assert_eq!(h.fake.ticket_status(ZENDESK, "48213").as_deref(), Some("solved"));
}

#[tokio::test]
async fn zendesk_handoff_is_a_private_comment_and_a_tag_and_leaves_the_ticket_open() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(ZENDESK, &handoff(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        Some(json!({"ticket": {
            "comment": {"body": "Bounty could not verify a fix: refund amount disputed.", "public": false},
            "additional_tags": ["bounty_handoff"],
            "metadata": {"bounty_reply_id": REPLY_ID},
        }}))
    );
    let posts = h.fake.posts();
    assert_eq!(
        posts,
        [
            post(
                ZENDESK,
                PostKind::Note,
                Some("Bounty could not verify a fix: refund amount disputed."),
                Some(REPLY_ID)
            ),
            post(
                ZENDESK,
                PostKind::Tag("bounty_handoff".into()),
                None,
                Some(REPLY_ID)
            ),
        ]
    );
    assert!(
        !posts
            .iter()
            .any(|p| p.kind.is_done() || p.kind == PostKind::Reply)
    );
    assert_eq!(h.fake.ticket_status(ZENDESK, "48213").as_deref(), Some("open"));
}

#[tokio::test]
async fn zendesk_finds_its_marker_past_the_first_page_of_audits() {
    let h = Harness::start().await;
    // 100 earlier updates fill the first page of audits.
    for n in 0..100 {
        let note = ReplyAction::Handoff {
            note: format!("earlier note {n}"),
        };
        assert_eq!(
            h.send(ZENDESK, &note, &format!("obx_earlier{n}"), 1).await,
            Ok(ReplySent::Posted)
        );
    }
    h.fake.push_fault(Fault::ApplyThenFail);
    assert!(matches!(
        h.send(ZENDESK, &resolve(), REPLY_ID, 1).await,
        Err(ReplyError::Transient(_))
    ));

    let before = h.requests().len();
    assert_eq!(
        h.send(ZENDESK, &resolve(), REPLY_ID, 2).await,
        Ok(ReplySent::AlreadyPosted)
    );
    let retry: Vec<(String, Option<String>)> = h.requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.query.clone()))
        .collect();
    assert_eq!(
        retry,
        [
            ("GET".to_owned(), Some("page%5Bsize%5D=100".to_owned())),
            (
                "GET".to_owned(),
                Some("page%5Bsize%5D=100&page%5Bafter%5D=100".to_owned())
            ),
        ]
    );
    assert_eq!(h.posts_of(&PostKind::Reply).len(), 1);
    assert_eq!(h.posts_of(&PostKind::Solve).len(), 1);
}

// --------------------------------------------------------------- Intercom

#[tokio::test]
async fn intercom_resolve_replies_as_the_admin_then_closes() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(INTERCOM, &resolve(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/conversations/215463212345/reply"),
            ("POST", "/conversations/215463212345/parts"),
        ]
    );
    for request in &requests {
        let bearer = format!("Bearer {}", FakeHelpdesk::INTERCOM_ACCESS_TOKEN);
        assert_eq!(request.header("authorization"), Some(bearer.as_str()));
        assert_eq!(request.header("intercom-version"), Some(INTERCOM_API_VERSION));
        assert_eq!(INTERCOM_API_VERSION, "2.11");
        assert_common_headers(request);
    }
    assert_eq!(
        requests[0].body,
        Some(json!({
            "message_type": "comment",
            "type": "admin",
            "admin_id": FakeHelpdesk::INTERCOM_ADMIN_ID,
            "body": marked("Your refund of $42.00 was issued today."),
        }))
    );
    assert_eq!(
        requests[1].body,
        Some(json!({"message_type": "close", "type": "admin", "admin_id": FakeHelpdesk::INTERCOM_ADMIN_ID}))
    );
    assert_eq!(
        h.fake.posts(),
        [
            post(
                INTERCOM,
                PostKind::Reply,
                Some(&marked("Your refund of $42.00 was issued today.")),
                Some(REPLY_ID)
            ),
            post(INTERCOM, PostKind::Close, None, None),
        ]
    );
    assert_eq!(
        h.fake.ticket_status(INTERCOM, "215463212345").as_deref(),
        Some("closed")
    );
}

#[tokio::test]
async fn intercom_handoff_is_a_note_and_leaves_the_conversation_open() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(INTERCOM, &handoff(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/conversations/215463212345/reply");
    assert_eq!(
        requests[0].body,
        Some(json!({
            "message_type": "note",
            "type": "admin",
            "admin_id": FakeHelpdesk::INTERCOM_ADMIN_ID,
            "body": marked("Bounty could not verify a fix: refund amount disputed."),
        }))
    );
    assert_eq!(
        h.fake.posts(),
        [post(
            INTERCOM,
            PostKind::Note,
            Some(&marked("Bounty could not verify a fix: refund amount disputed.")),
            Some(REPLY_ID)
        )]
    );
    assert_eq!(
        h.fake.ticket_status(INTERCOM, "215463212345").as_deref(),
        Some("open")
    );
}

// --------------------------------------------------------------- Chatwoot

#[tokio::test]
async fn chatwoot_resolve_posts_a_public_message_then_resolves() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(CHATWOOT, &resolve(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/api/v1/accounts/3/conversations/1742/messages"),
            ("POST", "/api/v1/accounts/3/conversations/1742/toggle_status"),
        ]
    );
    for request in &requests {
        assert_eq!(
            request.header("api_access_token"),
            Some(FakeHelpdesk::CHATWOOT_API_ACCESS_TOKEN)
        );
        assert_eq!(request.header("authorization"), None);
        assert_common_headers(request);
    }
    assert_eq!(
        requests[0].body,
        Some(json!({
            "content": "Your refund of $42.00 was issued today.",
            "message_type": "outgoing",
            "private": false,
            "content_attributes": {"bounty_reply_id": REPLY_ID},
        }))
    );
    assert_eq!(requests[1].body, Some(json!({"status": "resolved"})));
    assert_eq!(
        h.fake.posts(),
        [
            post(
                CHATWOOT,
                PostKind::Reply,
                Some("Your refund of $42.00 was issued today."),
                Some(REPLY_ID)
            ),
            post(CHATWOOT, PostKind::Resolve, None, None),
        ]
    );
    assert_eq!(
        h.fake.ticket_status(CHATWOOT, "1742").as_deref(),
        Some("resolved")
    );
}

#[tokio::test]
async fn chatwoot_handoff_is_a_private_note_and_moves_the_conversation_to_the_humans() {
    let h = Harness::start().await;
    h.fake.add_ticket(CHATWOOT, "1742");
    assert_eq!(h.fake.ticket_status(CHATWOOT, "1742").as_deref(), Some("pending"));
    assert_eq!(
        h.send(CHATWOOT, &handoff(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body,
        Some(json!({
            "content": "Bounty could not verify a fix: refund amount disputed.",
            "message_type": "outgoing",
            "private": true,
            "content_attributes": {"bounty_reply_id": REPLY_ID},
        }))
    );
    assert_eq!(requests[1].body, Some(json!({"status": "open"})));
    let posts = h.fake.posts();
    assert_eq!(
        posts,
        [
            post(
                CHATWOOT,
                PostKind::Note,
                Some("Bounty could not verify a fix: refund amount disputed."),
                Some(REPLY_ID)
            ),
            post(CHATWOOT, PostKind::Status("open".into()), None, None),
        ]
    );
    assert!(!posts.iter().any(|p| p.kind.is_done()));
    assert_eq!(h.fake.ticket_status(CHATWOOT, "1742").as_deref(), Some("open"));
}

#[tokio::test]
async fn chatwoot_finds_its_marker_on_an_older_page_of_messages() {
    let h = Harness::start().await;
    h.fake.push_fault(Fault::ApplyThenFail);
    assert!(matches!(
        h.send(CHATWOOT, &resolve(), REPLY_ID, 1).await,
        Err(ReplyError::Transient(_))
    ));
    // 25 later messages push ours off the newest page of 20.
    for n in 0..25 {
        let later = ReplyAction::Handoff {
            note: format!("later note {n}"),
        };
        assert_eq!(
            h.send(CHATWOOT, &later, &format!("obx_later{n}"), 1).await,
            Ok(ReplySent::Posted)
        );
    }
    let before = h.requests().len();
    assert_eq!(
        h.send(CHATWOOT, &resolve(), REPLY_ID, 2).await,
        Ok(ReplySent::AlreadyPosted)
    );
    let retry = &h.requests()[before..];
    let reads: Vec<Option<&str>> = retry
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query.as_deref())
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[0], None);
    assert!(reads[1].is_some_and(|q| q.starts_with("before=")), "{reads:?}");
    assert_eq!(
        retry.last().map(|r| r.path.as_str()),
        Some("/api/v1/accounts/3/conversations/1742/toggle_status")
    );
    assert_eq!(h.posts_of(&PostKind::Reply).len(), 1);
    assert_eq!(
        h.fake.ticket_status(CHATWOOT, "1742").as_deref(),
        Some("resolved")
    );
}

// --------------------------------------------------------------- Standard

#[tokio::test]
async fn standard_resolve_is_one_signed_delivery_with_the_callers_data() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(STANDARD, &resolve(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );

    let requests = h.requests();
    assert_eq!(requests.len(), 1);
    let delivery = &requests[0];
    assert_eq!(
        (delivery.method.as_str(), delivery.path.as_str()),
        ("POST", "/hooks/standard")
    );
    assert_common_headers(delivery);
    assert_eq!(delivery.header("webhook-id"), Some(REPLY_ID));
    let timestamp: i64 = delivery
        .header("webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!((now().timestamp() - timestamp).abs() < 60);
    assert!(
        delivery
            .header("webhook-signature")
            .is_some_and(|s| s.starts_with("v1,"))
    );
    let mut body = delivery.body.clone().unwrap();
    assert!(
        body["timestamp"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
    body["timestamp"] = Value::Null;
    assert_eq!(
        body,
        json!({
            "type": "ticket.replied",
            "timestamp": null,
            "data": {
                "ticket_id": "T-100",
                "body": "Your refund of $42.00 was issued today.",
                "task_id": "task_01JF3K8Y",
                "outcome": "resolved",
            },
        })
    );
    // The receiver verified the signature before recording it.
    assert_eq!(
        h.fake.posts(),
        [post(
            STANDARD,
            PostKind::Webhook("ticket.replied".into()),
            Some("Your refund of $42.00 was issued today."),
            Some(REPLY_ID)
        )]
    );
}

#[tokio::test]
async fn standard_handoff_is_a_ticket_handoff_event() {
    let h = Harness::start().await;
    assert_eq!(
        h.send(STANDARD, &handoff(), REPLY_ID, 1).await,
        Ok(ReplySent::Posted)
    );
    let body = h.requests()[0].body.clone().unwrap();
    assert_eq!(body["type"], json!("ticket.handoff"));
    assert_eq!(
        body["data"]["note"],
        json!("Bounty could not verify a fix: refund amount disputed.")
    );
    assert!(body["data"].get("body").is_none());
    assert_eq!(
        h.fake.posts(),
        [post(
            STANDARD,
            PostKind::Webhook("ticket.handoff".into()),
            Some("Bounty could not verify a fix: refund amount disputed."),
            Some(REPLY_ID)
        )]
    );
}

#[tokio::test]
async fn standard_resend_after_an_ambiguous_failure_is_deduped_by_the_receiver() {
    let h = Harness::start().await;
    h.fake.push_fault(Fault::ApplyThenFail);
    assert!(matches!(
        h.send(STANDARD, &resolve(), REPLY_ID, 1).await,
        Err(ReplyError::Transient(_))
    ));
    // Standard never reads back: the resend is the same webhook-id, and the receiver dedupes it.
    assert_eq!(
        h.send(STANDARD, &resolve(), REPLY_ID, 2).await,
        Ok(ReplySent::Posted)
    );
    let requests = h.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.method == "POST" && r.header("webhook-id") == Some(REPLY_ID))
    );
    assert_eq!(h.fake.posts().len(), 1, "{:?}", h.fake.posts());
}

// --------------------------------------------- ambiguous failures, all vendors

#[tokio::test]
async fn a_retry_after_the_vendor_applied_but_never_answered_is_already_posted() {
    for kind in READ_BACK {
        let h = Harness::start().await;
        h.fake.push_fault(Fault::ApplyThenFail);
        let first = h.send(kind, &resolve(), REPLY_ID, 1).await;
        assert!(
            matches!(first, Err(ReplyError::Transient(_))),
            "{kind}: {first:?}"
        );
        assert_eq!(
            h.send(kind, &resolve(), REPLY_ID, 2).await,
            Ok(ReplySent::AlreadyPosted),
            "{kind}"
        );

        let replies = h.posts_of(&PostKind::Reply);
        assert_eq!(replies.len(), 1, "{kind}: {:?}", h.fake.posts());
        assert_eq!(replies[0].reply_id.as_deref(), Some(REPLY_ID));
        let done: Vec<RecordedPost> = h.fake.posts().into_iter().filter(|p| p.kind.is_done()).collect();
        assert_eq!(
            done.len(),
            1,
            "{kind}: exactly one solve/close/resolve: {:?}",
            h.fake.posts()
        );
        // The retry read the ticket back first.
        assert!(h.requests().iter().any(|r| r.method == "GET"), "{kind}");
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_close_skips_the_reply_and_finishes_the_close() {
    for kind in [INTERCOM, CHATWOOT] {
        let h = Harness::start().await;
        // The reply goes through; the status change after it fails.
        h.fake.push_fault(Fault::Delay(Duration::ZERO));
        h.fake.push_fault(Fault::Status(503, None));
        let first = h.send(kind, &resolve(), REPLY_ID, 1).await;
        assert!(
            matches!(first, Err(ReplyError::Transient(_))),
            "{kind}: {first:?}"
        );
        assert_eq!(
            h.fake.ticket_status(kind, ticket(kind)).as_deref(),
            Some(if kind == INTERCOM { "open" } else { "pending" })
        );

        assert_eq!(
            h.send(kind, &resolve(), REPLY_ID, 2).await,
            Ok(ReplySent::AlreadyPosted),
            "{kind}"
        );
        let kinds: Vec<PostKind> = h.fake.posts().into_iter().map(|p| p.kind).collect();
        let done = if kind == INTERCOM {
            PostKind::Close
        } else {
            PostKind::Resolve
        };
        assert_eq!(kinds, [PostKind::Reply, done], "{kind}");
    }
}

#[tokio::test]
async fn a_retry_that_finds_no_marker_posts() {
    for kind in READ_BACK {
        let h = Harness::start().await;
        // The first try failed before reaching the vendor: nothing to find.
        assert_eq!(
            h.send(kind, &resolve(), REPLY_ID, 3).await,
            Ok(ReplySent::Posted),
            "{kind}"
        );
        let requests = h.requests();
        assert_eq!(
            requests[0].method, "GET",
            "{kind}: the marker is looked for first"
        );
        assert_eq!(h.posts_of(&PostKind::Reply).len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn another_replys_marker_does_not_count() {
    for kind in READ_BACK {
        let h = Harness::start().await;
        assert_eq!(
            h.send(kind, &handoff(), "obx_other", 1).await,
            Ok(ReplySent::Posted)
        );
        assert_eq!(
            h.send(kind, &resolve(), REPLY_ID, 2).await,
            Ok(ReplySent::Posted),
            "{kind}"
        );
        assert_eq!(h.posts_of(&PostKind::Reply).len(), 1, "{kind}");
        assert_eq!(h.posts_of(&PostKind::Note).len(), 1, "{kind}");
    }
}

// ------------------------------------------------------- errors, all vendors

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_for_that_long() {
    for kind in IntegrationKind::ALL {
        let h = Harness::start().await;
        h.fake
            .push_fault(Fault::Status(429, Some(Duration::from_secs(37))));
        let error = h.send(kind, &resolve(), REPLY_ID, 1).await.unwrap_err();
        assert_eq!(
            error,
            ReplyError::RateLimited {
                retry_after: Some(Duration::from_secs(37))
            },
            "{kind}"
        );
        assert!(error.is_transient());
        assert!(h.fake.posts().is_empty(), "{kind}");
        // The sender waits the longer of Retry-After and the 5 s step.
        assert_eq!(
            next_delay(&bounty_integrations::retry::SCHEDULE, 1, &error, 0.5),
            Some(Duration::from_secs(37))
        );
        // A 429 without Retry-After falls back to the schedule.
        h.fake.push_fault(Fault::Status(429, None));
        let bare = h.send(kind, &resolve(), REPLY_ID, 1).await.unwrap_err();
        assert_eq!(bare, ReplyError::RateLimited { retry_after: None }, "{kind}");
    }
}

#[tokio::test]
async fn a_410_is_gone() {
    for kind in IntegrationKind::ALL {
        let h = Harness::start().await;
        h.fake.push_fault(Fault::Gone);
        let error = h.send(kind, &handoff(), REPLY_ID, 1).await.unwrap_err();
        assert_eq!(error, ReplyError::Gone, "{kind}");
        assert_eq!(
            next_delay(&bounty_integrations::retry::SCHEDULE, 1, &error, 0.5),
            None
        );
        assert!(h.fake.posts().is_empty());
    }
}

#[tokio::test]
async fn server_errors_are_transient() {
    for kind in IntegrationKind::ALL {
        for status in [500, 502, 503, 408] {
            let h = Harness::start().await;
            h.fake.push_fault(Fault::Status(status, None));
            let error = h.send(kind, &resolve(), REPLY_ID, 1).await.unwrap_err();
            assert!(
                matches!(&error, ReplyError::Transient(m) if m.contains(&status.to_string())),
                "{kind} {status}: {error:?}"
            );
            assert_eq!(
                next_delay(&bounty_integrations::retry::SCHEDULE, 1, &error, 0.5),
                Some(Duration::from_secs(5))
            );
            assert!(h.fake.posts().is_empty());
        }
    }
}

#[tokio::test]
async fn wrong_credentials_are_rejected_with_the_vendors_own_401() {
    let h = Harness::start().await;
    let wrong = "wrong-secret-do-not-echo";
    let standard_secret = "whsec_d3Jvbmctc2VjcmV0LWRvLW5vdC1lY2hv";
    let cases = [
        (
            ReplyCredentials::Zendesk {
                email: FakeHelpdesk::ZENDESK_EMAIL.into(),
                api_token: SecretString::from(wrong),
            },
            "zendesk update ticket: Couldn't authenticate you",
        ),
        (
            ReplyCredentials::Intercom {
                access_token: SecretString::from(wrong),
                admin_id: FakeHelpdesk::INTERCOM_ADMIN_ID.into(),
            },
            "intercom reply: unauthorized: Access Token Invalid",
        ),
        (
            ReplyCredentials::Chatwoot {
                api_access_token: SecretString::from(wrong),
                account_id: FakeHelpdesk::CHATWOOT_ACCOUNT_ID.into(),
            },
            "chatwoot post message: Invalid Access Token",
        ),
        (
            ReplyCredentials::Standard {
                secret: SecretString::from(standard_secret),
            },
            "standard deliver: no_matching_signature",
        ),
    ];
    for (credentials, message) in cases {
        let kind = credentials.kind();
        let target = ReplyTarget {
            credentials,
            ..h.fake.target(kind)
        };
        let error = h
            .send_to(&target, ticket(kind), &resolve(), REPLY_ID, 1)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ReplyError::Rejected {
                status: 401,
                message: message.into()
            },
            "{kind}"
        );
        assert_eq!(
            next_delay(&bounty_integrations::retry::SCHEDULE, 1, &error, 0.5),
            None
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(
                !shown.contains(wrong) && !shown.contains(standard_secret),
                "{shown}"
            );
        }
    }
    assert!(h.fake.posts().is_empty());
}

#[tokio::test]
async fn an_unknown_ticket_is_the_vendors_404() {
    let h = Harness::start().await;
    let expected = [
        (ZENDESK, "zendesk update ticket: RecordNotFound: Not found"),
        (INTERCOM, "intercom reply: not_found: Resource Not Found"),
        (CHATWOOT, "chatwoot post message: Resource could not be found"),
        (STANDARD, "standard deliver: unknown_ticket"),
    ];
    for (kind, message) in expected {
        h.fake.add_ticket(kind, "999");
        let error = h
            .send_to(&h.fake.target(kind), ticket(kind), &resolve(), REPLY_ID, 1)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ReplyError::Rejected {
                status: 404,
                message: message.into()
            },
            "{kind}"
        );
        // The registered one still works.
        assert_eq!(
            h.send_to(&h.fake.target(kind), "999", &handoff(), REPLY_ID, 1)
                .await,
            Ok(ReplySent::Posted),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_slow_vendor_within_the_timeout_still_gets_the_reply() {
    for kind in IntegrationKind::ALL {
        let h = Harness::start().await;
        h.fake.push_fault(Fault::Delay(Duration::from_millis(200)));
        assert_eq!(
            h.send(kind, &resolve(), REPLY_ID, 1).await,
            Ok(ReplySent::Posted),
            "{kind}"
        );
        assert!(!h.fake.posts().is_empty());
    }
}

#[tokio::test]
async fn a_vendor_that_cannot_be_reached_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let h = Harness::start().await;
    for kind in IntegrationKind::ALL {
        let target = ReplyTarget {
            base_url: closed.clone(),
            ..h.fake.target(kind)
        };
        let error = h
            .send_to(&target, ticket(kind), &resolve(), REPLY_ID, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ReplyError::Transient(m) if m.contains("could not connect")),
            "{kind}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_unusable_target_or_id_is_config_and_sends_nothing() {
    let h = Harness::start().await;
    for kind in IntegrationKind::ALL {
        let good = h.fake.target(kind);
        let with_base = |base_url: &str| ReplyTarget {
            base_url: base_url.to_owned(),
            ..good.clone()
        };
        let bad_bases = [
            "ftp://127.0.0.1/",
            "127.0.0.1",
            "http://agent:pw@127.0.0.1",
            "http://127.0.0.1/?next=/admin",
            "http://127.0.0.1/#x",
        ];
        for base in bad_bases {
            let error = h
                .send_to(&with_base(base), ticket(kind), &resolve(), REPLY_ID, 1)
                .await
                .unwrap_err();
            assert!(matches!(error, ReplyError::Config(_)), "{kind} {base}: {error:?}");
            assert!(!error.to_string().contains(":pw@"), "{error}");
        }
        for ticket_id in ["", "../48213", "48213/audits", "48213?x", "48 213", "%2e%2e"] {
            let error = h
                .send_to(&good, ticket_id, &resolve(), REPLY_ID, 1)
                .await
                .unwrap_err();
            assert!(
                matches!(error, ReplyError::Config(_)),
                "{kind} {ticket_id:?}: {error:?}"
            );
        }
        let error = h
            .send_to(&good, ticket(kind), &resolve(), "obx 1/..", 2)
            .await
            .unwrap_err();
        assert!(matches!(error, ReplyError::Config(_)), "{kind}: {error:?}");
        let other = IntegrationKind::ALL.into_iter().find(|k| *k != kind).unwrap();
        let mismatched = ReplyTarget {
            kind: other,
            ..good.clone()
        };
        let error = h
            .send_to(&mismatched, ticket(kind), &resolve(), REPLY_ID, 1)
            .await
            .unwrap_err();
        assert!(matches!(error, ReplyError::Config(_)), "{kind}: {error:?}");
    }
    let bad_secret = ReplyTarget {
        credentials: ReplyCredentials::Standard {
            secret: SecretString::from("not-base64!"),
        },
        ..h.fake.target(STANDARD)
    };
    let error = h
        .send_to(&bad_secret, "T-100", &resolve(), REPLY_ID, 1)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ReplyError::Config("the Standard Webhooks secret is not whsec_ + base64".into())
    );
    assert!(h.requests().is_empty(), "{:?}", h.requests());
}

#[tokio::test]
async fn a_standard_receiver_with_its_own_secret_accepts_only_that_secret() {
    let secret = "whsec_C2FtcGxlLXNlY3JldC1mb3ItdGhlLXJlY2VpdmVy";
    let fake = FakeHelpdesk::start_with_standard_secret(secret).await;
    let http = reqwest::Client::new();
    let target = fake.target(STANDARD);
    assert!(matches!(&target.credentials, ReplyCredentials::Standard { .. }));
    let data = Value::Null;
    let action = resolve();
    let reply = Reply {
        ticket_external_id: "T-7",
        action: &action,
        reply_id: REPLY_ID,
        data: &data,
        attempt: 1,
    };
    assert_eq!(
        send_reply(&http, &target, &reply, now()).await,
        Ok(ReplySent::Posted)
    );
    // Signed an hour ago: outside the receiver's tolerance.
    let stale = now() - chrono::TimeDelta::hours(1);
    let reply = Reply {
        reply_id: "obx_stale",
        ..reply
    };
    let error = send_reply(&http, &target, &reply, stale).await.unwrap_err();
    assert_eq!(
        error,
        ReplyError::Rejected {
            status: 401,
            message: "standard deliver: timestamp_out_of_tolerance".into()
        }
    );
    assert_eq!(fake.posts().len(), 1);
}

/// The test ping, per vendor: the read that proves the credentials work
/// (touching no ticket), and a refusal sorted like a reply's.
#[tokio::test]
async fn each_vendors_test_ping_reads_with_its_credentials_and_touches_no_ticket() {
    let fake = FakeHelpdesk::start().await;
    let http = bounty_integrations::reply::http_client().unwrap();
    for (kind, method, path) in [
        (ZENDESK, "GET", "/api/v2/users/me.json"),
        (INTERCOM, "GET", "/me"),
        (CHATWOOT, "GET", "/api/v1/accounts/3/conversations/meta"),
        (STANDARD, "POST", FakeHelpdesk::STANDARD_PATH),
    ] {
        let before = fake.requests().len();
        bounty_integrations::reply::ping(&http, &fake.target(kind), now())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let requests = fake.requests();
        assert_eq!(requests.len(), before + 1, "{kind}: one request");
        let sent = requests.last().unwrap();
        assert_eq!(
            (sent.method.as_str(), sent.path.as_str()),
            (method, path),
            "{kind}"
        );
        assert_common_headers(sent);
        if kind == STANDARD {
            assert_eq!(sent.body.as_ref().unwrap()["type"], "ping");
            assert!(
                sent.header("webhook-signature")
                    .is_some_and(|s| s.starts_with("v1,"))
            );
        }
        // A refusal is the error a reply would get; bad credentials too.
        fake.push_fault(Fault::Status(401, None));
        let refused = bounty_integrations::reply::ping(&http, &fake.target(kind), now()).await;
        assert!(
            matches!(refused, Err(ReplyError::Rejected { status: 401, .. })),
            "{kind}: {refused:?}"
        );
        fake.push_fault(Fault::Gone);
        let gone = bounty_integrations::reply::ping(&http, &fake.target(kind), now()).await;
        assert!(matches!(gone, Err(ReplyError::Gone)), "{kind}: {gone:?}");
    }
    let mut wrong = fake.target(ZENDESK);
    wrong.credentials = ReplyCredentials::Zendesk {
        email: FakeHelpdesk::ZENDESK_EMAIL.to_owned(),
        api_token: SecretString::from("wrong".to_owned()),
    };
    let refused = bounty_integrations::reply::ping(&http, &wrong, now()).await;
    assert!(
        matches!(refused, Err(ReplyError::Rejected { status: 401, .. })),
        "{refused:?}"
    );
    assert!(fake.posts().is_empty(), "a ping touches no ticket");
}
