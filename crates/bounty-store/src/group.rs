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
//! lever). On Postgres there are [`GroupCommit::batchers`] (default 1),
//! each with its own queue and connection, running their batches at the
//! same time. A unit names its partition ([`Store::grouped_by`]: intake
//! gives the integration and ticket, the API the account and idempotency
//! key), so units that can meet on a unique key (copies of one delivery,
//! one ticket's events) queue on the same batcher, in order, and meet
//! under savepoints instead of across open transactions. Batches of
//! different batchers (or processes) can still deadlock on rows outside
//! any key (an account's billing lock); Postgres then cancels one
//! statement, and that unit is rolled back to its savepoint and run again
//! at the head of its batcher's next batch, once its own batch has
//! committed and released what the other was waiting on (at most
//! [`DEADLOCK_TRIES`] times, then answered with the error).
//!
//! A unit is a closure that may run more than once (`Fn`): it clones
//! what it needs each time.
//!
//! **Set-wise writes.** A unit given with a [`SetWork`]
//! ([`Store::grouped_set_by`]) may be written together with the other
//! units of its kind waiting in the same batch: one set of statements for
//! all of them (a multi-row insert) instead of one set per unit. The set
//! runs at the place of the first of them, under one savepoint. It writes
//! what it can and leaves the rest: a unit it did not write (a conflict,
//! a refusal, anything not plain) runs alone right after, through its own
//! closure and savepoint, exactly as without the set; an error in the set
//! rolls all of it back and every unit of it runs alone. So the set is
//! only ever a faster way to the same rows.
//!
//! The batchers are started on first use, on the caller's runtime. A unit
//! that finds them gone (their runtime ended) runs in a transaction of
//! its own, exactly as [`Store::transact`] does.

use std::any::{Any, TypeId};
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
            // One batcher makes the biggest batches, and set-wise writes
            // make a batch cheap: it beat 2 and 4 on Postgres in the
            // intake benchmark (docs/PERFORMANCE.md).
            batchers: 1,
            max_batch: 64,
        }
    }
}

/// `work` as a unit of grouped work: names its type where a closure is
/// kept in a variable before [`Store::grouped`] gets it (a closure's
/// borrowed argument is only inferred for all lifetimes at a call like
/// this one).
pub fn unit<R, E, F>(work: F) -> F
where
    F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>>,
{
    work
}

/// What a set wrote ([`SetWork::write`]): for each item `Some(out)` when
/// written, `None` when it is to run alone; `None` for the whole to undo
/// the set.
pub type SetWritten<R> = Option<Vec<Option<R>>>;

/// Work whose units, waiting in one batch, can be written together
/// ([`Store::grouped_set_by`]).
pub trait SetWork: Send + Sync + 'static {
    /// What one unit writes.
    type Item: Send + Sync + 'static;
    /// What a written unit is answered.
    type Out: Send + 'static;

    /// Writes what it can of `items` together in `tx`, and says for each
    /// item (in order) `Some(out)` when it is written, or `None` when it
    /// is to run alone: then nothing of it may be written. `Ok(None)` or
    /// an error undoes the whole set, and every item runs alone.
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        items: Vec<&'a Self::Item>,
    ) -> TxFuture<'a, Result<SetWritten<Self::Out>, StoreError>>;
}

/// How often a unit runs into a deadlock before it is answered with it.
pub const DEADLOCK_TRIES: u32 = 3;

/// The batchers' queue, started on first use.
#[derive(Default)]
pub(crate) struct GroupSlot {
    /// One queue per batcher.
    queues: Mutex<Option<Vec<Queue>>>,
    /// The partition of units that name none.
    next: AtomicU64,
    /// What the batchers did, shared with the batchers' own stores.
    counts: std::sync::Arc<Counts>,
}

/// Transactions run by the batchers, and the units in them.
#[derive(Default)]
struct Counts {
    batches: AtomicU64,
    units: AtomicU64,
    set_units: AtomicU64,
}

