//! The dashboard's static files, embedded in the binary at build time.
//!
//! There are two: one stylesheet and one small script, both hand-written
//! in `web/static/`. Pages link them as `/static/<name>?v=<hash>`, where
//! the hash is of the file's bytes, so a new build changes the URL and the
//! files can be cached for a year. The same hash is the `ETag`, so a
//! revalidation costs a 304. No CDN, no download at run time.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::WebError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// The first 16 hex digits of the SHA-256 of `bytes`.
    hash: String,
    /// `/static/<name>?v=<hash>`.
    href: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        let hash = hex::encode(Sha256::digest(bytes))[..16].to_owned();
        let href = format!("/static/{name}?v={hash}");
        Asset {
            name,
            content_type,
            bytes,
            hash,
            href,
        }
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        Asset::new(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../../web/static/app.css"),
        ),
        Asset::new(
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../web/static/app.js"),
        ),
    ]
});

/// The stylesheet's versioned URL.
pub(crate) fn css_href() -> &'static str {
    &ASSETS[0].href
}

/// The script's versioned URL.
pub(crate) fn js_href() -> &'static str {
    &ASSETS[1].href
}

/// `GET /static/{name}`: the file, cached for a year, or 304 when the
/// browser's `If-None-Match` already names this version.
pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, WebError> {
    let asset = ASSETS.iter().find(|a| a.name == name).ok_or(WebError::NotFound)?;
    let etag = format!("\"{}\"", asset.hash);
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| WebError::Internal(e.to_string()))?;
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response())
}
