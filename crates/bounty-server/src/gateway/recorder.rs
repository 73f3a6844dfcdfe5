//! Gateway calls written behind the response, in batches.
//!
//! A handler hands its call to [`Recorder::record`] (a channel send, no
//! I/O) and answers. One writer task takes whatever has queued up (up to
//! [`BATCH`] calls) and writes it in one transaction: under load, many
//! calls share a commit; when idle, a call is written at once. A write
//! that fails is retried with backoff, the batch kept, so a database blip
//! delays records but loses none. [`Recorder::flush`] waits until every
//! call handed over before it is written (a reported outcome does, so
//! its task gets every call the client saw answered).

use std::time::Duration;

use bounty_store::Store;
use bounty_store::gateway::NewGatewayCall;
use tokio::sync::{mpsc, oneshot};

/// Most calls written in one transaction.
pub const BATCH: usize = 512;

enum Message {
    Call(Box<NewGatewayCall>),
    Flush(oneshot::Sender<()>),
}

/// The handle handlers record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::UnboundedSender<Message>,
}

impl Recorder {
    /// Starts the writer on the current runtime.
    pub fn start(store: Store) -> Recorder {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, receiver));
        Recorder { sender }
    }

    /// Queues `call` to be written.
    pub fn record(&self, call: NewGatewayCall) {
        if self.sender.send(Message::Call(Box::new(call))).is_err() {
            tracing::error!("the gateway's call recorder has stopped; a call was not recorded");
        }
    }

    /// Waits until every call queued before this is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut calls: Vec<NewGatewayCall> = Vec::with_capacity(BATCH);
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Call(call) => calls.push(*call),
                Message::Flush(done) => flushes.push(done),
            }
            if calls.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        write(&store, &calls).await;
        calls.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes `calls`, retrying with backoff (up to a minute between tries)
/// while the database is unavailable. A batch the database refuses for
/// another reason is written call by call, so that one bad row (which
/// would be a bug) cannot hold the others back; that row is logged and
/// skipped.
async fn write(store: &Store, calls: &[NewGatewayCall]) {
    let mut wait = Duration::from_millis(50);
    loop {
        match store.record_gateway_calls(calls).await {
            Ok(()) => return,
            Err(e) if !e.is_unavailable() && calls.len() > 1 => {
                tracing::warn!(error = %e, calls = calls.len(), "a batch of gateway calls was refused; writing them one by one");
                for call in calls {
                    Box::pin(write(store, std::slice::from_ref(call))).await;
                }
                return;
            }
            Err(e) if !e.is_unavailable() => {
                tracing::error!(error = %e, call = %call_id(calls), "the database refused a gateway call; it is not recorded");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, calls = calls.len(), retry_in_ms = wait.as_millis() as u64,
                    "could not record gateway calls; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn call_id(calls: &[NewGatewayCall]) -> String {
    calls.first().map(|c| c.id.to_string()).unwrap_or_default()
}
