//! Bounty's domain core: the types every other crate speaks in.
//!
//! Nothing here does I/O, touches a database or knows HTTP. Values are
//! parsed once at the edge into these types ("parse, don't validate"), so
//! code further in never sees a raw string where an id belongs, or a float
//! where money belongs.
//!
//! - [`id`]: typed, prefixed, time-sortable ids (`acct_01J…`).
//! - [`money`]: [`Money`], integer micros of one ISO currency.
//! - [`compute`]: [`ComputeUnits`], integer milli-CU.
//! - [`decimal`]: exact decimal-string parsing shared by both.
//! - [`clock`]: the injectable clock that every time-dependent rule reads.
//! - [`api_key`]: API key generation, parsing and hashing.
//! - [`account`]: validated names for accounts and keys; [`AccountStatus`].
//! - [`integration`]: helpdesk integration kinds and states, the sealing
//!   associated data, and what a delivery did.
//! - [`page`]: cursor pagination parameters.
//! - [`agent`]: validated parts of an agent definition.
//! - [`task`]: task input, status and the retry schedule.
//! - [`conversation`]: what a customer's message does to its task's
//!   conversation (append, continue, closed).
//! - [`verdict`]: verifier decisions and how policies combine them.
//! - [`verification`]: an agent's verification policy.
//! - [`outcome`]: the outcome state machine: when an outcome is charged or reversed.
//! - [`plan`]: plans, and rating an outcome into CU and money with a receipt.
//! - [`knowledge`]: documents parsed into sections and cut into chunks with
//!   stable ids and source links; the limits of a knowledge source.
//! - [`tool`]: an agent's HTTP tools, their URL templates and the sealing
//!   associated data of their header values.
//! - [`text`]: where a NUL character (which Postgres refuses) hides in input.
//! - [`vector`]: cosine, stored vector bytes, top-k and rank fusion for retrieval.

pub mod account;
pub mod actor;
pub mod agent;
pub mod api_key;
pub mod clock;
pub mod compute;
pub mod conversation;
pub mod decimal;
pub mod dispute;
pub mod event;
pub mod id;
pub mod integration;
pub mod invoice;
pub mod knowledge;
pub mod ledger;
pub mod margin;
pub mod money;
pub mod outbox;
pub mod outcome;
pub mod page;
pub mod plan;
pub mod routing;
pub mod stored_enum;
pub mod task;
pub mod text;
pub mod tool;
pub mod vector;
pub mod verdict;
pub mod verification;

pub use account::{AccountName, AccountStatus, IntegrationName, KeyName, KnowledgeName};
pub use actor::Actor;
pub use agent::{AgentName, GenerationParams, ModelRoute, OutcomeType};
pub use api_key::{ApiKeyHash, ApiKeyMode, ApiKeySecret, NewApiKey};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use compute::ComputeUnits;
pub use id::{
    AccountId, AgentId, ApiKeyId, BillingEventId, DeliveryId, DisputeId, EventId, GatewayCallId,
    IdParseError, IntegrationId, InviteId, KnowledgeDocumentId, KnowledgeSourceId, ModelCallId,
    NotificationId, OperatorId, OperatorKeyId, OutboxId, OutcomeId, RequestId, TaskId, ToolCallId,
    TransferId, UserId, WebhookAttemptId, WebhookEndpointId,
};
pub use integration::{
    DeliveryResult, IntegrationKind, IntegrationState, SealPurpose, TicketEventName, sealing_aad,
};
pub use invoice::InvoiceStatus;
pub use money::{Currency, Money, MoneyError};
pub use outcome::{
    ChargeEffect, OutcomeContext, OutcomeEvent, OutcomeStatus, Signal, Transition, TransitionError,
    transition,
};
pub use page::{PageLimit, PageLimitError};
pub use plan::{
    GatewayTerms, ModelUsage, Plan, PlanKind, RatingError, RatingInput, RatingReceipt, Unattributed, rate,
};
pub use routing::{CachePolicy, Cascade, PassRate, RoutingPolicy, ShadowPolicy, cache_key};
pub use task::{InputPolicy, TaskInput, TaskStatus, random_unit, retry_delay};
pub use tool::{ToolHeader, ToolMethod, ToolSpec};
pub use verdict::{Decision, PolicyMode, VerifierVerdict};
pub use verification::{VerificationPolicy, VerifierSpec};
