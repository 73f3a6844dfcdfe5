//! Group commit: concurrent writes committed together, several to one
//! transaction and one fsync.
//!
//! [`Store::grouped`] hands a unit of work (a closure over a [`Tx`]) to
//! the store's batchers and waits for its answer. A batcher takes every
//! unit waiting (at most [`GroupCommit::max_batch`]), begins one
//! transaction, and runs each unit after a savepoint of its own:
//!
//! - a unit that answers [`Grouped::Keep`] keeps its writes;
//! - one that answers [`Grouped::Discard`] (a budget refusal) or an error
//!   is rolled back to its savepoint, so nothing of it is written and the
//!   others in the batch are untouched: a unique-constraint conflict or a
//!   refusal in one unit never fails its neighbours;
//! - the events a rolled-back unit emitted are dropped with it.
//!
//! The batch then commits once, and only then is each unit answered: a
//! kept unit's answer means its rows are durable. When the commit fails
//! every kept unit of the batch is answered with the error, and none of
//! their writes is there; the caller (a helpdesk, an API client) retries,
//! and the dedupe and idempotency keys make the retry exactly-once.
//!
//! No timer waits for a batch to fill: a batcher starts as soon as one
//! unit waits, and whatever arrives while it works forms the next batch.
//! Alone, a unit costs one savepoint more than a transaction of its own;
//! under load, the commits are shared.
//!
//! On SQLite there is one batcher (one writer: batching is the only
//! lever). On Postgres there are [`GroupCommit::batchers`] (default 2), so
//! that one batch runs its statements while another waits on its commit;
//! only one batch at a time runs statements, so a batch can wait only on
//! one that is committing, and the process's batches never deadlock each
//! other. Batches of two processes can (the same keys taken in opposite
//! orders): Postgres then fails one statement, and only that unit is
//! rolled back and answered with the error (503: retry).
//!
//! The batchers are started on first use, on the caller's runtime. A unit
//! that finds them gone (their runtime ended) runs in a transaction of
//! its own, exactly as [`Store::transact`] does.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::tx::Tx;
use crate::{Store, StoreError};

/// A future borrowing the transaction it runs in.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// What a unit of grouped work asks for its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouped<R> {
    /// Keep them: answered with `R` once the batch is committed.
    Keep(R),
    /// Roll them back (a refusal that must leave nothing): answered with
    /// `R` at once.
    Discard(R),
}

/// How writes are grouped (`[intake]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Whether [`Store::grouped`] groups at all; off, each unit is a
    /// transaction of its own.
    pub enabled: bool,
    /// Batchers on Postgres (SQLite always has one).
    pub batchers: usize,
    /// The most units in one transaction.
    pub max_batch: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            enabled: true,
            batchers: 2,
            max_batch: 64,
        }
    }
}

/// The batchers' queue, started on first use.
#[derive(Default)]
pub(crate) struct GroupSlot {
    queue: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    /// Transactions committed by the batchers, and the units in them.
    batches: AtomicU64,
    units: AtomicU64,
}

/// What the batchers have done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Batches run, one transaction each.
    pub batches: u64,
    /// Units run in them.
    pub units: u64,
}

/// A unit of work, typed away.
trait Job: Send {
    /// Runs the unit in `tx`; what it decided, and how to answer it.
    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> TxFuture<'t, Box<dyn Finish>>;
    /// Answers the unit with `error` without running it.
    fn fail(self: Box<Self>, error: StoreError);
}

