//! Notices to people, end to end on both backends: written with their
//! cause (a cap threshold crossed by a charge, an outbox row parked),
//! listed unread until read, and emailed through a real SMTP exchange with
//! a sink on loopback (lettre speaking to it): to the account's owners, or
//! to the operator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bounty_core::{Decision, PageLimit};
use bounty_integrations::mail::{Mailer, MailerConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::billing::{add_agent, answered, queue_and_claim, store_test_policy};
use crate::support::{Backend, TestApp};

backend_tests!(
    a_cap_threshold_reaches_the_owners_by_email_and_the_bell,
    a_parked_outbox_row_reaches_the_operator,
);

/// One message the sink accepted: its envelope recipients and its text.
#[derive(Debug, Clone)]
struct Mail {
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server on loopback (RFC 5321's commands, no
/// extensions): every message it accepts is kept.
async fn smtp_sink() -> (Arc<Mutex<Vec<Mail>>>, String) {
    let got: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let kept = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut to = Vec::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        write.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut data = String::new();
                        loop {
                            line.clear();
                            lines.read_line(&mut line).await.unwrap();
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        kept.lock().unwrap().push(Mail {
                            to: std::mem::take(&mut to),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (got, url)
}

fn mailer(app: &TestApp, url: &str, operator: Option<&str>) -> Mailer {
    let mut config = MailerConfig::new(
        url.to_owned().into(),
        "Bounty <bounty@example.test>".to_owned(),
        operator.map(str::to_owned),
    );
    config.poll_interval = Duration::from_millis(10);
    Mailer::new(app.store.clone(), config).unwrap()
}

async fn owner(app: &TestApp, account: bounty_core::AccountId, email: &str) {
    app.store
        .create_user(
            account,
            &email.parse().unwrap(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            bounty_store::UserRole::Owner,
        )
        .await
        .unwrap()
        .unwrap();
}

async fn a_cap_threshold_reaches_the_owners_by_email_and_the_bell(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (account, _) = app.create_account("Acme").await;
    owner(&app, account, "ann@acme.test").await;
    owner(&app, account, "bob@acme.test").await;
    // A cap of 1.50 USD, alerting at 50%: one 1 USD charge crosses it.
    app.store.set_cap(account, Some(1_500_000), &[50]).await.unwrap();
    let agent = add_agent(&app.store, account, store_test_policy()).await;
    let claimed = queue_and_claim(&app.store, account, agent, "ticket".into()).await;
    assert!(
        bounty_agents::finish::finish_attempt(&app.store, &claimed, &answered("done", Decision::Pass), &[])
            .await
            .unwrap()
    );
    // The bell: one unread notice, and nothing for another tenant.
    assert_eq!(app.store.unread_notifications(Some(account)).await.unwrap(), 1);
    let (other, _) = app.create_account("Globex").await;
    assert_eq!(app.store.unread_notifications(Some(other)).await.unwrap(), 0);
    let page = app
        .store
        .list_notifications(Some(account), true, PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(page.items[0].kind, "budget.threshold_reached");
    assert!(page.items[0].title.contains("50%"), "{:?}", page.items[0]);

    // Emailed once, to both owners, through a real SMTP exchange.
    let (sink, url) = smtp_sink().await;
    let mailer = mailer(&app, &url, None);
    assert_eq!(mailer.drain_once().await.unwrap(), 1);
    assert_eq!(mailer.drain_once().await.unwrap(), 0);
    let mails = sink.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mut to = mails[0].to.clone();
    to.sort();
    assert_eq!(to, vec!["ann@acme.test", "bob@acme.test"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: Spend reached 50% of your monthly cap"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0].data.contains("1.00 USD of your 1.50 USD cap"),
        "{}",
        mails[0].data
    );
    let page = app
        .store
        .list_notifications(Some(account), false, PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(page.items[0].email_state, "sent");
    // Read: the bell is empty again.
    assert_eq!(app.store.mark_notifications_read(Some(account)).await.unwrap(), 1);
    assert_eq!(app.store.unread_notifications(Some(account)).await.unwrap(), 0);
}

async fn a_parked_outbox_row_reaches_the_operator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (account, _) = app.create_account("Acme").await;
    let row = app.store.outbox_of(account).await.unwrap()[0].id;
    app.store.outbox_park(row, "Stripe said no").await.unwrap();
    let ops = app
        .store
        .list_notifications(None, true, PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(ops.items.len(), 1);
    assert_eq!(ops.items[0].kind, "outbox.parked");
    assert!(ops.items[0].body.contains("Stripe said no") && ops.items[0].body.contains(&row.to_string()));
    // Never in the account's own bell.
    assert_eq!(app.store.unread_notifications(Some(account)).await.unwrap(), 0);
    let (sink, url) = smtp_sink().await;
    mailer(&app, &url, Some("ops@bounty.test"))
        .drain_once()
        .await
        .unwrap();
    let mails = sink.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["ops@bounty.test"]);
    // A mailer without an operator address gives the operator's notices
    // up (they stay in the console), and nothing is sent.
    app.store
        .outbox_park(app.store.outbox_of(account).await.unwrap()[1].id, "again")
        .await
        .unwrap();
    mailer(&app, &url, None).drain_once().await.unwrap();
    assert_eq!(sink.lock().unwrap().len(), 1);
}
