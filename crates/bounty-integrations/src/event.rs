//! The normalized ticket event every helpdesk webhook becomes.
//!
//! Each vendor names and shapes its events differently; the rest of Bounty
//! sees only a [`TicketEvent`]: a ticket was created, the customer replied,
//! the ticket was solved or reopened, or the customer rated it. That is all
//! intake needs: a new ticket becomes a task, a reply adds to it, and solved,
//! reopened and ratings are the external resolution signals a verifier
//! reads. Anything else a vendor sends is [`crate::parse::Parsed::Ignored`].
//!
//! Values here are already bounded and cleaned by [`crate::parse`](mod@crate::parse) (lengths
//! capped, HTML reduced to text, no NUL characters), so they can be stored
//! and shown as they are. Ratings are integers on a 0–100 scale; there are
//! no floats.

use bounty_core::TicketEventName;
use bounty_core::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// One thing that happened to a helpdesk ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// What happened.
    pub kind: TicketEventKind,
    /// The vendor's id for this event, when its payload carries one
    /// (Zendesk's event `id`, Intercom's `notif_…`). Part of the dedupe key
    /// together with the delivery id from [`crate::signature::Verified`].
    pub vendor_event_id: Option<String>,
    /// The ticket it happened to.
    pub ticket: TicketRef,
    /// When the vendor says it happened, if it says.
    pub occurred_at: Option<Timestamp>,
}

/// What happened to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TicketEventKind {
    /// A customer opened a new ticket.
    Created(NewTicket),
    /// The customer wrote again on an existing ticket.
    CustomerReplied {
        /// The reply as plain text.
        body: String,
    },
    /// The ticket was marked solved (resolved, closed).
    Solved,
    /// A solved ticket was opened again.
    Reopened,
    /// A person took the ticket over from the agent (a hand-off).
    Escalated,
    /// The customer rated the help they got.
    SatisfactionRated {
        /// The rating, normalized to 0–100.
        score: SatisfactionScore,
        /// What the customer wrote with it, if anything.
        comment: Option<String>,
    },
}

impl TicketEventKind {
    /// The stable name: `created`, `customer_replied`, `solved`, `reopened`,
    /// `satisfaction_rated` or `escalated` (also the serialized `type` tag).
    pub const fn name(&self) -> TicketEventName {
        match self {
            TicketEventKind::Created(_) => TicketEventName::Created,
            TicketEventKind::CustomerReplied { .. } => TicketEventName::CustomerReplied,
            TicketEventKind::Solved => TicketEventName::Solved,
            TicketEventKind::Reopened => TicketEventName::Reopened,
            TicketEventKind::Escalated => TicketEventName::Escalated,
            TicketEventKind::SatisfactionRated { .. } => TicketEventName::SatisfactionRated,
        }
    }
}

/// Which ticket, in the vendor's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The vendor's ticket or conversation id, as a string (Zendesk ticket
    /// id, Intercom conversation id, Chatwoot conversation display id).
    pub external_id: String,
    /// A link to the ticket in the vendor's UI, when the payload has one.
    pub url: Option<String>,
}

/// The content of a newly created ticket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewTicket {
    /// The subject line, if the channel has one.
    pub subject: Option<String>,
    /// The customer's first message as plain text; empty when the ticket
    /// was opened without text (an attachment alone, or a Chatwoot
    /// conversation whose first message arrives separately).
    pub body: String,
    /// Who opened it.
    pub customer: TicketCustomer,
    /// The vendor's tags or labels, in the vendor's order.
    pub tags: Vec<String>,
}

/// The customer on a ticket, as far as the vendor tells.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TicketCustomer {
    /// Their email address, as the vendor has it (not validated further).
    pub email: Option<String>,
    /// Their display name.
    pub name: Option<String>,
    /// The vendor's id for them (Zendesk requester id, Intercom contact id,
    /// Chatwoot contact id).
    pub external_id: Option<String>,
}

/// A satisfaction rating on a 0–100 integer scale, with the vendor's own
/// value kept for display and audit.
///
/// Scales map linearly: a five-point rating 1..=5 becomes 0, 25, 50, 75 or
/// 100; Zendesk's `good` / `bad` become 100 / 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScoreParts")]
pub struct SatisfactionScore {
    percent: u8,
    raw: String,
}

