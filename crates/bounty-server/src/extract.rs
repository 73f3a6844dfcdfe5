//! Extractors that turn raw input into typed values or an [`ApiError`].
//!
//! axum's own `Json`, `Query` and `Bytes` answer bad input with plain-text
//! bodies. These do the same parsing but answer in our error shape, and
//! name the field at fault (via `serde_path_to_error`), so a client always
//! learns which field to fix.
//!
//! They are also where hostile text stops. Postgres refuses the NUL
//! character in `text` (SQLite stores it), so a NUL anywhere in a JSON
//! body or a query string is refused here, on both backends alike, with
//! 422 `validation_failed` naming the field (`input.body`, `agent`), before
//! any handler sees it. Webhook bodies are read raw, as signatures need,
//! through [`RawBody`], which answers an over-limit body with the same
//! JSON 413 as the rest of the API.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body. An empty body counts as `{}`, so endpoints whose fields
/// are all optional accept a bare `POST`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, state))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}").map(ApiJson);
        }
        if is_json != Some(true) {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// A raw body, for webhooks, whose signature covers the exact bytes. Like
/// axum's `Bytes`, but a body over the limit is our JSON 413
/// `payload_too_large`, not a plain-text one.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| body_error(e, state))
    }
}

fn body_error(e: BytesRejection, state: &AppState) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge {
            limit: state.limits.body_limit_bytes,
        }
    } else {
        ApiError::InvalidRequest {
            message: format!("the body could not be read: {e}"),
            param: None,
        }
    }
}

/// The 422 for a field holding a NUL character.
pub fn nul_error(param: impl Into<String>) -> ApiError {
    ApiError::validation(param, "must not contain the NUL character (\\u0000)")
}

/// The field of a JSON body whose string holds a NUL character, if any.
///
/// In JSON a NUL can only be spelled `\u0000` (a raw control character in
/// a string is a syntax error), so bodies without that spelling, nearly
/// all of them, are not parsed twice.
pub fn json_nul_field(bytes: &[u8]) -> Option<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    // A bare string body is not an object of fields; `T` refuses it.
    bounty_core::text::nul_path(&value).filter(|p| p != ".")
}

/// Parses JSON into `T`, naming the field at fault on failure; a string
/// holding a NUL character is a 422 naming its field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = json_nul_field(bytes) {
        return Err(nul_error(field));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => ApiError::MalformedJson(inner.to_string()),
            serde_json::error::Category::Data => field_error(&path, &strip_position(&inner.to_string())),
        }
    })?;
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// A query string. Unknown parameters are refused like unknown fields,
/// and a NUL character (`%00`) in a name or value is a 422 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| bounty_core::text::has_nul(k) || bounty_core::text::has_nul(v))
        {
            return Err(nul_error(name.replace('\0', "\\u0000")));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            field_error(&path, &e.into_inner().to_string())
        })
    }
}

/// serde_json appends " at line 1 column 17" to data errors; the client
/// gets the field name instead, which is more useful.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn field_error(path: &str, message: &str) -> ApiError {
    let at_root = path == "." || path.is_empty();
    let missing = message.starts_with("missing field");
    let param = if message.starts_with("unknown field") {
        // The path already ends at the unknown field itself.
        if at_root {
            message.split('`').nth(1).map(str::to_owned)
        } else {
            Some(path.to_owned())
        }
    } else if missing {
        // A missing field is reported at its parent; name it from the message.
        message.split('`').nth(1).map(|f| {
            if at_root {
                f.to_owned()
            } else {
                format!("{path}.{f}")
            }
        })
    } else if at_root {
        None
    } else {
        Some(path.to_owned())
    };
    let message = match &param {
        Some(p) if !message.contains(&format!("`{p}`")) => format!("`{p}`: {message}"),
        _ => message.to_owned(),
    };
    ApiError::InvalidRequest { message, param }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: Option<u32>,
    }

    fn param_of(e: ApiError) -> Option<String> {
        match e {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_nul_in_any_string_is_a_422_naming_the_field() {
        let e = parse_json::<Body>(br#"{"name":"a\u0000b"}"#).unwrap_err();
        assert!(
            matches!(&e, ApiError::Validation { param, .. } if param == "name"),
            "{e:?}"
        );
        // An escaped backslash before `u0000` is no NUL.
        let ok = parse_json::<Body>(br#"{"name":"a\\u0000b"}"#).unwrap();
        assert_eq!(ok.name, "a\\u0000b");
        assert_eq!(
            json_nul_field(br#"{"input":{"body":"x","tags":["\u0000"]}}"#).as_deref(),
            Some("input.tags[0]")
        );
        assert_eq!(json_nul_field(br#""\u0000""#), None);
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"name":"a","bogus":1}"#).unwrap_err();
        assert_eq!(param_of(e).as_deref(), Some("bogus"));
        let e = parse_json::<Body>(br#"{"name":"a","count":"x"}"#).unwrap_err();
        assert_eq!(param_of(e).as_deref(), Some("count"));
        let e = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(param_of(e).as_deref(), Some("name"));
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"name":"a"} x"#),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