/// A unit that ran, waiting for its batch's commit.
trait Finish: Send {
    fn keep(&self) -> bool;
    /// Answers the unit; `committed` is the batch's commit when it kept
    /// its writes.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

/// The units waiting, shared by the batchers.
type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Box<dyn Job>>>>;

type Work<R, E> = Box<dyn for<'t> FnOnce(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send>;

struct Unit<R, E> {
    work: Work<R, E>,
    answer: oneshot::Sender<Result<R, E>>,
}

struct Ran<R, E> {
    out: Result<Grouped<R>, E>,
    answer: oneshot::Sender<Result<R, E>>,
}

impl<R: Send + 'static, E: From<StoreError> + Send + 'static> Job for Unit<R, E> {
    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> TxFuture<'t, Box<dyn Finish>> {
        Box::pin(async move {
            let out = (self.work)(tx).await;
            Box::new(Ran {
                out,
                answer: self.answer,
            }) as Box<dyn Finish>
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.answer.send(Err(error.into()));
    }
}

impl<R: Send + 'static, E: From<StoreError> + Send + 'static> Finish for Ran<R, E> {
    fn keep(&self) -> bool {
        matches!(self.out, Ok(Grouped::Keep(_)))
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match self.out {
            Ok(Grouped::Keep(r)) => committed.map(|()| r).map_err(E::from),
            Ok(Grouped::Discard(r)) => Ok(r),
            Err(e) => Err(e),
        };
        let _ = self.answer.send(answer);
    }
}

impl Store {
    /// Runs `work` in a transaction shared with the other units waiting
    /// now, and answers once that transaction is committed (see the
    /// module doc). `work` must not commit or hold the transaction.
    pub async fn grouped<R, E, F>(&self, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send + 'static,
    {
        if !self.group.enabled {
            return self.transact(work).await;
        }
        let (answer, answered) = oneshot::channel();
        let unit: Box<dyn Job> = Box::new(Unit::<R, E> {
            work: Box::new(work),
            answer,
        });
        let queue = self.group_queue();
        let unit = match queue.send(unit).await {
            Ok(()) => return answered.await.unwrap_or_else(|_| Err(E::from(stopped()))),
            // The batchers are gone (their runtime ended): this unit runs
            // alone, and the next call starts new ones on its runtime.
            Err(mpsc::error::SendError(unit)) => unit,
        };
        self.restart_group();
        match self.begin().await {
            Err(e) => unit.fail(e),
            Ok(mut tx) => {
                let ran = unit.run(&mut tx).await;
                let committed = if ran.keep() { tx.commit().await } else { Ok(()) };
                ran.finish(committed);
            }
        }
        answered.await.unwrap_or_else(|_| Err(E::from(stopped())))
    }

    /// Runs `work` in a transaction of its own: committed when it keeps
    /// its writes, dropped otherwise. The same answers as
    /// [`Store::grouped`], one commit per unit.
    pub async fn transact<R, E, F>(&self, work: F) -> Result<R, E>
    where
        E: From<StoreError>,
        F: for<'t> FnOnce(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>>,
    {
        let mut tx = self.begin().await.map_err(E::from)?;
        match work(&mut tx).await? {
            Grouped::Keep(r) => {
                tx.commit().await.map_err(E::from)?;
                Ok(r)
            }
            Grouped::Discard(r) => Ok(r),
        }
    }

    /// What the batchers have done: the mean batch is `units / batches`.
    pub fn group_stats(&self) -> GroupStats {
        GroupStats {
            batches: self.group_slot.batches.load(Ordering::Relaxed),
            units: self.group_slot.units.load(Ordering::Relaxed),
        }
    }

    fn group_queue(&self) -> mpsc::Sender<Box<dyn Job>> {
        let mut slot = self.group_slot.queue.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(queue) if !queue.is_closed() => queue.clone(),
            _ => {
                let queue = self.start_batchers();
                *slot = Some(queue.clone());
                queue
            }
        }
    }

    fn restart_group(&self) {
        let mut slot = self.group_slot.queue.lock().unwrap_or_else(|p| p.into_inner());
        *slot = None;
    }

