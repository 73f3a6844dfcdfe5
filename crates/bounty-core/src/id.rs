//! Typed, prefixed ids.
//!
//! Every id is a [ULID](https://github.com/ulid/spec) behind a short type
//! prefix: `acct_01JD3K…`. The ULID part sorts by creation time, which
//! gives cursor pagination a stable order for free; the prefix makes an id
//! self-describing in logs, API payloads and Stripe metadata, and lets the
//! parser refuse an id of the wrong kind (`key_…` where `acct_…` belongs)
//! before it reaches a query.

use std::fmt;
use std::str::FromStr;

use ulid::Ulid;

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The string does not start with `<prefix>_`.
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix {
        /// The prefix this id type requires.
        expected: &'static str,
    },
    /// The part after the prefix is not a 26-character ULID.
    #[error("the part after `{prefix}_` is not a valid id")]
    BadBody {
        /// The prefix this id type requires.
        prefix: &'static str,
    },
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// The type prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id whose time part is now.
            pub fn new() -> Self {
                Self(new_ulid())
            }

            /// Wraps an existing ULID (for tests and migrations of old data).
            pub const fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            /// The ULID inside.
            pub const fn ulid(&self) -> Ulid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_prefixed(s, $prefix).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdParseError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Z]{26}$")))
                    .examples([concat!($prefix, "_01JD3K8Q9V7Y2X4W6T5R3P1N0M")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// An account: the tenant every row belongs to.
    AccountId,
    "acct"
);
typed_id!(
    /// An API key of an account.
    ApiKeyId,
    "key"
);
typed_id!(
    /// A dashboard user of an account.
    UserId,
    "user"
);
typed_id!(
    /// An owner's invitation of a teammate into an account.
    InviteId,
    "inv"
);
typed_id!(
    /// An operator: runs Bounty, sees every account. Not a user of any.
    OperatorId,
    "op"
);

typed_id!(
    /// A `bk_op_` key of an operator.
    OperatorKeyId,
    "opk"
);

typed_id!(
    /// An agent: instructions, a model route and an outcome type, versioned.
    AgentId,
    "agt"
);

typed_id!(
    /// One unit of work for an agent: a ticket, usually.
    TaskId,
    "task"
);

typed_id!(
    /// One call to a model, successful or not, recorded with its cost.
    ModelCallId,
    "mcall"
);

typed_id!(
    /// One call an agent made to one of its tools.
    ToolCallId,
    "tcall"
);

typed_id!(
    /// One call made through the OpenAI-compatible gateway.
    GatewayCallId,
    "gwc"
);

typed_id!(
    /// An event of an account (`outcome.resolved`, `charge.created`, …),
    /// delivered to its webhook endpoints and listed by `GET /v1/events`.
    EventId,
    "evt"
);

typed_id!(
    /// A customer's webhook endpoint: where its events are delivered.
    WebhookEndpointId,
    "we"
);

typed_id!(
    /// A notice to an account's owners or to the operator.
    NotificationId,
    "ntf"
);

typed_id!(
    /// One try at delivering an event to a webhook endpoint.
    WebhookAttemptId,
    "wha"
);

typed_id!(
    /// What a task came to: verifying, provisional, resolved, failed or reversed.
    OutcomeId,
    "out"
);

typed_id!(
    /// One double-entry ledger transfer.
    TransferId,
    "xfer"
);

typed_id!(
    /// A billing event (a spending-cap alert).
    BillingEventId,
    "bev"
);

typed_id!(
    /// One external effect waiting in the transactional outbox.
    OutboxId,
    "obx"
);

typed_id!(
    /// A helpdesk integration: where tickets come from and replies go.
    IntegrationId,
    "int"
);

typed_id!(
    /// One accepted helpdesk webhook delivery.
    DeliveryId,
    "dlv"
);

typed_id!(
    /// A customer's dispute of a charged outcome.
    DisputeId,
    "dsp"
);

typed_id!(
    /// A knowledge source of an account: uploaded documents or a URL list.
    KnowledgeSourceId,
    "ks"
);

typed_id!(
    /// One document of a knowledge source (a file or a page).
    KnowledgeDocumentId,
    "kdoc"
);

typed_id!(
    /// One HTTP request, echoed in `x-request-id` and in every log line of it.
    RequestId,
    "req"
);

fn parse_prefixed(s: &str, prefix: &'static str) -> Result<Ulid, IdParseError> {
    let body = s
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or(IdParseError::WrongPrefix { expected: prefix })?;
    // The decoder is lenient (lower case, Crockford aliases such as `O` for
    // `0`, silent overflow of the first character). An id is canonical in
    // exactly one spelling, so anything that does not re-encode to itself is
    // refused rather than aliased.
    let ulid = Ulid::from_string(body).map_err(|_| IdParseError::BadBody { prefix })?;
    let mut buf = [0u8; ulid::ULID_LEN];
    if ulid.array_to_str(&mut buf) != body {
        return Err(IdParseError::BadBody { prefix });
    }
    Ok(ulid)
}

/// A fresh ULID: the current millisecond and 80 random bits, monotonic
/// within the process: an id minted after another in the same process
/// sorts after it, even within one millisecond (the random part of the
/// previous id plus one), so rows written in order list in order.
pub fn new_ulid() -> Ulid {
    let mut id = Ulid::nil();
    mint(1, |u| id = u);
    id
}

/// `n` new ULIDs, strictly increasing and after every one minted before in
/// this process, for one random draw: a batch of rows minted together.
pub fn new_ulids(n: usize) -> Vec<Ulid> {
    let mut out = Vec::with_capacity(n);
    mint(n, |u| out.push(u));
    out
}

/// Mints `n` ULIDs in order, handing each to `each`.
fn mint(n: usize, mut each: impl FnMut(Ulid)) {
    use std::sync::{Mutex, PoisonError};
    static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));
    const RANDOM_MAX: u128 = (1 << 80) - 1;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut random = [0u8; 16];
    // The OS generator failing is unrecoverable for a process that mints
    // secrets; there is no sensible fallback.
    getrandom::fill(&mut random).expect("the OS random generator failed");
    // The ULID random part is 80 bits.
    let random = u128::from_le_bytes(random) & RANDOM_MAX;
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..n {
        let (at, r) = if ms > last.0 {
            (ms, random)
        } else if last.1 < RANDOM_MAX {
            // Same millisecond (or the clock stepped back): continue from the last.
            (last.0, last.1 + 1)
        } else {
            (last.0 + 1, random)
        };
        *last = (at, r);
        each(Ulid::from_parts(at, r));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_minted_in_one_process_are_strictly_increasing() {
        let mut ids: Vec<super::Ulid> = (0..10_000).map(|_| super::new_ulid()).collect();
        ids.extend(super::new_ulids(500));
        ids.push(super::new_ulid());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_has_prefix_and_round_trips() {
        let id = AccountId::new();
        let s = id.to_string();
        assert!(s.starts_with("acct_"));
        assert_eq!(s.len(), 5 + 26);
        assert_eq!(s.parse::<AccountId>().unwrap(), id);
    }

    #[test]
    fn wrong_prefix_is_refused() {
        let key = ApiKeyId::new().to_string();
        assert_eq!(
            key.parse::<AccountId>(),
            Err(IdParseError::WrongPrefix { expected: "acct" })
        );
        assert_eq!(
            "acct01JD3K8Q9V7Y2X4W6T5R3P1N0M".parse::<AccountId>(),
            Err(IdParseError::WrongPrefix { expected: "acct" })
        );
    }

    #[test]
    fn bad_bodies_are_refused() {
        for s in [
            "acct_",
            "acct_123",
            "acct_01jd3k8q9v7y2x4w6t5r3p1n0m",
            "acct_01JD3K8Q9V7Y2X4W6T5R3P1N0MX",
            "acct_ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "acct_01JD3K8Q9V7Y2X4W6T5R3P1NOM",
        ] {
            assert_eq!(
                s.parse::<AccountId>(),
                Err(IdParseError::BadBody { prefix: "acct" }),
                "{s}"
            );
        }
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = AccountId::from_ulid(Ulid::from_parts(1_000, 99));
        let b = AccountId::from_ulid(Ulid::from_parts(2_000, 1));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn serde_uses_the_prefixed_string() {
        let id = ApiKeyId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ApiKeyId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<AccountId>(&json).is_err());
    }

    proptest! {
        #[test]
        fn any_ulid_round_trips(ms in 0u64..(1u64 << 48), random: u128) {
            let id = UserId::from_ulid(Ulid::from_parts(ms, random));
            prop_assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        }

        #[test]
        fn string_order_matches_id_order(a: u128, b: u128) {
            let (x, y) = (RequestId::from_ulid(Ulid(a)), RequestId::from_ulid(Ulid(b)));
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<AccountId>();
        }
    }
}
