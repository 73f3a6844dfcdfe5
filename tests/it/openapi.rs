//! `/openapi.json` documents every routed endpoint, and every documented
//! endpoint is routed.

use reqwest::Method;

use crate::support::{Backend, TestApp, json_of};

/// Every endpoint the API serves. A new endpoint added without
/// documentation fails `every_served_endpoint_is_documented`.
const SERVED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/account"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("get", "/v1/api-keys/{id}"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/agents"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{id}"),
    ("patch", "/v1/agents/{id}"),
    ("post", "/v1/tasks"),
    ("get", "/v1/tasks"),
    ("get", "/v1/tasks/{id}"),
    ("post", "/v1/tasks/{id}/messages"),
    ("get", "/v1/catalog/models"),
    ("post", "/v1/chat/completions"),
    ("post", "/v1/tasks/{id}/outcome"),
    ("post", "/v1/embeddings"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model}"),
    ("put", "/v1/gateway/limits"),
    ("get", "/v1/gateway/limits"),
    ("get", "/v1/gateway/charges"),
    ("post", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints/{id}"),
    ("patch", "/v1/webhook-endpoints/{id}"),
    ("delete", "/v1/webhook-endpoints/{id}"),
    ("post", "/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/v1/webhook-endpoints/{id}/attempts"),
    ("post", "/v1/webhook-endpoints/{id}/resend"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("post", "/v1/integrations/{id}/enable"),
    ("get", "/v1/outcomes"),
    ("get", "/v1/outcomes/{id}"),
    ("post", "/v1/outcomes/{id}/signals"),
    ("get", "/v1/usage"),
    ("get", "/v1/credits"),
    ("post", "/v1/credits/grants"),
    ("get", "/v1/billing"),
    ("put", "/v1/byok"),
    ("get", "/v1/byok"),
    ("delete", "/v1/byok"),
    ("get", "/v1/invoices"),
    ("post", "/webhooks/stripe"),
    ("post", "/v1/integrations"),
    ("get", "/v1/integrations"),
    ("get", "/v1/integrations/{id}"),
    ("delete", "/v1/integrations/{id}"),
    ("post", "/v1/integrations/{id}/rotate-secret"),
    ("get", "/v1/integrations/{id}/deliveries"),
    ("post", "/webhooks/in/{integration_id}"),
    ("get", "/v1/exports/charges"),
    ("post", "/v1/outcomes/{id}/disputes"),
    ("get", "/v1/disputes"),
    ("get", "/v1/disputes/{id}"),
    ("get", "/v1/disputes/{id}/evidence"),
    ("get", "/v1/ops/accounts"),
    ("get", "/v1/ops/accounts/{id}"),
    ("get", "/v1/ops/disputes"),
    ("post", "/v1/ops/disputes/{id}/accept"),
    ("post", "/v1/ops/disputes/{id}/reject"),
    ("get", "/v1/ops/disputes/{id}/evidence"),
    ("post", "/v1/knowledge"),
    ("get", "/v1/knowledge"),
    ("get", "/v1/knowledge/{id}"),
    ("delete", "/v1/knowledge/{id}"),
    ("post", "/v1/knowledge/{id}/documents"),
    ("get", "/v1/knowledge/{id}/search"),
];

#[tokio::test]
async fn every_served_endpoint_is_documented() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = json_of(app.get("/openapi.json").await, 200).await;
    assert_eq!(spec["openapi"], "3.1.0");
    for (method, path) in SERVED {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} is not in /openapi.json"
        );
    }
}

#[tokio::test]
async fn every_documented_endpoint_is_routed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = json_of(app.get("/openapi.json").await, 200).await;
    let paths = spec["paths"].as_object().unwrap();
    let mut v1 = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", "key_01JD3K8Q9V7Y2X4W6T5R3P1N0M");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app.request(m, &concrete, None).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if path.starts_with("/v1/ops/") {
                // The operator's routes do not exist without an operator
                // key (`ops::…` proves they are routed for one).
                assert!(
                    body.contains("route_not_found"),
                    "{method} {path} ({status}): {body}"
                );
                assert_eq!(
                    op["security"][0]["operator_key"],
                    serde_json::json!([]),
                    "{method} {path}"
                );
            } else {
                assert!(
                    !body.contains("route_not_found") && !body.contains("method_not_allowed"),
                    "{method} {path} is documented but not routed ({status})"
                );
            }
            assert!(
                SERVED.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is not in SERVED"
            );
            if path.starts_with("/v1/") {
                v1 += 1;
                assert!(op["security"].is_array(), "{method} {path} documents no security");
            }
        }
    }
    assert_eq!(v1, SERVED.iter().filter(|(_, p)| p.starts_with("/v1/")).count());
}
