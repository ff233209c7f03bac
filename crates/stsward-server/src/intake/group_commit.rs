//! Group commit for the live channels: the inputs that concurrent sessions (SMTP, HTTPS,
//! IMAP) finish while one transaction is being committed go together into the next one, so
//! that a burst of report e-mails costs a few durable commits instead of one each.
//!
//! Nothing about what a peer is told changes: each submission still waits for the commit
//! that holds its input, and its channel answers "accepted" (SMTP `250` after `DATA`, HTTP
//! 201/200, the IMAP move) only after that (RFC 8460 §5.3 and §5.4 leave the receiver's
//! acknowledgement to SMTP and HTTP; stsward acknowledges only what is durable). When a
//! shared transaction fails, every input in it is committed again on its own, so one input
//! that the store refuses cannot make the others fail.
//!
//! ```text
//! session ─┐                      ┌─ reply (Outcome or SinkError) ─> session
//! session ─┼─> bounded queue ─> committer: take what waits (≤ max_batch), one transaction
//! session ─┘                      └─ on error: each input alone
//! ```

use tokio::sync::{mpsc, oneshot};

use stsward_store::Intake;

use super::sink::{Outcome, SinkError};
use super::store_sink::StoreSink;

/// Submissions that may wait for the committer; further senders wait for room.
pub const QUEUE: usize = 1024;

/// The most submissions committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// One submission's intakes and where its outcome goes.
struct Job {
    intakes: Vec<Intake>,
    reply: oneshot::Sender<Result<Outcome, SinkError>>,
}

/// The handle sessions send their judged intakes to. Cloning shares the committer, which
/// stops once every handle is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the committer on the current tokio runtime; it commits through `sink`.
    pub fn start(sink: StoreSink) -> GroupCommit {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(sink, rx));
        GroupCommit { jobs }
    }

    /// Commits one submission's intakes together with whatever else is waiting, and returns
    /// its outcome once that transaction is committed.
    pub async fn commit(&self, intakes: Vec<Intake>) -> Result<Outcome, SinkError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { intakes, reply })
            .await
            .map_err(|_| SinkError("the committer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| SinkError("the committer stopped before committing".to_owned()))?
    }
}

async fn run(sink: StoreSink, mut rx: mpsc::Receiver<Job>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut waiting);
        commit_jobs(&sink, jobs).await;
    }
}

/// Commits `jobs` in one transaction; if that fails and there is more than one, each alone.
async fn commit_jobs(sink: &StoreSink, jobs: Vec<Job>) {
    let mut sizes = Vec::with_capacity(jobs.len());
    let mut flat = Vec::new();
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        sizes.push(job.intakes.len());
        flat.extend(job.intakes);
        replies.push(job.reply);
    }
    match sink.commit_flat(&sizes, &flat).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A session that gave up (its deadline passed) no longer listens; its input
                // is committed all the same and a retry finds it as a duplicate.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if replies.len() == 1 => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(_) => {
            let mut start = 0;
            for (reply, size) in replies.into_iter().zip(sizes) {
                let own = &flat[start..start + size];
                start += size;
                let result = sink
                    .commit_flat(&[size], own)
                    .await
                    .and_then(|mut o| o.pop().ok_or_else(no_outcome));
                let _ = reply.send(result);
            }
        }
    }
}

fn no_outcome() -> SinkError {
    SinkError("the store gave no outcome".to_owned())
}
