//! What can go wrong with one outbound request.
//!
//! Messages name the host and, for a refusal, the address and its class.
//! They never carry a path, a query string, a header value or a body: the
//! URL is the customer's and may hold a token, the headers hold sealed
//! secrets.

use std::net::IpAddr;
use std::time::Duration;

use crate::address::AddressClass;

/// One outbound request failed, or was never sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL itself is not acceptable (scheme, credentials, no host).
    #[error("the URL {why}")]
    InvalidUrl {
        /// Why, e.g. "must be http or https".
        why: &'static str,
    },
    /// The host is, or resolves to, an address that may not be reached.
    #[error("{host} resolves to {ip}, a {why} address, which may not be reached")]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The first refused address.
        ip: IpAddr,
        /// Its class.
        why: AddressClass,
    },
    /// The host name does not resolve (or resolves to no address).
    #[error("{host} does not resolve")]
    Unresolved {
        /// The host as the URL names it.
        host: String,
    },
    /// More redirects than the policy allows.
    #[error("{host} redirected more than {max} times")]
    TooManyRedirects {
        /// The host that sent the redirect over the limit.
        host: String,
        /// The policy's limit.
        max: u8,
    },
    /// No complete answer within the policy's timeout (resolution,
    /// connection, redirects and the body together).
    #[error("{host} did not answer within {limit:?}")]
    Timeout {
        /// The host of the request.
        host: String,
        /// The policy's timeout.
        limit: Duration,
    },
    /// The response body is larger than the policy's cap; reading stopped
    /// at the cap.
    #[error("{host} answered more than {limit} bytes")]
    TooLarge {
        /// The host of the request.
        host: String,
        /// The policy's cap, in bytes.
        limit: usize,
    },
    /// The connection failed: refused, reset, TLS, or dropped mid-answer.
    #[error("{host} could not be reached: {message}")]
    Transport {
        /// The host of the request.
        host: String,
        /// The cause, without the URL.
        message: String,
    },
}

impl OutboundError {
    /// A stable machine code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            OutboundError::InvalidUrl { .. } => "outbound_invalid_url",
            OutboundError::Refused { .. } => "outbound_address_refused",
            OutboundError::Unresolved { .. } => "outbound_unresolved",
            OutboundError::TooManyRedirects { .. } => "outbound_too_many_redirects",
            OutboundError::Timeout { .. } => "outbound_timeout",
            OutboundError::TooLarge { .. } => "outbound_response_too_large",
            OutboundError::Transport { .. } => "outbound_unreachable",
        }
    }

    /// The outbound error somewhere in `error`'s chain of causes, if any.
    /// reqwest wraps what the resolver and the redirect policy return;
    /// this finds it again.
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a OutboundError> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<OutboundError>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }
}
