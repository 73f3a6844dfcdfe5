//! The outbound policy, and the check of a URL against it.
//!
//! [`OutboundPolicy::check_url`] is what an API edge calls when a customer
//! *stores* a URL (a BYOK `base_url`, a tool's URL template's host): it
//! resolves the host now and refuses when any address is refused, so the
//! customer hears about a bad URL at once. It is not the guarantee. DNS can
//! change between the check and the call, so the client
//! ([`crate::Outbound`], [`crate::guarded_client_builder`]) checks again,
//! on the addresses it actually connects to.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use crate::address::Rules;
use crate::error::OutboundError;

/// Limits on customer-directed HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Allow loopback, private, link-local, metadata and other special
    /// addresses. For tests and single-machine setups whose tools run
    /// next to Bounty; never in a multi-tenant deployment.
    pub allow_private: bool,
    /// The largest response body read, in bytes; a larger one fails with
    /// [`OutboundError::TooLarge`].
    pub max_response_bytes: usize,
    /// The whole request: resolution, connection, redirects and the body.
    pub timeout: Duration,
    /// Redirects followed; one more fails with
    /// [`OutboundError::TooManyRedirects`].
    pub max_redirects: u8,
}

impl Default for OutboundPolicy {
    /// 1 MiB, 10 s, 3 redirects, public addresses only.
    fn default() -> Self {
        OutboundPolicy {
            allow_private: false,
            max_response_bytes: 1024 * 1024,
            timeout: Duration::from_secs(10),
            max_redirects: 3,
        }
    }
}

/// What a URL points at, once its form is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host as written (an IPv6 literal without brackets).
    pub host: String,
    /// The address, when the host is an IP literal.
    pub literal: Option<IpAddr>,
    /// The port, explicit or the scheme's.
    pub port: u16,
}

/// The URL's form: http or https, no credentials, a host.
pub(crate) fn target(url: &Url) -> Result<Target, OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::InvalidUrl {
            why: "must be http or https",
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::InvalidUrl {
            why: "must not carry credentials",
        });
    }
    let port = url
        .port_or_known_default()
        .ok_or(OutboundError::InvalidUrl { why: "has no port" })?;
    // The url crate has already normalised an IPv4 host (`127.1`,
    // `0x7f000001` and `2130706433` are all `127.0.0.1` by now) and
    // bracketed an IPv6 one.
    let raw = url.host_str().unwrap_or_default();
    let (host, literal) = match raw.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => match v6.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => (v6.to_owned(), Some(IpAddr::V6(ip))),
            Err(_) => {
                return Err(OutboundError::InvalidUrl {
                    why: "has a malformed host",
                });
            }
        },
        None => (
            raw.to_owned(),
            raw.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        ),
    };
    if host.is_empty() {
        return Err(OutboundError::InvalidUrl { why: "has no host" });
    }
    Ok(Target { host, literal, port })
}

/// The URL's form, and its host when it is an IP literal. What can be
/// checked without resolving: the redirect policy's check of each hop.
pub(crate) fn check_form(url: &Url, rules: Rules) -> Result<Target, OutboundError> {
    let target = target(url)?;
    if let Some(ip) = target.literal {
        rules.check(&target.host, ip)?;
    }
    Ok(target)
}

/// Resolves `host` and checks every address: refused when any one is
/// (a name that mixes public and private answers is treated as hostile,
/// rather than filtered, so that which address is tried never matters).
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
    rules: Rules,
) -> Result<Vec<std::net::SocketAddr>, OutboundError> {
    let unresolved = || OutboundError::Unresolved {
        host: host.to_owned(),
    };
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| unresolved())?
        .collect();
    if addrs.is_empty() {
        return Err(unresolved());
    }
    for addr in &addrs {
        rules.check(host, addr.ip())?;
    }
    Ok(addrs)
}

