//! Vendor URLs, built only from parts that cannot change their meaning.
//!
//! A base URL comes from a customer's settings and a ticket id from a
//! webhook, so neither is trusted to be a well-formed URL piece. The base
//! must be a plain `http`/`https` origin with an optional path: userinfo
//! would put a credential into every log line that shows the URL, and a
//! query or fragment would swallow the paths appended after it. Ids are
//! spliced into paths, so they are held to a charset that needs no
//! encoding at all (`A-Z a-z 0-9 _ -`) and refused otherwise: `..`, `/`,
//! `?` or `%2F` in a ticket id can never reach another endpoint.

use reqwest::Url;

use super::ReplyError;

/// The longest ticket, account or reply id accepted.
pub const MAX_ID_LEN: usize = 128;

/// Whether `id` can go into a URL path as is: 1 to [`MAX_ID_LEN`] characters
/// of `A-Z a-z 0-9 _ -`.
pub fn is_path_segment(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `Ok` when `id` [`is_path_segment`]; otherwise a [`ReplyError::Config`]
/// naming `what` (the id itself is not echoed: it may be anything).
pub(super) fn check_id(what: &str, id: &str) -> Result<(), ReplyError> {
    if is_path_segment(id) {
        Ok(())
    } else {
        Err(ReplyError::Config(format!(
            "the {what} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '_' or '-'"
        )))
    }
}

/// A validated base URL: as given, and as text without its trailing `/`
/// for paths to be appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BaseUrl {
    exact: Url,
    trimmed: String,
}

impl BaseUrl {
    pub(super) fn parse(raw: &str) -> Result<Self, ReplyError> {
        let config = |why: &str| ReplyError::Config(format!("the base URL {why}"));
        let url = Url::parse(raw.trim()).map_err(|_| config("is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config("must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config("must not have a query or fragment"));
        }
        let trimmed = url.as_str().trim_end_matches('/').to_owned();
        Ok(BaseUrl { exact: url, trimmed })
    }

    /// The URL exactly as given, trailing `/` and all (the Standard callback:
    /// nothing is appended to it, so it is not reshaped either).
    pub(super) fn url(&self) -> &Url {
        &self.exact
    }

    /// The base followed by `path`, which starts with `/` and was built from
    /// literals and checked ids only.
    pub(super) fn join(&self, path: &str) -> Result<Url, ReplyError> {
        Url::parse(&format!("{}{path}", self.trimmed))
            .map_err(|_| ReplyError::Config("the base URL cannot take a path".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_origins_and_paths_are_accepted_and_a_trailing_slash_dropped() {
        for (raw, joined) in [
            (
                "https://acme.zendesk.com",
                "https://acme.zendesk.com/api/v2/tickets/1.json",
            ),
            (
                "https://acme.zendesk.com/",
                "https://acme.zendesk.com/api/v2/tickets/1.json",
            ),
            (
                "http://127.0.0.1:8080/chatwoot/",
                "http://127.0.0.1:8080/chatwoot/api/v2/tickets/1.json",
            ),
            (
                " https://api.intercom.io ",
                "https://api.intercom.io/api/v2/tickets/1.json",
            ),
        ] {
            let base = BaseUrl::parse(raw).unwrap();
            assert_eq!(
                base.join("/api/v2/tickets/1.json").unwrap().as_str(),
                joined,
                "{raw}"
            );
        }
        for callback in [
            "https://hooks.example.com/bounty/",
            "https://hooks.example.com/bounty",
        ] {
            assert_eq!(BaseUrl::parse(callback).unwrap().url().as_str(), callback);
        }
    }

    #[test]
    fn unusable_base_urls_are_refused_with_a_reason() {
        for (raw, why) in [
            ("", "is not a valid URL"),
            ("acme.zendesk.com", "is not a valid URL"),
            ("ftp://acme.zendesk.com", "must be http or https"),
            ("file:///etc/passwd", "must be http or https"),
            (
                "https://agent:hunter2@acme.zendesk.com",
                "must not carry credentials",
            ),
            ("https://agent@acme.zendesk.com", "must not carry credentials"),
            (
                "https://acme.zendesk.com?x=1",
                "must not have a query or fragment",
            ),
            (
                "https://acme.zendesk.com/#top",
                "must not have a query or fragment",
            ),
        ] {
            let err = BaseUrl::parse(raw).unwrap_err();
            assert_eq!(err, ReplyError::Config(format!("the base URL {why}")), "{raw}");
            assert!(!err.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn ids_must_be_plain_path_segments() {
        for good in [
            "1",
            "48213",
            "215463212345",
            "obx_01JXYZ",
            "a-b_C9",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert!(is_path_segment(good), "{good}");
            assert!(check_id("ticket id", good).is_ok());
        }
        for bad in [
            "",
            "..",
            "1/../2",
            "1?x=2",
            "1%2F2",
            "1#2",
            "1 2",
            "é",
            "1.json",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(!is_path_segment(bad), "{bad}");
            let err = check_id("ticket id", bad).unwrap_err();
            assert!(err.to_string().contains("ticket id"), "{err}");
        }
    }
}
