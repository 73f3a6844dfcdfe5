//! The Stripe client against the fake Stripe, over real HTTP.

use std::time::Duration;

use bounty_billing::stripe::{IdempotencyKey, MeterEvent, StripeClient, StripeConfig, StripeError};
use bounty_billing::testing::{FakeStripe, Fault, RecordedMeterEvent};
use secrecy::SecretString;

const EVENT_NAME: &str = "bounty_resolved_task";

fn client_with(fake: &FakeStripe, secret: &str, timeout: Duration) -> StripeClient {
    StripeClient::new(StripeConfig {
        secret_key: SecretString::from(secret),
        base_url: fake.base_url(),
        timeout,
    })
    .expect("valid config")
}

fn client(fake: &FakeStripe) -> StripeClient {
    client_with(fake, FakeStripe::SECRET_KEY, Duration::from_secs(5))
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::new(raw).unwrap()
}

fn event<'a>(identifier: &'a str, customer: &'a str, value: i64) -> MeterEvent<'a> {
    MeterEvent {
        event_name: EVENT_NAME,
        identifier,
        stripe_customer_id: customer,
        value,
        timestamp_unix: 1_700_000_000,
    }
}

#[tokio::test]
async fn meter_event_is_created_with_the_idempotency_key_sent() {
    let fake = FakeStripe::start().await;
    client(&fake)
        .create_meter_event(&key("meter:task_1"), &event("task_1", "cus_1", 7))
        .await
        .unwrap();

    assert_eq!(
        fake.meter_events(),
        vec![RecordedMeterEvent {
            event_name: EVENT_NAME.to_owned(),
            identifier: "task_1".to_owned(),
            stripe_customer_id: "cus_1".to_owned(),
            value: 7,
            timestamp: 1_700_000_000,
            cancelled: false,
        }]
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/billing/meter_events");
    assert_eq!(requests[0].idempotency_key.as_deref(), Some("meter:task_1"));
}

#[tokio::test]
async fn replaying_the_same_key_records_one_event() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    let key = key("meter:task_1");
    client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    // Without the saved response this would be a duplicate-identifier 400.
    client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap();

    assert_eq!(fake.meter_events().len(), 1);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn replayed_response_is_byte_identical_and_marked() {
    let fake = FakeStripe::start().await;
    let http = reqwest::Client::new();
    let send = || {
        http.post(format!("{}/v1/customers", fake.base_url()))
            .bearer_auth(FakeStripe::SECRET_KEY)
            .header("Idempotency-Key", "customer:acct_1")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=Acme&metadata[account_id]=acct_1")
            .send()
    };
    let first = send().await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.text().await.unwrap(), first);
}