impl OutboundPolicy {
    /// Checks a URL a customer gave: http or https, no credentials, and a
    /// host that is, or resolves only to, reachable addresses. Resolution
    /// is bounded by the policy's timeout ([`OutboundError::Timeout`]).
    pub async fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        let rules = Rules::new(self.allow_private);
        let target = check_form(url, rules)?;
        if target.literal.is_some() || self.allow_private {
            return Ok(());
        }
        tokio::time::timeout(self.timeout, resolve_checked(&target.host, target.port, rules))
            .await
            .map_err(|_| OutboundError::Timeout {
                host: target.host.clone(),
                limit: self.timeout,
            })??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::AddressClass;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    async fn check(s: &str) -> Result<(), OutboundError> {
        OutboundPolicy::default().check_url(&url(s)).await
    }

    #[tokio::test]
    async fn only_http_and_https_without_credentials() {
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://example.com/",
        ] {
            assert_eq!(
                check(bad).await,
                Err(OutboundError::InvalidUrl {
                    why: "must be http or https"
                }),
                "{bad}"
            );
        }
        for bad in [
            "http://user@1.1.1.1/",
            "https://user:pw@1.1.1.1/",
            "http://:pw@1.1.1.1/",
        ] {
            assert_eq!(
                check(bad).await,
                Err(OutboundError::InvalidUrl {
                    why: "must not carry credentials"
                }),
                "{bad}"
            );
        }
        assert!(check("https://1.1.1.1/v1").await.is_ok());
        assert!(check("http://[2606:4700:4700::1111]:8080/").await.is_ok());
    }

    #[tokio::test]
    async fn literal_addresses_are_checked_without_resolving() {
        for (bad, want) in [
            ("http://127.0.0.1:8080/", AddressClass::Loopback),
            ("http://127.1/", AddressClass::Loopback),
            ("http://0x7f000001/", AddressClass::Loopback),
            ("http://2130706433/", AddressClass::Loopback),
            ("http://0.0.0.0/", AddressClass::Unspecified),
            ("http://[::1]/", AddressClass::Loopback),
            ("http://[::ffff:127.0.0.1]/", AddressClass::Loopback),
            ("http://169.254.169.254/latest/meta-data/", AddressClass::Metadata),
            ("http://[fd00:ec2::254]/", AddressClass::Metadata),
            ("https://10.0.0.5/v1", AddressClass::Private),
            ("https://[fe80::1]/", AddressClass::LinkLocal),
        ] {
            match check(bad).await {
                Err(OutboundError::Refused { why, .. }) => assert_eq!(why, want, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let err = check("http://localhost:9/").await.unwrap_err();
        match &err {
            OutboundError::Refused { host, ip, why } => {
                assert_eq!(host, "localhost");
                assert!(ip.is_loopback());
                assert_eq!(*why, AddressClass::Loopback);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.code(), "outbound_address_refused");
    }

    #[tokio::test]
    async fn allow_private_accepts_every_address() {
        let policy = OutboundPolicy {
            allow_private: true,
            ..OutboundPolicy::default()
        };
        for ok in [
            "http://localhost:9/",
            "http://127.0.0.1/",
            "http://169.254.169.254/",
            "http://[::1]/",
        ] {
            assert!(policy.check_url(&url(ok)).await.is_ok(), "{ok}");
        }
        // The form is still checked.
        assert!(policy.check_url(&url("ftp://127.0.0.1/")).await.is_err());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_so() {
        assert_eq!(
            check("https://no-such-host.invalid/v1").await,
            Err(OutboundError::Unresolved {
                host: "no-such-host.invalid".to_owned()
            })
        );
    }

    #[test]
    fn errors_never_show_the_path_or_query() {
        let err = OutboundError::Refused {
            host: "localhost".to_owned(),
            ip: "127.0.0.1".parse().unwrap(),
            why: AddressClass::Loopback,
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "localhost resolves to 127.0.0.1, a loopback address, which may not be reached"
        );
    }
}