/// What the batchers have done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Batches run, one transaction each.
    pub batches: u64,
    /// Units run in them.
    pub units: u64,
    /// Of those, the units written set-wise ([`SetWork`]).
    pub set_units: u64,
}

/// A unit of work, typed away.
trait Job: Send {
    /// Runs the unit in `tx`, keeping what it answered.
    fn run<'t>(&'t mut self, tx: &'t mut Tx) -> TxFuture<'t, ()>;
    /// Whether it keeps its writes.
    fn keep(&self) -> bool;
    /// Counts a deadlock; whether it may run again.
    fn again(&mut self) -> bool;
    /// Answers the unit; `committed` is its batch's commit.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
    /// Answers the unit with `error` without running it.
    fn fail(self: Box<Self>, error: StoreError);
    /// The kind of set it can be written in, if any ([`SetWork`]).
    fn set_kind(&self) -> Option<TypeId> {
        None
    }
    /// The unit itself, for the first unit of a set to read the others.
    fn as_any(&mut self) -> &mut dyn Any;
    /// Writes this unit and `others` (of its set kind) together; says
    /// which were written (this one first), or `None` when the set must
    /// be undone.
    fn write_set<'t>(
        &'t mut self,
        _others: &'t mut [Box<dyn Job>],
        _tx: &'t mut Tx,
    ) -> TxFuture<'t, Result<Option<Vec<bool>>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
}

/// A batcher's queue.
type Queue = mpsc::Sender<Box<dyn Job>>;

type Work<R, E> = Box<dyn for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send>;

struct Unit<R, E> {
    work: Work<R, E>,
    out: Option<Result<Grouped<R>, E>>,
    deadlocks: u32,
    answer: oneshot::Sender<Result<R, E>>,
}

impl<R: Send + 'static, E: From<StoreError> + Send + 'static> Job for Unit<R, E> {
    fn run<'t>(&'t mut self, tx: &'t mut Tx) -> TxFuture<'t, ()> {
        Box::pin(async move {
            self.out = Some((self.work)(tx).await);
        })
    }

    fn keep(&self) -> bool {
        matches!(self.out, Some(Ok(Grouped::Keep(_))))
    }

    fn again(&mut self) -> bool {
        self.deadlocks += 1;
        self.deadlocks < DEADLOCK_TRIES
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match self.out {
            Some(Ok(Grouped::Keep(r))) => committed.map(|()| r).map_err(E::from),
            Some(Ok(Grouped::Discard(r))) => Ok(r),
            Some(Err(e)) => Err(e),
            None => Err(E::from(stopped())),
        };
        let _ = self.answer.send(answer);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.answer.send(Err(error.into()));
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A unit that may be written set-wise: its item, and its closure to run
/// it alone.
struct SetUnit<W: SetWork, E> {
    set: Arc<W>,
    item: W::Item,
    unit: Unit<W::Out, E>,
}

impl<W: SetWork, E: From<StoreError> + Send + 'static> Job for SetUnit<W, E> {
    fn run<'t>(&'t mut self, tx: &'t mut Tx) -> TxFuture<'t, ()> {
        self.unit.run(tx)
    }

    fn keep(&self) -> bool {
        self.unit.keep()
    }

    fn again(&mut self) -> bool {
        self.unit.again()
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        Box::new(self.unit).finish(committed)
    }

    fn fail(self: Box<Self>, error: StoreError) {
        Box::new(self.unit).fail(error)
    }

    fn set_kind(&self) -> Option<TypeId> {
        Some(TypeId::of::<W>())
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn write_set<'t>(
        &'t mut self,
        others: &'t mut [Box<dyn Job>],
        tx: &'t mut Tx,
    ) -> TxFuture<'t, Result<Option<Vec<bool>>, StoreError>> {
        Box::pin(async move {
            let set = self.set.clone();
            let mut all: Vec<&mut SetUnit<W, E>> = Vec::with_capacity(1 + others.len());
            all.push(self);
            for other in others.iter_mut() {
                match other.as_any().downcast_mut::<SetUnit<W, E>>() {
                    Some(unit) => all.push(unit),
                    // Not of this set (the batcher gathers by kind, so
                    // never): undone, every unit runs alone.
                    None => return Ok(None),
                }
            }
            let written = {
                let items: Vec<&W::Item> = all.iter().map(|u| &u.item).collect();
                set.write(tx, items).await?
            };
            let Some(written) = written else { return Ok(None) };
            if written.len() != all.len() {
                return Err(StoreError::Corrupt(format!(
                    "a set of {} units answered {} of them",
                    all.len(),
                    written.len()
                )));
            }
            Ok(Some(
                all.into_iter()
                    .zip(written)
                    .map(|(unit, out)| match out {
                        Some(out) => {
                            unit.unit.out = Some(Ok(Grouped::Keep(out)));
                            true
                        }
                        None => false,
                    })
                    .collect(),
            ))
        })
    }
}