    fn start_batchers(&self) -> mpsc::Sender<Box<dyn Job>> {
        let (queue, units) = mpsc::channel::<Box<dyn Job>>(4 * self.group.max_batch.max(1));
        let units: Queue = Arc::new(tokio::sync::Mutex::new(units));
        let phase = Arc::new(tokio::sync::Mutex::new(()));
        let batchers = match self.backend() {
            crate::Backend::Sqlite => 1,
            crate::Backend::Postgres => self.group.batchers.max(1),
        };
        for _ in 0..batchers {
            let (store, units, phase) = (self.clone(), units.clone(), phase.clone());
            tokio::spawn(async move { store.batcher(units, phase).await });
        }
        queue
    }

    /// One batcher: takes what waits, runs it as one transaction, answers.
    async fn batcher(self, units: Queue, phase: Arc<tokio::sync::Mutex<()>>) {
        let max = self.group.max_batch.max(1);
        loop {
            // Only one batch of the process runs its statements at a time;
            // the others are committing (see `run_batch`). Units gather
            // while it waits.
            let statements = phase.clone().lock_owned().await;
            let mut batch = Vec::with_capacity(max);
            {
                let mut units = units.lock().await;
                if units.recv_many(&mut batch, max).await == 0 {
                    return; // every sender is gone
                }
            }
            // A panic in a unit ends its batch (every unit in it is
            // answered with an error as its channel drops), not the
            // batcher.
            let store = self.clone();
            let _ = tokio::spawn(async move { store.run_batch(batch, statements).await }).await;
        }
    }

    /// Runs `batch` in one transaction: its statements while holding
    /// `statements`, then the commit without it, so that the next batch's
    /// statements overlap this one's commit (its fsync). A batch running
    /// its statements can wait only on batches that are committing, which
    /// wait on nothing: the process's batches never deadlock each other.
    async fn run_batch(&self, batch: Vec<Box<dyn Job>>, statements: tokio::sync::OwnedMutexGuard<()>) {
        self.group_slot.batches.fetch_add(1, Ordering::Relaxed);
        self.group_slot
            .units
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut tx = match self.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let why = e.to_string();
                let unavailable = e.is_unavailable();
                batch.into_iter().for_each(|u| u.fail(copy(&why, unavailable)));
                return;
            }
        };
        let mut ran: Vec<Box<dyn Finish>> = Vec::with_capacity(batch.len());
        let mut units = batch.into_iter();
        let mut broken: Option<StoreError> = None;
        for unit in units.by_ref() {
            let mark = match tx.savepoint().await {
                Ok(mark) => mark,
                Err(e) => {
                    unit.fail(copy(&e.to_string(), e.is_unavailable()));
                    broken = Some(e);
                    break;
                }
            };
            let done = unit.run(&mut tx).await;
            if !done.keep()
                && let Err(e) = tx.rollback_to(mark).await
            {
                // The unit's writes cannot be undone alone: nothing of the
                // batch may commit.
                broken = Some(e);
                ran.push(done);
                break;
            }
            ran.push(done);
        }
        drop(statements);
        let committed = match broken {
            Some(e) => {
                drop(tx);
                Err(e)
            }
            None => tx.commit().await,
        };
        let (why, unavailable) = match &committed {
            Ok(()) => (String::new(), false),
            Err(e) => (e.to_string(), e.is_unavailable()),
        };
        for unit in units {
            unit.fail(copy(&why, unavailable));
        }
        for done in ran {
            let result = match &committed {
                Ok(()) => Ok(()),
                Err(_) => Err(copy(&why, unavailable)),
            };
            done.finish(result);
        }
    }
}

/// One unit's copy of the batch's error (a [`StoreError`] is not `Clone`):
/// still "unavailable" when the original was.
fn copy(why: &str, unavailable: bool) -> StoreError {
    let e = sqlx::Error::Protocol(format!("the grouped transaction failed: {why}"));
    match unavailable {
        true => StoreError::Unavailable(e),
        false => StoreError::Database(e),
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol("the group commit stopped".to_owned()))
}
