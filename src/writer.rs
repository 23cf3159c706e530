//! The writer: the one path every ledger write takes.
//!
//! Each ledger has one writer task fed by a bounded queue of submissions (one request, or an
//! all-or-nothing group of requests). The task takes whatever submissions are waiting (up to
//! [`SUBMISSIONS_PER_BATCH_MAX`], so at most [`REQUESTS_PER_BATCH_MAX`] requests) and commits
//! them as one database transaction — group commit:
//! while one batch is being made durable, the next one fills up, so the cost of a commit (an
//! fsync) is shared by every request in the batch. Each request still gets its own outcome; a
//! refused request is simply not written, and the rest of its batch commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::{Clock, Entropy};
use crate::ledger::{EntryDraft, LedgerError, WriteRequest};
use crate::store::{Outcome, Store};

/// Most submissions the writer takes into one batch (one transaction). Large enough to amortise
/// the commit. A submission is one request or a group of up to [`GROUP_MAX`], so this bounds the
/// transaction's size only through [`REQUESTS_PER_BATCH_MAX`].
pub const SUBMISSIONS_PER_BATCH_MAX: usize = 1024;
/// The true bound of one transaction: every submission of a full batch a group of
/// [`GROUP_MAX`] requests. Batches of single requests (the usual case) hold at most
/// [`SUBMISSIONS_PER_BATCH_MAX`].
pub const REQUESTS_PER_BATCH_MAX: usize = SUBMISSIONS_PER_BATCH_MAX * GROUP_MAX;
/// Most submissions waiting for one ledger's writer (so at most `QUEUE_MAX * GROUP_MAX`
/// requests); beyond this, submissions are refused as overloaded rather than queued without bound.
pub const QUEUE_MAX: usize = 16_384;

// The writer's bounds hold together: a batch takes from the queue, so it is never larger than
// the queue; a group fits in a batch; and the request bound is exactly what the writer's
// `recv_many` (submissions) and `submit_group` (requests per submission) allow, without overflow.
const _: () = assert!(
    SUBMISSIONS_PER_BATCH_MAX >= 1
        && SUBMISSIONS_PER_BATCH_MAX <= QUEUE_MAX
        && GROUP_MAX >= 1
        && GROUP_MAX <= REQUESTS_PER_BATCH_MAX
        && REQUESTS_PER_BATCH_MAX / GROUP_MAX == SUBMISSIONS_PER_BATCH_MAX
        && REQUESTS_PER_BATCH_MAX % GROUP_MAX == 0
);

/// Why a write got no outcome. The request may be retried with the same idempotency key.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the writer queue is full")]
    Overloaded,
    #[error("the batch could not be committed")]
    Unavailable,
    #[error("a group must hold 1 to {GROUP_MAX} entries")]
    GroupSize,
}

/// Most requests in one all-or-nothing group, a ledger limit the writer enforces.
pub use crate::ledger::GROUP_MAX;

/// One submission: a single request, or a group that posts all together or not at all.
struct Job {
    requests: Vec<WriteRequest>,
    reply: oneshot::Sender<Result<Vec<Outcome>, WriteError>>,
}

/// What a caller asks of the ledger beyond the entry itself.
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    pub limits: Vec<crate::ledger::Limit>,
    pub guard: Option<crate::ledger::Guard>,
    /// A redemption code or card shown with the request (see `ledger::presence`).
    pub presentation: Option<crate::ledger::presence::Presentation>,
    /// A refusal decided before the batch that must still spend the presentation.
    pub pre_refusal: Option<LedgerError>,
    /// A receipt to create with the entry.
    pub receipt: Option<crate::ledger::presence::ReceiptDraft>,
    /// Request content outside the draft (a basket, a code) that a repeat of the idempotency
    /// key must match too: folded into the request fingerprint.
    pub fingerprint_extra: Option<Vec<u8>>,
}

/// A handle to one ledger's writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    counts: Arc<Counts>,
}

/// What a writer has committed so far (for benchmarks and monitoring).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches handed to the store (a failed batch retried one submission at a time counts once).
    pub batches: u64,
    /// Requests in those batches.
    pub requests: u64,
}