impl Store {
    /// Runs `work` in a transaction shared with the other units waiting
    /// now, and answers once that transaction is committed (see the
    /// module doc). `work` must not commit or hold the transaction; it
    /// may run more than once (after a deadlock), each time from scratch.
    pub async fn grouped<R, E, F>(&self, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send + 'static,
    {
        let partition = self.group_slot.next.fetch_add(1, Ordering::Relaxed);
        self.grouped_in(partition, work).await
    }

    /// [`Store::grouped`] on the batcher of `key`'s partition: units with
    /// the same key run on one batcher, in the order they came.
    pub async fn grouped_by<R, E, F>(&self, key: &str, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send + 'static,
    {
        self.grouped_in(partition_of(key), work).await
    }

    /// [`Store::grouped_by`] for a unit that may be written together with
    /// the other units of `set`'s kind in its batch (see the module doc):
    /// `item` is what `set` writes, `work` runs it alone (when the set
    /// leaves it, or group commit is off). Both must come to the same rows.
    pub async fn grouped_set_by<W, E, F>(
        &self,
        key: &str,
        set: Arc<W>,
        item: W::Item,
        work: F,
    ) -> Result<W::Out, E>
    where
        W: SetWork,
        E: From<StoreError> + Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<W::Out>, E>> + Send + 'static,
    {
        if !self.group.enabled {
            return self.transact(work).await;
        }
        let (answer, answered) = oneshot::channel();
        let unit: Box<dyn Job> = Box::new(SetUnit {
            set,
            item,
            unit: Unit::<W::Out, E> {
                work: Box::new(work),
                out: None,
                deadlocks: 0,
                answer,
            },
        });
        self.send_unit(partition_of(key), unit, answered).await
    }

    async fn grouped_in<R, E, F>(&self, partition: u64, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>> + Send + 'static,
    {
        if !self.group.enabled {
            return self.transact(work).await;
        }
        let (answer, answered) = oneshot::channel();
        let unit: Box<dyn Job> = Box::new(Unit::<R, E> {
            work: Box::new(work),
            out: None,
            deadlocks: 0,
            answer,
        });
        self.send_unit(partition, unit, answered).await
    }

    /// Queues `unit` on its partition's batcher and waits for its answer.
    async fn send_unit<R, E>(
        &self,
        partition: u64,
        unit: Box<dyn Job>,
        answered: oneshot::Receiver<Result<R, E>>,
    ) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let queue = self.group_queue(partition);
        let mut unit = match queue.send(unit).await {
            Ok(()) => return answered.await.unwrap_or_else(|_| Err(E::from(stopped()))),
            // The batchers are gone (their runtime ended): this unit runs
            // alone, and the next call starts new ones on its runtime.
            Err(mpsc::error::SendError(unit)) => unit,
        };
        self.restart_group();
        match self.begin().await {
            Err(e) => unit.fail(e),
            Ok(mut tx) => {
                unit.run(&mut tx).await;
                let committed = if unit.keep() { tx.commit().await } else { Ok(()) };
                unit.finish(committed);
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
        F: for<'t> Fn(&'t mut Tx) -> TxFuture<'t, Result<Grouped<R>, E>>,
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
            batches: self.group_slot.counts.batches.load(Ordering::Relaxed),
            units: self.group_slot.counts.units.load(Ordering::Relaxed),
            set_units: self.group_slot.counts.set_units.load(Ordering::Relaxed),
        }
    }

    fn group_queue(&self, partition: u64) -> Queue {
        let mut slot = self.group_slot.queues.lock().unwrap_or_else(|p| p.into_inner());
        let queues = match &*slot {
            Some(queues) if queues.iter().all(|q| !q.is_closed()) => queues,
            _ => slot.insert(self.start_batchers()),
        };
        queues[(partition % queues.len() as u64) as usize].clone()
    }

    fn restart_group(&self) {
        let mut slot = self.group_slot.queues.lock().unwrap_or_else(|p| p.into_inner());
        *slot = None;
    }

    fn start_batchers(&self) -> Vec<Queue> {
        let batchers = match self.backend() {
            crate::Backend::Sqlite => 1,
            crate::Backend::Postgres => self.group.batchers.max(1),
        };
        (0..batchers)
            .map(|_| {
                let (queue, units) = mpsc::channel::<Box<dyn Job>>(4 * self.group.max_batch.max(1));
                // The batcher's store holds no queue, or its own would
                // never close: it ends when the last store that can send
                // to it is dropped. It counts into the shared counts.
                let mut store = self.clone();
                store.group_slot = std::sync::Arc::new(GroupSlot {
                    counts: self.group_slot.counts.clone(),
                    ..GroupSlot::default()
                });
                tokio::spawn(async move { store.batcher(units).await });
                queue
            })
            .collect()
    }

    /// One batcher: takes what waits (the units a deadlock sent back
    /// first), runs it as one transaction, answers.
    async fn batcher(self, mut units: mpsc::Receiver<Box<dyn Job>>) {
        let max = self.group.max_batch.max(1);
        let mut again: Vec<Box<dyn Job>> = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut again);
            let room = max.saturating_sub(batch.len()).max(1);
            if batch.is_empty() {
                if units.recv_many(&mut batch, room).await == 0 {
                    return; // every sender is gone
                }
            } else {
                while batch.len() < max {
                    match units.try_recv() {
                        Ok(unit) => batch.push(unit),
                        Err(_) => break,
                    }
                }
            }
            // A panic in a unit ends its batch (every unit in it is
            // answered with an error as its channel drops), not the
            // batcher.
            let store = self.clone();
            if let Ok(back) = tokio::spawn(async move { store.run_batch(batch).await }).await {
                again = back;
            }
        }
    }