/// The highest normalized score.
pub const MAX_SCORE: u8 = 100;

/// Longest raw vendor value kept with a score.
const MAX_RAW_SCORE_LEN: usize = 32;

/// A normalized score above [`MAX_SCORE`], or a raw value too long to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a satisfaction score is 0 to 100 with a raw value of at most 32 bytes")]
pub struct InvalidScore;

impl SatisfactionScore {
    /// A score of `percent` (0..=100) that the vendor wrote as `raw`.
    pub fn new(percent: u8, raw: impl Into<String>) -> Result<Self, InvalidScore> {
        let raw = raw.into();
        if percent > MAX_SCORE || raw.len() > MAX_RAW_SCORE_LEN {
            return Err(InvalidScore);
        }
        Ok(SatisfactionScore { percent, raw })
    }

    /// A rating on a 1..=5 scale (Intercom, Chatwoot), or `None` outside it.
    pub fn from_five_point(rating: i64) -> Option<Self> {
        let steps = u8::try_from(rating).ok().filter(|r| (1..=5).contains(r))? - 1;
        Some(SatisfactionScore {
            percent: steps * 25,
            raw: rating.to_string(),
        })
    }

    /// The normalized score, 0..=100.
    pub const fn percent(&self) -> u8 {
        self.percent
    }

    /// The vendor's own value: `good`, `4`, `75`, ….
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// The serialized form of [`SatisfactionScore`], checked on the way in.
#[derive(Deserialize)]
struct ScoreParts {
    percent: u8,
    raw: String,
}

impl TryFrom<ScoreParts> for SatisfactionScore {
    type Error = InvalidScore;

    fn try_from(parts: ScoreParts) -> Result<Self, Self::Error> {
        SatisfactionScore::new(parts.percent, parts.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_point_ratings_map_linearly_and_nothing_else_does() {
        let mapped: Vec<u8> = (1..=5)
            .map(|r| SatisfactionScore::from_five_point(r).unwrap().percent())
            .collect();
        assert_eq!(mapped, [0, 25, 50, 75, 100]);
        assert_eq!(SatisfactionScore::from_five_point(4).unwrap().raw(), "4");
        for bad in [i64::MIN, -1, 0, 6, 256, 261, i64::MAX] {
            assert_eq!(SatisfactionScore::from_five_point(bad), None, "{bad}");
        }
    }

    #[test]
    fn scores_are_bounded_on_construction_and_deserialization() {
        assert_eq!(SatisfactionScore::new(100, "good").unwrap().percent(), 100);
        assert_eq!(SatisfactionScore::new(101, "x"), Err(InvalidScore));
        assert_eq!(SatisfactionScore::new(50, "x".repeat(33)), Err(InvalidScore));
        let json = serde_json::json!({"percent": 75, "raw": "4"});
        let score: SatisfactionScore = serde_json::from_value(json).unwrap();
        assert_eq!((score.percent(), score.raw()), (75, "4"));
        assert!(
            serde_json::from_value::<SatisfactionScore>(serde_json::json!({"percent": 101, "raw": "x"}))
                .is_err()
        );
    }

    #[test]
    fn events_round_trip_through_json_with_their_name_as_tag() {
        let kinds = [
            TicketEventKind::Created(NewTicket {
                body: "Hi".into(),
                ..NewTicket::default()
            }),
            TicketEventKind::CustomerReplied {
                body: "Still broken".into(),
            },
            TicketEventKind::Solved,
            TicketEventKind::Reopened,
            TicketEventKind::Escalated,
            TicketEventKind::SatisfactionRated {
                score: SatisfactionScore::new(0, "bad").unwrap(),
                comment: Some("slow".into()),
            },
        ];
        for kind in kinds {
            let event = TicketEvent {
                kind,
                vendor_event_id: Some("evt_1".into()),
                ticket: TicketRef {
                    external_id: "42".into(),
                    url: None,
                },
                occurred_at: None,
            };
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["kind"]["type"], event.kind.name().as_str());
            assert_eq!(serde_json::from_value::<TicketEvent>(json).unwrap(), event);
        }
    }
}
