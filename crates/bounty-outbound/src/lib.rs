//! Customer-directed outbound HTTP: the one home of the rule that a URL a
//! customer chose can never reach Bounty's own network.
//!
//! Agent tools, knowledge fetched by URL and BYOK model endpoints all call
//! URLs that a customer wrote. Each goes through this crate, which:
//!
//! - refuses loopback, private, link-local, cloud-metadata and other
//!   special-purpose addresses ([`address`]), IPv6 forms carrying such an
//!   IPv4 address included, unless the policy's `allow_private` is set
//!   (configuration `tools.allow_private`: tests and single-machine setups);
//! - checks the addresses *after* DNS resolution, in the client's own
//!   resolver, so the check and the connection use the same addresses and
//!   a rebinding name cannot slip past ([`client`]);
//! - re-checks every redirect hop and limits their number;
//! - bounds each request by one timeout and its body by a size cap.
//!
//! [`OutboundPolicy::check_url`] is the early check an API edge makes when
//! a URL is stored; [`Outbound`] and [`guarded_client_builder`] are the
//! guarantee, at the time of the call.

pub mod address;
pub mod client;
pub mod error;
pub mod policy;

pub use address::{AddressClass, check_ip, classify};
pub use client::{GuardedResolver, Outbound, OutboundResponse, check_literal, guarded_client_builder};
pub use error::OutboundError;
pub use policy::OutboundPolicy;
/// The URL type every function here takes (reqwest's, the url crate's).
pub use reqwest::Url;
