//! The demo's helpdesk: plays a customer's ticket system against the
//! server that `serve --demo` started, through the front door.
//!
//! Every event is a Standard Webhooks delivery signed with the demo
//! integration's secret and POSTed to this server's own
//! `/webhooks/in/{id}`, so it takes exactly the path a real helpdesk's
//! does: signature, parsing, deduplication, then a task or a signal. The
//! tickets are the demo's support tickets ([`TICKETS`]). For each, the
//! helpdesk opens the ticket, waits until the agent has answered and the
//! outcome waits on the ticket (`provisional`: the default policy charges
//! a ticket only once it is solved or not reopened within the window),
//! then plays the ticket's ending: one is marked solved (resolved and
//! charged), one solved and then reopened (its charge reversed), and one
//! handed to a person (`ticket.escalated`: escalated, never charged).
//!
//! Delivery ids are fixed per ticket and event, so a restarted demo plays
//! the same script again and every step it already took is a duplicate
//! that changes nothing: the story is told once.

use std::time::Duration;

use anyhow::Context;
use bounty_core::outcome::OutcomeStatus;
use bounty_core::{AccountId, IntegrationId, TaskId, TaskStatus};
use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_store::Store;
use chrono::SecondsFormat;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How the helpdesk ends a ticket once the agent has answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The agent marks it solved: resolved, and charged.
    Solved,
    /// Solved, then the customer reopens it within the window: the charge
    /// is reversed.
    SolvedThenReopened,
    /// A person takes it over from the agent: escalated, never charged.
    Escalated,
}

/// A demo support ticket.
pub struct Ticket {
    /// The helpdesk's ticket id.
    pub id: &'static str,
    pub subject: &'static str,
    pub body: &'static str,
    pub ending: Ending,
}

/// The demo's support tickets, in the order they are opened.
pub const TICKETS: [Ticket; 3] = [
    Ticket {
        id: "DEMO-1001",
        subject: "Where is my refund?",
        body: "I returned the blue jacket two weeks ago. (demo ticket)",
        ending: Ending::Solved,
    },
    Ticket {
        id: "DEMO-1002",
        subject: "Change my delivery address",
        body: "Please ship order 1042 to my office instead. (demo ticket)",
        ending: Ending::SolvedThenReopened,
    },
    Ticket {
        id: "DEMO-1003",
        subject: "Legal question about my contract",
        body: "Can I cancel the contract early without the fee? (demo ticket)",
        ending: Ending::Escalated,
    },
];

/// How often the helpdesk looks at a ticket's outcome.
const POLL: Duration = Duration::from_millis(250);
/// How long it waits for the agent to answer one ticket.
const ANSWER_WAIT: Duration = Duration::from_secs(300);

/// The helpdesk of the demo integration.
pub struct DemoHelpdesk {
    /// This server's own base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    pub account: AccountId,
    pub integration: IntegrationId,
    /// The integration's inbound secret (`whsec_…`).
    pub secret: String,
    pub store: Store,
}

impl DemoHelpdesk {
    /// Plays every ticket of [`TICKETS`] until done or `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::select! {
            result = self.play() => match result {
                Ok(()) => tracing::info!("demo: the helpdesk has played every ticket"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "demo: the helpdesk stopped"),
            },
            () = shutdown.cancelled() => {}
        }
    }

    async fn play(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        // Open every ticket first, so the worker answers them together.
        let mut opened = Vec::with_capacity(TICKETS.len());
        for ticket in &TICKETS {
            let body = json!({
                "type": "ticket.created",
                "timestamp": now(),
                "data": {
                    "ticket_id": ticket.id,
                    "subject": ticket.subject,
                    "body": ticket.body,
                    "customer": {"email": "customer@example.com", "name": "Demo Customer"},
                    "tags": ["demo"],
                },
            });
            let answer = self.deliver(&client, ticket.id, "created", &body).await?;
            let task: TaskId = answer["task_id"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .with_context(|| format!("the webhook answered no task for {}: {answer}", ticket.id))?;
            opened.push((ticket, task));
        }
        for (ticket, task) in opened {
            if !self.answered(task).await? {
                tracing::info!(ticket = ticket.id, task.id = %task, "demo: the ticket is settled; no signal to play");
                continue;
            }
            if ticket.ending == Ending::Escalated {
                self.signal(&client, ticket.id, "escalated").await?;
                continue;
            }
            self.signal(&client, ticket.id, "solved").await?;
            if ticket.ending == Ending::SolvedThenReopened {
                self.signal(&client, ticket.id, "reopened").await?;
            }
        }
        Ok(())
    }

    /// Waits until the agent has answered and the verifiers have decided;
    /// whether the ticket's outcome takes a signal (it waits on one, or an
    /// earlier run already gave it one).
    async fn answered(&self, task: TaskId) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        loop {
            match self.store.outcome_of_task(self.account, task).await? {
                Some(outcome) => match outcome.status {
                    OutcomeStatus::Provisional | OutcomeStatus::Resolved => return Ok(true),
                    // The verifiers failed it: nothing to confirm.
                    OutcomeStatus::Failed | OutcomeStatus::Reversed | OutcomeStatus::Escalated => {
                        return Ok(false);
                    }
                    OutcomeStatus::Verifying => {}
                },
                None => {
                    let failed = self
                        .store
                        .get_task(self.account, task)
                        .await?
                        .is_some_and(|t| t.status == TaskStatus::Failed);
                    if failed {
                        return Ok(false);
                    }
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "task {task} has no decided outcome after {ANSWER_WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn signal(&self, client: &reqwest::Client, ticket: &str, event: &str) -> anyhow::Result<()> {
        let body = json!({
            "type": format!("ticket.{event}"),
            "timestamp": now(),
            "data": {"ticket_id": ticket},
        });
        let answer = self.deliver(client, ticket, event, &body).await?;
        tracing::info!(
            ticket,
            event,
            result = answer["result"].as_str(),
            "demo: the helpdesk sent a signal"
        );
        Ok(())
    }

    /// Signs `body` and POSTs it to the integration's inbound URL; the
    /// webhook's JSON answer, or an error naming its status.
    async fn deliver(
        &self,
        client: &reqwest::Client,
        ticket: &str,
        event: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes = body.to_string().into_bytes();
        // Fixed per ticket and event: a replay is a duplicate.
        let delivery_id = format!("msg_demo_{ticket}_{event}");
        let headers = sign(
            IntegrationKind::Standard,
            self.secret.as_bytes(),
            &bytes,
            &Delivery {
                id: &delivery_id,
                timestamp: chrono::Utc::now(),
            },
        )
        .context("signing a demo delivery")?;
        let url = format!("{}/webhooks/in/{}", self.base_url, self.integration);
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(bytes);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request.send().await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "the webhook answered {status} to ticket {ticket} {event}: {answer}"
        );
        Ok(answer)
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