    /// Runs `batch` in one transaction and answers its units; returns the
    /// units a deadlock rolled back, to run first in the next batch.
    async fn run_batch(&self, batch: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        self.group_slot.counts.batches.fetch_add(1, Ordering::Relaxed);
        self.group_slot
            .counts
            .units
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut tx = match self.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let why = e.to_string();
                let unavailable = e.is_unavailable();
                batch.into_iter().for_each(|u| u.fail(copy(&why, unavailable)));
                return Vec::new();
            }
        };
        let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
        let mut again = Vec::new();
        let mut left: Vec<Box<dyn Job>> = Vec::new();
        let mut broken: Option<StoreError> = None;
        let mut steps = steps(batch).into_iter();
        for step in steps.by_ref() {
            let alone = match step.len() > 1 {
                true => match self.run_set(&mut tx, step, &mut ran).await {
                    Ok(alone) => alone,
                    Err((e, units)) => {
                        broken = Some(e);
                        left.extend(units);
                        break;
                    }
                },
                false => step,
            };
            let mut alone = alone.into_iter();
            for unit in alone.by_ref() {
                if let Err(e) = run_alone(&mut tx, unit, &mut ran, &mut again).await {
                    broken = Some(e);
                    break;
                }
            }
            left.extend(alone);
            if broken.is_some() {
                break;
            }
        }
        left.extend(steps.flatten());
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
        for unit in left {
            unit.fail(copy(&why, unavailable));
        }
        for unit in ran {
            let result = match &committed {
                Ok(()) => Ok(()),
                Err(_) => Err(copy(&why, unavailable)),
            };
            unit.finish(result);
        }
        if committed.is_err() {
            // Their batch is gone: they would run again in a new one, but
            // the database is failing; answered with its error.
            for unit in again.drain(..) {
                unit.fail(copy(&why, unavailable));
            }
        }
        again
    }
}