#[derive(Default)]
struct Counts {
    batches: AtomicU64,
    requests: AtomicU64,
}

impl Writer {
    /// Starts the writer task for `ledger_id`. It runs until every handle is dropped.
    pub fn spawn(
        store: Arc<dyn Store>,
        ledger_id: String,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Writer {
        let (queue, receiver) = mpsc::channel(QUEUE_MAX);
        let counts = Arc::new(Counts::default());
        tokio::spawn(run(
            store,
            ledger_id,
            clock.clone(),
            receiver,
            counts.clone(),
        ));
        Writer {
            queue,
            clock,
            entropy,
            counts,
        }
    }

    /// Batches and requests this ledger's writer has handed to the store so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counts.batches.load(Ordering::Relaxed),
            requests: self.counts.requests.load(Ordering::Relaxed),
        }
    }

    /// Posts one entry and waits for its outcome. The caller has checked the draft; the planner
    /// checks it again under the lock.
    pub async fn submit(
        &self,
        idempotency_key: String,
        actor: String,
        draft: EntryDraft,
    ) -> Result<Outcome, WriteError> {
        self.enqueue(idempotency_key, actor, draft)?.await
    }

    /// Posts one entry under conditions (limits, a guarded record) and waits for its outcome.
    pub async fn submit_with(
        &self,
        idempotency_key: String,
        actor: String,
        draft: EntryDraft,
        conditions: Conditions,
    ) -> Result<Outcome, WriteError> {
        let request = self.request(idempotency_key, actor, draft, conditions);
        let answer = self.send(vec![request])?;
        let mut outcomes = answer.await?;
        outcomes.pop().ok_or(WriteError::Unavailable)
    }

    /// Posts entries all together or not at all (at most [`GROUP_MAX`]): if any is refused,
    /// every one is refused — it with its own reason, the others as `GroupRefused`.
    pub async fn submit_group(
        &self,
        items: Vec<(String, String, EntryDraft, Conditions)>,
    ) -> Result<Vec<Outcome>, WriteError> {
        if items.is_empty() || items.len() > GROUP_MAX {
            return Err(WriteError::GroupSize);
        }
        let requests = items
            .into_iter()
            .map(|(key, actor, draft, conditions)| self.request(key, actor, draft, conditions))
            .collect();
        self.send(requests)?.await
    }

    /// Queues one entry now and returns a future for its outcome. Entries queued one after
    /// another from one task are planned in that order.
    pub fn enqueue(
        &self,
        idempotency_key: String,
        actor: String,
        draft: EntryDraft,
    ) -> Result<impl std::future::Future<Output = Result<Outcome, WriteError>>, WriteError> {
        let request = self.request(idempotency_key, actor, draft, Conditions::default());
        let answer = self.send(vec![request])?;
        Ok(async move {
            let mut outcomes = answer.await?;
            outcomes.pop().ok_or(WriteError::Unavailable)
        })
    }

    fn request(
        &self,
        key: String,
        actor: String,
        draft: EntryDraft,
        conditions: Conditions,
    ) -> WriteRequest {
        // The fingerprint and id are computed here, on the caller's task, to keep the single
        // writer task free for database work.
        let mut request = WriteRequest::new(
            key,
            actor,
            draft,
            self.entropy.uuid_v7(self.clock.now_micros()),
        );
        request.limits = conditions.limits;
        request.guard = conditions.guard;
        request.presentation = conditions.presentation;
        request.pre_refusal = conditions.pre_refusal;
        request.receipt = conditions.receipt;
        if let Some(extra) = conditions.fingerprint_extra {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            hasher.update(request.fingerprint);
            hasher.update(extra);
            request.fingerprint = hasher.finalize().into();
        }
        request
    }

    fn send(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<impl std::future::Future<Output = Result<Vec<Outcome>, WriteError>>, WriteError>
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job { requests, reply })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => WriteError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => WriteError::Unavailable,
            })?;
        Ok(async move { answer.await.unwrap_or(Err(WriteError::Unavailable)) })
    }
}

