//! Extractors that turn raw input into typed values or an [`ApiError`].
//!
//! axum's own `Json` and `Query` answer bad input with plain-text bodies.
//! These do the same parsing but answer in our error shape, and name the
//! field at fault (via `serde_path_to_error`), so a client always learns
//! which field to fix.

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

/// Parses JSON into `T`, naming the field at fault on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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

/// A query string. Unknown parameters are refused like unknown fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
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
