//! The whole pure half of intake, as the server will run it: open the
//! integration's sealed secret, verify the delivery on its raw bytes, parse
//! it, and derive the dedupe keys, for one fixture of every vendor.

use bounty_integrations::{
    Delivery, IntegrationKind, KeyId, Keyring, Parsed, SealKey, SignatureError, generate_secret, parse, sign,
    verify,
};
use chrono::DateTime;
use secrecy::ExposeSecret;

fn fixture(kind: IntegrationKind, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{}/{name}.json",
        env!("CARGO_MANIFEST_DIR"),
        kind.as_str()
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn sealed_secret_then_verify_then_parse() {
    let keyring = Keyring::new("k1".parse::<KeyId>().unwrap(), SealKey::generate().unwrap());
    let now = DateTime::from_timestamp(1_796_162_400, 0).unwrap();
    let cases = [
        (IntegrationKind::Zendesk, "ticket_created", "created"),
        (
            IntegrationKind::Intercom,
            "conversation_user_replied",
            "customer_replied",
        ),
        (
            IntegrationKind::Chatwoot,
            "conversation_status_resolved",
            "solved",
        ),
        (IntegrationKind::Standard, "ticket_reopened", "reopened"),
    ];
    for (kind, name, expected) in cases {
        // Stored: the secret sealed to its row.
        let aad = format!("acct_01JEXAMPLE/int_{}", kind.as_str());
        let secret = generate_secret(kind).unwrap();
        let sealed = keyring
            .seal(secret.expose_secret().as_bytes(), aad.as_bytes())
            .unwrap();

        // Delivered: a body and the vendor's headers.
        let body = fixture(kind, name);
        let headers = sign(
            kind,
            secret.expose_secret().as_bytes(),
            &body,
            &Delivery {
                id: "dlv_7f3a",
                timestamp: now,
            },
        )
        .unwrap();

        // Intake.
        let opened = keyring.open(&sealed, aad.as_bytes()).unwrap();
        let verified = verify(kind, &headers, &body, &[opened.as_slice()], now).unwrap();
        let Parsed::Event(event) = parse(kind, &body).unwrap() else {
            panic!("{kind}/{name} ignored")
        };
        assert_eq!(event.kind.name().as_str(), expected, "{kind}");
        // Some dedupe key exists for every vendor.
        assert!(
            verified.delivery_id.is_some() || event.vendor_event_id.is_some(),
            "{kind}"
        );

        // The same secret sealed for another integration row does not open here.
        let elsewhere = keyring
            .seal(secret.expose_secret().as_bytes(), b"acct_01JOTHER/int_x")
            .unwrap();
        assert!(keyring.open(&elsewhere, aad.as_bytes()).is_err());
        // A body altered after signing never reaches the parser.
        let mut altered = body.clone();
        altered.extend_from_slice(b" ");
        let err = verify(kind, &headers, &altered, &[opened.as_slice()], now).unwrap_err();
        assert!(
            matches!(err, SignatureError::NoMatchingSignature { .. }),
            "{kind}"
        );
    }
}
