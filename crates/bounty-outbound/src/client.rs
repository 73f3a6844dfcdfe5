//! The HTTP client for customer-directed requests, which cannot be
//! DNS-rebound.
//!
//! Checking a URL and then handing it to an ordinary client leaves a gap:
//! the client resolves the name again, and a name the customer controls
//! can answer a public address to the check and `127.0.0.1` to the
//! connection (DNS rebinding). So the check lives *in* the client, on the
//! addresses it connects to:
//!
//! - **Names** go through [`GuardedResolver`], reqwest's resolver for this
//!   client. It resolves, checks every address, and refuses the name when
//!   any one is refused; only then does the connector see the addresses.
//!   The check and the connection use the same addresses.
//! - **IP literals** never reach a resolver (hyper connects to them
//!   directly), so [`Outbound::send`] checks the request's URL before
//!   sending it, and the redirect policy checks each hop's URL.
//! - **Redirects** are followed up to the policy's limit, each hop's form
//!   and literal address checked by the redirect policy and its name by
//!   the resolver. reqwest drops `Authorization` and cookies on a redirect
//!   to another host.
//! - **Proxies** are off (`no_proxy`): a proxy would resolve the name
//!   itself, past our resolver.
//!
//! [`Outbound::send`] bounds the whole request (resolution, connection,
//! redirects and the body) by one timeout, and reads the body up to the
//! cap. A body over the cap is an error ([`OutboundError::TooLarge`]), not
//! a truncated answer: a tool's JSON cut in the middle is not an answer,
//! and a model shown half a page would take it for the whole one.
//!
//! Other clients that call customer URLs (the BYOK model client) build on
//! [`guarded_client_builder`] to get the same resolver, redirect policy
//! and proxy setting, and add their own timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::redirect;
use reqwest::{Request, StatusCode, Url};

use crate::address::Rules;
use crate::error::OutboundError;
use crate::policy::{OutboundPolicy, check_form, resolve_checked};

/// reqwest's resolver for customer-directed clients: resolves with the
/// system resolver, then refuses the name when any address is refused
/// (see [`crate::address::check_ip`]). With `allow_private`, every address
/// passes.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    rules: Rules,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        GuardedResolver {
            rules: Rules::new(allow_private),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let rules = self.rules;
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs = resolve_checked(&host, 0, rules).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The redirect policy: at most `max` hops, each hop's URL of an accepted
/// form and, when its host is an IP literal, an accepted address.
fn redirect_policy(max: u8, rules: Rules) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // `previous` holds the original URL and every hop before this one.
        if attempt.previous().len() > usize::from(max) {
            let host = attempt.url().host_str().unwrap_or_default().to_owned();
            return attempt.error(OutboundError::TooManyRedirects { host, max });
        }
        match check_form(attempt.url(), rules) {
            Ok(_) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// A reqwest client builder with the guarded resolver, the redirect policy
/// and no proxy: the base of every client that calls a URL a customer
/// chose. The caller adds timeouts. Requests with an IP-literal host must
/// be checked by the caller before they are sent (the resolver never sees
/// them): [`check_literal`].
pub fn guarded_client_builder(policy: &OutboundPolicy) -> reqwest::ClientBuilder {
    builder_with(policy, Rules::new(policy.allow_private))
}

fn builder_with(policy: &OutboundPolicy, rules: Rules) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { rules }))
        .redirect(redirect_policy(policy.max_redirects, rules))
        .no_proxy()
}

/// The checks of a URL that need no resolution: its form, and its address
/// when the host is an IP literal. Names are checked by the resolver when
/// the client connects.
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), OutboundError> {
    check_form(url, Rules::new(allow_private)).map(|_| ())
}

/// A response read in full, within the policy's limits.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The whole body, at most `max_response_bytes`.
    pub body: Vec<u8>,
    /// From sending the request to the body's last byte, redirects
    /// included.
    pub latency: Duration,
}

/// The client for customer-directed HTTP; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    policy: OutboundPolicy,
    rules: Rules,
    client: reqwest::Client,
}

impl Outbound {
    /// A client enforcing `policy`.
    pub fn new(policy: OutboundPolicy) -> Result<Outbound, OutboundError> {
        Outbound::with_rules(policy, Rules::new(policy.allow_private))
    }

    pub(crate) fn with_rules(policy: OutboundPolicy, rules: Rules) -> Result<Outbound, OutboundError> {
        let client = builder_with(&policy, rules)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| OutboundError::Transport {
                host: String::new(),
                message: format!("cannot build an HTTP client: {}", root_cause(&e.without_url())),
            })?;
        Ok(Outbound {
            policy,
            rules,
            client,
        })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// A request builder on this client; send what it builds with
    /// [`Outbound::send`].
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// [`OutboundPolicy::check_url`] under this client's policy.
    pub async fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        self.policy.check_url(url).await
    }

    /// Sends `request` and reads the whole response, within the policy:
    /// refused addresses (literal, resolved, or on a redirect), one timeout
    /// for everything, and the body cap.
    pub async fn send(&self, request: Request) -> Result<OutboundResponse, OutboundError> {
        let target = check_form(request.url(), self.rules)?;
        let host = target.host;
        let started = Instant::now();
        let limit = self.policy.timeout;
        let timeout = || OutboundError::Timeout {
            host: host.clone(),
            limit,
        };
        let read = async {
            let mut response = self
                .client
                .execute(request)
                .await
                .map_err(|e| transport(&host, limit, e))?;
            let (status, headers) = (response.status(), response.headers().clone());
            let cap = self.policy.max_response_bytes;
            let too_large = || OutboundError::TooLarge {
                host: host.clone(),
                limit: cap,
            };
            if response
                .content_length()
                .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(&host, limit, e))? {
                if body.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(limit, read).await.map_err(|_| timeout())??;
        Ok(OutboundResponse {
            status,
            headers,
            body,
            latency: started.elapsed(),
        })
    }
}

/// A reqwest error as ours: the refusal or redirect limit it carries, a
/// timeout, or the transport failure without the URL.
fn transport(host: &str, limit: Duration, e: reqwest::Error) -> OutboundError {
    if let Some(ours) = OutboundError::find_in(&e) {
        return ours.clone();
    }
    if e.is_timeout() {
        return OutboundError::Timeout {
            host: host.to_owned(),
            limit,
        };
    }
    OutboundError::Transport {
        host: host.to_owned(),
        message: root_cause(&e.without_url()),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

/// The innermost cause ("Connection refused (os error 111)", "invalid
/// peer certificate: …"): the layers above it only say "error sending
/// request" or "client error (Connect)", and the top one names the URL.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