#[tokio::test]
async fn same_key_with_different_parameters_is_an_idempotency_error() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    let key = key("meter:task_1");
    client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    let err = client
        .create_meter_event(&key, &event("task_1", "cus_1", 8))
        .await
        .unwrap_err();

    match &err {
        StripeError::Rejected {
            status: 400,
            error_type,
            ..
        } => assert_eq!(error_type, "idempotency_error"),
        other => panic!("expected an idempotency error, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(fake.meter_events().len(), 1);
}

#[tokio::test]
async fn duplicate_identifier_under_a_new_key_is_rejected_like_stripe() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    client
        .create_meter_event(&key("k1"), &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    let err = client
        .create_meter_event(&key("k2"), &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();

    match &err {
        StripeError::Rejected {
            status: 400,
            error_type,
            message,
            ..
        } => {
            assert_eq!(error_type, "invalid_request_error");
            assert_eq!(message, "An event already exists with identifier task_1.");
        }
        other => panic!("expected a duplicate rejection, got {other:?}"),
    }
    assert_eq!(fake.meter_events().len(), 1);
}

#[tokio::test]
async fn rate_limit_then_success() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    fake.push_fault(Fault::Status(429, Some(Duration::from_secs(1))));
    let key = key("meter:task_1");

    let err = client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();
    assert_eq!(err, StripeError::RateLimited);
    assert!(err.is_transient());
    assert!(fake.meter_events().is_empty());

    client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    assert_eq!(fake.meter_events().len(), 1);
}

#[tokio::test]
async fn server_error_is_transient() {
    let fake = FakeStripe::start().await;
    fake.push_fault(Fault::Status(500, None));
    let err = client(&fake)
        .create_meter_event(&key("k"), &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();
    assert_eq!(err, StripeError::Server { status: 500 });
    assert!(err.is_transient());
}

#[tokio::test]
async fn slow_stripe_is_a_transient_timeout() {
    let fake = FakeStripe::start().await;
    fake.push_fault(Fault::Delay(Duration::from_secs(2)));
    let client = client_with(&fake, FakeStripe::SECRET_KEY, Duration::from_millis(200));
    let err = client
        .create_meter_event(&key("k"), &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();
    assert_eq!(err, StripeError::Timeout);
    assert!(err.is_transient());
}

#[tokio::test]
async fn drop_after_commit_then_retry_with_the_same_key_records_exactly_one_event() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    fake.push_fault(Fault::DropAfterCommit);
    let key = key("meter:task_1");

    let err = client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        fake.meter_events().len(),
        1,
        "Stripe applied it although we never heard"
    );

    client
        .create_meter_event(&key, &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    assert_eq!(fake.meter_events().len(), 1);
    assert_eq!(fake.active_value_by_customer().get("cus_1"), Some(&7));
}

#[tokio::test]
async fn cancel_adjustment_marks_the_event_cancelled() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    client
        .create_meter_event(&key("m1"), &event("task_1", "cus_1", 7))
        .await
        .unwrap();
    client
        .create_meter_event(&key("m2"), &event("task_2", "cus_1", 5))
        .await
        .unwrap();
    client
        .cancel_meter_event(&key("cancel:task_1"), EVENT_NAME, "task_1")
        .await
        .unwrap();

    let events = fake.meter_events();
    assert!(events[0].cancelled);
    assert!(!events[1].cancelled);
    assert_eq!(fake.active_value_by_customer().get("cus_1"), Some(&5));
    let requests = fake.requests();
    assert_eq!(requests[2].path, "/v1/billing/meter_event_adjustments");
    assert_eq!(requests[2].idempotency_key.as_deref(), Some("cancel:task_1"));

    let err = client
        .cancel_meter_event(&key("cancel:nope"), EVENT_NAME, "nope")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StripeError::Rejected { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_secret_is_rejected_401() {
    let fake = FakeStripe::start().await;
    let client = client_with(&fake, "sk_test_wrong_key", Duration::from_secs(5));
    let err = client
        .create_meter_event(&key("k"), &event("task_1", "cus_1", 7))
        .await
        .unwrap_err();

    match &err {
        StripeError::Rejected {
            status: 401, message, ..
        } => {
            assert!(message.starts_with("Invalid API Key provided"), "{message}");
            assert!(!message.contains("wrong_key"), "Stripe masks the key: {message}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert!(fake.meter_events().is_empty());
}

#[tokio::test]
async fn customer_creation_returns_a_customer_id_and_keeps_our_account_id() {
    let fake = FakeStripe::start().await;
    let client = client(&fake);
    let id = client
        .create_customer(&key("customer:acct_1"), "Acme", "acct_1")
        .await
        .unwrap();
    assert!(id.starts_with("cus_"), "{id}");
    assert_eq!(
        fake.requests()[0].idempotency_key.as_deref(),
        Some("customer:acct_1")
    );

    let again = client
        .create_customer(&key("customer:acct_1"), "Acme", "acct_1")
        .await
        .unwrap();
    assert_eq!(again, id, "a replayed creation returns the same customer");

    let customer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/customers/{id}", fake.base_url()))
        .bearer_auth(FakeStripe::SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["name"], "Acme");
    assert_eq!(customer["metadata"]["account_id"], "acct_1");
}
