//! One request to a vendor, and its answer sorted into a [`ReplyError`].
//!
//! Every vendor call goes through [`execute`], so every one gets the same
//! timeout, `User-Agent`, and the same reading of statuses: the sender's
//! next move (retry, slow down, disable, park) must not depend on which
//! vendor answered. The one vendor-specific part is the error body, read
//! for its code and message only (capped, never echoed whole), so a
//! rejection says *why* in the vendor's own words without risking our
//! payload or a credential coming back in an error string.

use std::error::Error as _;
use std::time::Duration;

use bounty_core::clock::Timestamp;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER, USER_AGENT as USER_AGENT_HEADER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::{REQUEST_TIMEOUT, ReplyError, USER_AGENT};
use crate::kind::IntegrationKind;

/// The most of an error body read for its message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// The most of a successful JSON body read (an Intercom conversation holds
/// up to 500 parts).
const JSON_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The longest vendor message kept in a [`ReplyError::Rejected`].
const MESSAGE_LIMIT: usize = 300;

/// Intercom's rate-limit reset, unix seconds; it sends no `Retry-After`.
const INTERCOM_RATE_LIMIT_RESET: &str = "x-ratelimit-reset";

/// Sends `request` (one `step` of a `kind` reply) with the shared timeout
/// and headers; a 2xx answer comes back as is, anything else as the
/// matching [`ReplyError`].
pub(super) async fn execute(
    kind: IntegrationKind,
    step: &'static str,
    request: RequestBuilder,
    now: Timestamp,
) -> Result<Response, ReplyError> {
    let response = request
        .timeout(REQUEST_TIMEOUT)
        .header(USER_AGENT_HEADER, USER_AGENT)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| transport_error(kind, step, e))?;
    let status = response.status();
    tracing::debug!(step, status = status.as_u16(), "vendor answered");
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(kind, response.headers(), now);
    let body = read_capped(response, ERROR_BODY_LIMIT).await.unwrap_or_default();
    Err(refusal(kind, step, status, retry_after, &body))
}

/// A successful answer's body as JSON.
pub(super) async fn read_json(
    kind: IntegrationKind,
    step: &'static str,
    response: Response,
) -> Result<Value, ReplyError> {
    let body = read_capped(response, JSON_BODY_LIMIT)
        .await
        .map_err(|why| ReplyError::Transient(format!("{kind} {step}: {why}")))?;
    serde_json::from_slice(&body)
        .map_err(|_| ReplyError::Transient(format!("{kind} {step}: the answer is not JSON")))
}

/// Reads and drops a successful answer's body, so the connection can be
/// reused; what it says is not needed.
pub(super) async fn discard(response: Response) {
    // Best effort: the write already succeeded, a broken body changes nothing.
    let _ = read_capped(response, ERROR_BODY_LIMIT).await;
}

