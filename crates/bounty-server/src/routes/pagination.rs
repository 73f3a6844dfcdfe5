//! Cursor pagination query parameters shared by every list endpoint.

use std::str::FromStr;

use bounty_core::PageLimit;
use serde::Deserialize;

use crate::error::ApiError;

/// `?limit=&cursor=` of a list endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many items to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// The validated limit and cursor, or a 400 naming the bad one.
    pub fn parse<Id: FromStr>(&self) -> Result<(PageLimit, Option<Id>), ApiError>
    where
        Id::Err: std::fmt::Display,
    {
        let limit = match self.limit {
            None => PageLimit::DEFAULT,
            Some(n) => PageLimit::new(n).map_err(|e| ApiError::InvalidRequest {
                message: format!("`limit` {e}"),
                param: Some("limit".to_owned()),
            })?,
        };
        let cursor = self
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<Id>().map_err(|e| ApiError::InvalidRequest {
                    message: format!("`cursor` is not a cursor from this list: {e}"),
                    param: Some("cursor".to_owned()),
                })
            })
            .transpose()?;
        Ok((limit, cursor))
    }
}

/// An optional RFC 3339 time from the query string, or a 400 naming it.
pub fn parse_time(
    param: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| ApiError::InvalidRequest {
                    message: format!("`{param}` is not an RFC 3339 time: {e}"),
                    param: Some(param.to_owned()),
                })
        })
        .transpose()
}
