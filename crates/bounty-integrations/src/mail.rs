//! The mailer: emails pending notices (`bounty_store::notifications`)
//! through an SMTP server, to the account's owners or to the operator.
//!
//! Configured by `[mail] smtp_url` (`smtp://user:pass@host:587?tls=required`,
//! `smtps://…`, or `smtp://host:port` for a local relay) and `from`. With
//! no mailer a notice still shows in the dashboard and the log. A notice is
//! claimed under a lease, so two mailers never send one at once; a failed
//! send is retried (30 s, 5 min, 30 min, 2 h) and then given up on; a
//! notice older than a day is never sent.

use std::time::Duration;

use bounty_store::notifications::EmailClaim;
use bounty_store::{Store, StoreError};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

/// The waits after each failed send; then it is given up on.
pub const MAIL_RETRIES: [Duration; 4] = [
    Duration::from_secs(30),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(7200),
];

/// How a mailer runs.
#[derive(Clone)]
pub struct MailerConfig {
    /// `smtp://…` or `smtps://…`, credentials included. Secret.
    pub smtp_url: SecretString,
    /// `Bounty <billing@example.com>`.
    pub from: String,
    /// Where the operator's notices go; `None`: dashboard and log only.
    pub operator_email: Option<String>,
    pub poll_interval: Duration,
    pub batch: u32,
    pub lease: Duration,
    /// Older notices are never sent.
    pub max_age: Duration,
    pub retries: Vec<Duration>,
}

impl std::fmt::Debug for MailerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailerConfig")
            .field("smtp_url", &"<redacted>")
            .field("from", &self.from)
            .field("operator_email", &self.operator_email)
            .finish_non_exhaustive()
    }
}

impl MailerConfig {
    /// A mailer's settings with the defaults: 1 s polls, 16 at once, a
    /// 60 s lease, a day's age, [`MAIL_RETRIES`].
    pub fn new(smtp_url: SecretString, from: String, operator_email: Option<String>) -> Self {
        MailerConfig {
            smtp_url,
            from,
            operator_email,
            poll_interval: Duration::from_secs(1),
            batch: 16,
            lease: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
            retries: MAIL_RETRIES.to_vec(),
        }
    }
}

/// Emails notices.
#[derive(Clone)]
pub struct Mailer {
    store: Store,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    operator: Option<Mailbox>,
    config: MailerConfig,
}

impl Mailer {
    /// A mailer; the error names the setting that is wrong.
    pub fn new(store: Store, config: MailerConfig) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.expose_secret())
            .map_err(|e| format!("invalid value for `mail.smtp_url`: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("invalid value for `mail.from`: {e}"))?;
        let operator = config
            .operator_email
            .as_deref()
            .map(str::parse::<Mailbox>)
            .transpose()
            .map_err(|e| format!("invalid value for `mail.operator_email`: {e}"))?;
        Ok(Mailer {
            store,
            transport,
            from,
            operator,
            config,
        })
    }

    /// Sends pending notices until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(from = %self.from, "mailer");
        bounty_store::outbox::drain_until_cancelled("mailer", self.config.poll_interval, &cancel, || {
            self.drain_once()
        })
        .await;
    }

    /// Claims one batch of pending notices and emails them; how many.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        let claims = self
            .store
            .claim_notification_emails(self.config.batch, self.config.lease, self.config.max_age)
            .await?;
        let n = claims.len();
        for claim in claims {
            self.send(claim).await?;
        }
        Ok(n)
    }

    async fn send(&self, claim: EmailClaim) -> Result<(), StoreError> {
        let id = claim.notification.id;
        let recipients: Vec<Mailbox> = match claim.notification.account_id {
            Some(_) => claim.recipients.iter().filter_map(|r| r.parse().ok()).collect(),
            None => self.operator.iter().cloned().collect(),
        };
        if recipients.is_empty() {
            return self
                .store
                .notification_email_result(
                    id,
                    "failed",
                    Some("no recipient: no owner email (or operator_email)"),
                    None,
                )
                .await;
        }
        let mut message = Message::builder().from(self.from.clone());
        for to in recipients {
            message = message.to(to);
        }
        let body = format!(
            "{}\n\n-- \nBounty. This notice is also in your dashboard ({}).\n",
            claim.notification.body, claim.notification.kind
        );
        let email = match message
            .subject(claim.notification.title.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(body)
        {
            Ok(e) => e,
            Err(e) => {
                return self
                    .store
                    .notification_email_result(
                        id,
                        "failed",
                        Some(&format!("cannot build the email: {e}")),
                        None,
                    )
                    .await;
            }
        };
        match self.transport.send(email).await {
            Ok(_) => {
                tracing::info!(notification.id = %id, "notice emailed");
                self.store.notification_email_result(id, "sent", None, None).await
            }
            Err(e) => {
                let error = e.to_string();
                let step = usize::try_from(claim.attempts).unwrap_or(usize::MAX);
                match (e.is_permanent(), self.config.retries.get(step)) {
                    (false, Some(wait)) => {
                        tracing::warn!(notification.id = %id, %error, "notice email will be retried");
                        let at = self.store.now()
                            + chrono::Duration::from_std(*wait).unwrap_or(chrono::Duration::zero());
                        self.store
                            .notification_email_result(id, "pending", Some(&error), Some(at))
                            .await
                    }
                    _ => {
                        tracing::error!(notification.id = %id, %error, "notice email given up");
                        self.store
                            .notification_email_result(id, "failed", Some(&error), None)
                            .await
                    }
                }
            }
        }
    }
}