/// The body, up to `limit` bytes; an error past the limit or on a broken body.
async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| "the answer broke off")? {
        if body.len() + chunk.len() > limit {
            return Err("the answer is too large");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failure before any status came back. The URL is stripped (a Standard
/// callback's path may itself be a capability) and the cause named.
fn transport_error(kind: IntegrationKind, step: &str, error: reqwest::Error) -> ReplyError {
    let error = error.without_url();
    if error.is_builder() {
        return ReplyError::Config(format!("{kind} {step}: the request could not be built"));
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = error.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        ReplyError::Transient(format!("{kind} {step}: {what}"))
    } else {
        ReplyError::Transient(format!("{kind} {step}: {what} ({cause})"))
    }
}

/// A non-2xx answer, sorted.
///
/// 409 counts as transient: Zendesk answers it when two updates to one
/// ticket collide, and documents a retry as the cure.
fn refusal(
    kind: IntegrationKind,
    step: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ReplyError {
    let code = status.as_u16();
    match code {
        410 => ReplyError::Gone,
        429 => ReplyError::RateLimited { retry_after },
        408 | 409 | 500..=599 => ReplyError::Transient(format!("{kind} {step}: answered {code}")),
        _ => {
            let said = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|body| vendor_message(kind, &body))
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_owned());
            ReplyError::Rejected {
                status: code,
                message: format!("{kind} {step}: {}", shorten(&said)),
            }
        }
    }
}

/// The code and message out of each vendor's error JSON:
///
/// - Zendesk: `{"error": "RecordNotFound", "description": "Not found"}`, or
///   `{"error": {"title": …, "message": …}}` on newer endpoints;
/// - Intercom: `{"type": "error.list", "errors": [{"code", "message"}]}`;
/// - Chatwoot: `{"error": "…"}`, `{"errors": ["…"]}` or `{"message": "…"}`;
/// - Standard receivers: anything of the above shapes.
fn vendor_message(kind: IntegrationKind, body: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let joined = |parts: Vec<String>| (!parts.is_empty()).then(|| parts.join(": "));
    match kind {
        IntegrationKind::Zendesk => {
            let error = &body["error"];
            let mut parts = Vec::new();
            if let Some(code) = text(error) {
                parts.push(code);
            }
            parts.extend(text(&error["title"]));
            parts.extend(text(&error["message"]));
            parts.extend(text(&body["description"]));
            joined(parts)
        }
        IntegrationKind::Intercom => {
            let first = body["errors"].as_array()?.first()?;
            joined(
                [text(&first["code"]), text(&first["message"])]
                    .into_iter()
                    .flatten()
                    .collect(),
            )
        }
        IntegrationKind::Chatwoot | IntegrationKind::Standard => text(&body["error"])
            .or_else(|| {
                let errors: Vec<String> = body["errors"]
                    .as_array()?
                    .iter()
                    .filter_map(|e| text(e).or_else(|| text(&e["message"])))
                    .collect();
                (!errors.is_empty()).then(|| errors.join("; "))
            })
            .or_else(|| text(&body["message"])),
    }
}

/// At most [`MESSAGE_LIMIT`] bytes, cut on a character boundary, control
/// characters flattened so a vendor cannot forge log lines.
fn shorten(message: &str) -> String {
    let mut out = String::new();
    for c in message.chars() {
        if out.len() + c.len_utf8() > MESSAGE_LIMIT {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// How long the vendor asked us to wait: `Retry-After` as seconds or an
/// HTTP date (relative to `now`, never negative), or for Intercom the unix
/// time in `X-RateLimit-Reset`.
pub(crate) fn retry_after(kind: IntegrationKind, headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let until = |at: Timestamp| (at - now).to_std().unwrap_or(Duration::ZERO);
    if let Some(value) = header(RETRY_AFTER.as_str()) {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(until(DateTime::<Utc>::from(at)));
        }
    }
    if kind == IntegrationKind::Intercom {
        let reset = header(INTERCOM_RATE_LIMIT_RESET)?.parse::<i64>().ok()?;
        return DateTime::from_timestamp(reset, 0).map(until);
    }
    None
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        DateTime::from_timestamp(1_796_162_400, 0).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let zendesk = IntegrationKind::Zendesk;
        assert_eq!(
            retry_after(zendesk, &headers(&[("retry-after", "93")]), now()),
            Some(Duration::from_secs(93))
        );
        let in_two_minutes = httpdate::fmt_http_date((now() + chrono::TimeDelta::seconds(120)).into());
        assert_eq!(
            retry_after(zendesk, &headers(&[("retry-after", &in_two_minutes)]), now()),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date((now() - chrono::TimeDelta::seconds(5)).into());
        assert_eq!(
            retry_after(zendesk, &headers(&[("retry-after", &past)]), now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(zendesk, &headers(&[("retry-after", "soon")]), now()),
            None
        );
        assert_eq!(retry_after(zendesk, &headers(&[]), now()), None);
    }

    #[test]
    fn intercom_rate_limit_reset_stands_in_for_retry_after() {
        let reset = (now().timestamp() + 10).to_string();
        let map = headers(&[("x-ratelimit-reset", &reset)]);
        assert_eq!(
            retry_after(IntegrationKind::Intercom, &map, now()),
            Some(Duration::from_secs(10))
        );
        // Other vendors' headers of that name mean nothing here.
        assert_eq!(retry_after(IntegrationKind::Chatwoot, &map, now()), None);
        // Retry-After wins when both are sent.
        let both = headers(&[("x-ratelimit-reset", &reset), ("retry-after", "3")]);
        assert_eq!(
            retry_after(IntegrationKind::Intercom, &both, now()),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn statuses_sort_into_what_to_do_next() {
        let kind = IntegrationKind::Chatwoot;
        let sorted = |code: u16| {
            refusal(
                kind,
                "post message",
                StatusCode::from_u16(code).unwrap(),
                None,
                b"",
            )
        };
        assert_eq!(sorted(410), ReplyError::Gone);
        assert_eq!(sorted(429), ReplyError::RateLimited { retry_after: None });
        for code in [408, 409, 500, 502, 503, 504] {
            assert_eq!(
                sorted(code),
                ReplyError::Transient(format!("chatwoot post message: answered {code}"))
            );
        }
        for code in [400, 401, 403, 404, 422, 302] {
            assert!(
                matches!(sorted(code), ReplyError::Rejected { status, .. } if status == code),
                "{code}"
            );
        }
        assert_eq!(
            sorted(404),
            ReplyError::Rejected {
                status: 404,
                message: "chatwoot post message: Not Found".into()
            }
        );
    }

    #[test]
    fn each_vendors_error_body_is_read_for_its_message() {
        let cases = [
            (
                IntegrationKind::Zendesk,
                json!({"error": "Couldn't authenticate you"}),
                "Couldn't authenticate you",
            ),
            (
                IntegrationKind::Zendesk,
                json!({"error": "RecordNotFound", "description": "Not found"}),
                "RecordNotFound: Not found",
            ),
            (
                IntegrationKind::Zendesk,
                json!({"error": {"title": "Forbidden", "message": "You do not have access"}}),
                "Forbidden: You do not have access",
            ),
            (
                IntegrationKind::Intercom,
                json!({"type": "error.list", "request_id": "r1", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}),
                "unauthorized: Access Token Invalid",
            ),
            (
                IntegrationKind::Chatwoot,
                json!({"error": "Invalid Access Token"}),
                "Invalid Access Token",
            ),
            (
                IntegrationKind::Chatwoot,
                json!({"errors": ["Content can't be blank", "Private is invalid"]}),
                "Content can't be blank; Private is invalid",
            ),
            (
                IntegrationKind::Chatwoot,
                json!({"message": "Conversation not found"}),
                "Conversation not found",
            ),
        ];
        for (kind, body, expected) in cases {
            assert_eq!(
                vendor_message(kind, &body).as_deref(),
                Some(expected),
                "{kind}: {body}"
            );
        }
        assert_eq!(
            vendor_message(IntegrationKind::Intercom, &json!({"errors": []})),
            None
        );
        assert_eq!(vendor_message(IntegrationKind::Zendesk, &json!([1, 2])), None);
    }

    #[test]
    fn a_non_json_or_unknown_error_body_falls_back_to_the_reason() {
        let error = refusal(
            IntegrationKind::Zendesk,
            "update ticket",
            StatusCode::FORBIDDEN,
            None,
            b"<html>nope</html>",
        );
        assert_eq!(
            error,
            ReplyError::Rejected {
                status: 403,
                message: "zendesk update ticket: Forbidden".into()
            }
        );
    }

    #[test]
    fn vendor_messages_are_shortened_and_flattened() {
        let long = format!("line one\nline two {}", "é".repeat(400));
        let short = shorten(&long);
        assert!(short.len() <= MESSAGE_LIMIT + '…'.len_utf8(), "{}", short.len());
        assert!(short.ends_with('…'));
        assert!(!short.contains('\n'));
        assert_eq!(shorten("fine"), "fine");
    }
}