async fn run(
    store: Arc<dyn Store>,
    ledger_id: String,
    clock: Arc<dyn Clock>,
    mut receiver: mpsc::Receiver<Job>,
    counts: Arc<Counts>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(SUBMISSIONS_PER_BATCH_MAX);
    while receiver
        .recv_many(&mut jobs, SUBMISSIONS_PER_BATCH_MAX)
        .await
        > 0
    {
        let mut replies = Vec::with_capacity(jobs.len());
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.drain(..).enumerate() {
            let group = (job.requests.len() > 1).then_some(index as u64);
            sizes.push(job.requests.len());
            requests.extend(job.requests.into_iter().map(|mut r| {
                r.group = group;
                r
            }));
            replies.push(job.reply);
        }
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts
            .requests
            .fetch_add(requests.len() as u64, Ordering::Relaxed);
        match store
            .commit_batch(&ledger_id, clock.now_micros(), &requests)
            .await
        {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (reply, size) in replies.into_iter().zip(sizes) {
                    // A caller that went away (client disconnected) still had its entry posted;
                    // a retry with the same key gets it back.
                    let _ = reply.send(Ok(outcomes.by_ref().take(size).collect()));
                }
            }
            Err(error) if replies.len() > 1 => {
                // Nothing of the batch was written. So that one submission the database rejects
                // cannot take its neighbours down with it, each is retried alone: only what
                // fails on its own gets an error.
                tracing::warn!(ledger = %ledger_id, batch = requests.len(), %error, "batch failed; retrying its submissions one by one");
                let mut rest = requests.as_slice();
                for (reply, size) in replies.into_iter().zip(sizes) {
                    let (own, tail) = rest.split_at(size);
                    rest = tail;
                    let answer = match store
                        .commit_batch(&ledger_id, clock.now_micros(), own)
                        .await
                    {
                        Ok(outcomes) if outcomes.len() == size => Ok(outcomes),
                        Ok(_) => Err(WriteError::Unavailable),
                        Err(error) => {
                            tracing::error!(ledger = %ledger_id, key = %own[0].idempotency_key, %error, "submission not committed");
                            Err(WriteError::Unavailable)
                        }
                    };
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(ledger = %ledger_id, %error, "submission not committed");
                for reply in replies {
                    let _ = reply.send(Err(WriteError::Unavailable));
                }
            }
        }
        // Replying woke this batch's callers, and many of them will submit again at once. Let
        // them run before taking the next batch: otherwise it would hold only the first one or
        // two of them and cost a whole commit (an fsync) for almost nothing.
        tokio::task::yield_now().await;
    }
}

/// One writer per ledger, started on first use.
pub struct Writers {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    by_ledger: Mutex<HashMap<String, Writer>>,
}

impl Writers {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, entropy: Arc<dyn Entropy>) -> Self {
        Writers {
            store,
            clock,
            entropy,
            by_ledger: Mutex::new(HashMap::new()),
        }
    }

    /// The writer of `ledger_id`. Must be called inside a Tokio runtime.
    pub fn get(&self, ledger_id: &str) -> Writer {
        let mut map = self
            .by_ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match map.get(ledger_id) {
            // A writer whose task ended (it can only end by panicking) is replaced, not left to
            // refuse every request until a restart.
            Some(writer) if !writer.queue.is_closed() => writer.clone(),
            _ => {
                let writer = Writer::spawn(
                    self.store.clone(),
                    ledger_id.to_owned(),
                    self.clock.clone(),
                    self.entropy.clone(),
                );
                map.insert(ledger_id.to_owned(), writer.clone());
                writer
            }
        }
    }
}

impl From<WriteError> for crate::error::Error {
    fn from(error: WriteError) -> Self {
        use crate::error::{Error, ErrorCode};
        match error {
            WriteError::Overloaded => Error::bare(ErrorCode::Overloaded),
            WriteError::Unavailable => Error::bare(ErrorCode::Unavailable),
            WriteError::GroupSize => Error::new(ErrorCode::InvalidBody, error.to_string()),
        }
    }
}