impl Store {
    /// Writes the units of one set kind together under a savepoint;
    /// returns those it left, to run alone next. When the set is undone
    /// they all run alone; when it cannot be undone, the error that breaks
    /// the batch and the units not answered.
    async fn run_set(
        &self,
        tx: &mut Tx,
        mut units: Vec<Box<dyn Job>>,
        ran: &mut Vec<Box<dyn Job>>,
    ) -> Result<Vec<Box<dyn Job>>, (StoreError, Vec<Box<dyn Job>>)> {
        let mark = match tx.savepoint().await {
            Ok(mark) => mark,
            Err(e) => return Err((e, units)),
        };
        let written = match units.split_first_mut() {
            Some((first, others)) => first.write_set(others, tx).await,
            None => return Ok(units),
        };
        let deadlocked = tx.take_deadlocked();
        match written {
            Ok(Some(written)) if !deadlocked => {
                let count = written.iter().filter(|w| **w).count();
                self.group_slot
                    .counts
                    .set_units
                    .fetch_add(count as u64, Ordering::Relaxed);
                let mut alone = Vec::new();
                for (unit, written) in units.into_iter().zip(written) {
                    match written {
                        true => ran.push(unit),
                        false => alone.push(unit),
                    }
                }
                Ok(alone)
            }
            // Undone: each runs alone, and meets what the set met on its
            // own (a deadlock included).
            _ => match tx.rollback_to(mark).await {
                Ok(()) => Ok(units),
                Err(e) => Err((e, units)),
            },
        }
    }
}

/// A batch in the order it runs: a unit alone, or the units of one set
/// kind together at the place of the first of them.
fn steps(batch: Vec<Box<dyn Job>>) -> Vec<Vec<Box<dyn Job>>> {
    let mut steps: Vec<Vec<Box<dyn Job>>> = Vec::with_capacity(batch.len());
    let mut sets: Vec<(TypeId, usize)> = Vec::new();
    for unit in batch {
        let kind = unit.set_kind();
        match kind.and_then(|k| sets.iter().find(|(s, _)| *s == k)) {
            Some(&(_, at)) => steps[at].push(unit),
            None => {
                if let Some(kind) = kind {
                    sets.push((kind, steps.len()));
                }
                steps.push(vec![unit]);
            }
        }
    }
    steps
}

/// Runs `unit` alone under its own savepoint: kept in `ran`, or rolled
/// back (a deadlocked one into `again`). An error means the batch cannot
/// commit.
async fn run_alone(
    tx: &mut Tx,
    mut unit: Box<dyn Job>,
    ran: &mut Vec<Box<dyn Job>>,
    again: &mut Vec<Box<dyn Job>>,
) -> Result<(), StoreError> {
    let mark = match tx.savepoint().await {
        Ok(mark) => mark,
        Err(e) => {
            unit.fail(copy(&e.to_string(), e.is_unavailable()));
            return Err(e);
        }
    };
    unit.run(tx).await;
    let deadlocked = tx.take_deadlocked();
    if deadlocked || !unit.keep() {
        if let Err(e) = tx.rollback_to(mark).await {
            // The unit's writes cannot be undone alone: nothing of the
            // batch may commit.
            ran.push(unit);
            return Err(e);
        }
        // What it waited on is released when this batch commits.
        if deadlocked {
            if unit.again() {
                again.push(unit);
            } else {
                unit.fail(copy("deadlocked, again and again", false));
            }
            return Ok(());
        }
    }
    ran.push(unit);
    Ok(())
}

/// The partition of units grouped by `key`.
fn partition_of(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
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
