//! Delivery of committed replies: in order per member, and (in `gymtriage run`) outside the
//! update handlers, so that a reply waiting for Telegram's rate limits never holds up the
//! next update. The replies are in the store's outbox before they get here, so a crash at any
//! point loses none of them: whatever was not confirmed is sent again after a restart.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::store::{MemberKey, Store};

/// Some deliveries, run in order.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How often confirmed edits are removed from the outbox in `run` mode.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

pub struct Outbox {
    pub store: Arc<dyn Store>,
    /// Deliver on per-chat tasks (the bot) rather than inside the handler (handler tests).
    background: bool,
    /// The delivery queue of every member with deliveries under way. Per member, not per
    /// chat: in a group, one member's outcome waiting for the group's rate limit must not
    /// hold up the others' next questions.
    queues: Mutex<HashMap<MemberKey, mpsc::UnboundedSender<Job>>>,
    /// Outbox entries Telegram confirmed whose removal is batched (see [`Outbox::confirmed`]).
    acks: Mutex<Vec<i64>>,
}

impl Outbox {
    /// With `background`, jobs run on per-member tasks and confirmations of edits are removed
    /// from the store in batches (call [`Outbox::flush`] every [`FLUSH_EVERY`]); without it,
    /// [`Outbox::submit`] runs the job to its end and every confirmation is written at once.
    pub fn new(store: Arc<dyn Store>, background: bool) -> Arc<Outbox> {
        Arc::new(Outbox {
            store,
            background,
            queues: Mutex::new(HashMap::new()),
            acks: Mutex::new(Vec::new()),
        })
    }

    /// Runs `job` after every job submitted before for `member`.
    pub async fn submit(self: &Arc<Self>, member: MemberKey, job: Job) {
        if !self.background {
            return job.await;
        }
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let job = match queues.get(&member) {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, mut jobs) = mpsc::unbounded_channel();
        // Cannot fail: `jobs` is right here.
        let _ = queue.send(job);
        queues.insert(member, queue);
        drop(queues);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                while let Ok(job) = jobs.try_recv() {
                    job.await;
                }
                // Senders send while holding the lock: checked under it, an empty queue stays
                // empty until it is removed, and the next job starts a new task.
                let mut queues = this.queues.lock().unwrap_or_else(|e| e.into_inner());
                if jobs.is_empty() {
                    queues.remove(&member);
                    return;
                }
            }
        });
    }

    /// Members with deliveries under way (for tests and shutdown).
    pub fn busy(&self) -> usize {
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Removes a delivered (or undeliverable) entry from the outbox. With `now` (a sent
    /// message: sending it again would show it twice) it is removed before this returns;
    /// otherwise (an edit: doing it again after a crash changes nothing) in the next batch.
    pub async fn confirmed(&self, id: i64, now: bool) {
        if self.background && !now {
            self.acks.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            return;
        }
        if self.store.delivered(&[id]).await.is_err() {
            log::error!("could not mark an outbox entry as delivered");
        }
    }

    /// Removes the batched confirmations from the outbox.
    pub async fn flush(&self) {
        let ids = std::mem::take(&mut *self.acks.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return;
        }
        if self.store.delivered(&ids).await.is_err() {
            log::error!("could not mark {} outbox entries as delivered", ids.len());
            // Kept for the next flush; sending them again would only repeat edits.
            self.acks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::store::{Effect, MemberKey, SqliteStore};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn store() -> Arc<dyn Store> {
        Arc::new(SqliteStore::in_memory().expect("in-memory store"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_of_one_member_run_in_order_and_members_do_not_wait_for_each_other() {
        let outbox = Outbox::new(store(), true);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let (one, two) = (
            MemberKey { chat: -1, user: 1 },
            MemberKey { chat: -1, user: 2 },
        );
        // Member 1's first job waits until member 2's job (same group) has run.
        let l = log.clone();
        outbox
            .submit(
                one,
                Box::pin(async move {
                    let _ = wait.await;
                    l.lock().unwrap().push("1a");
                }),
            )
            .await;
        for name in ["1b", "1c"] {
            let l = log.clone();
            outbox
                .submit(one, Box::pin(async move { l.lock().unwrap().push(name) }))
                .await;
        }
        let l = log.clone();
        outbox
            .submit(
                two,
                Box::pin(async move {
                    l.lock().unwrap().push("2");
                    let _ = release.send(());
                }),
            )
            .await;
        for _ in 0..200 {
            if outbox.busy() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(outbox.busy(), 0, "idle queues go away");
        assert_eq!(*log.lock().unwrap(), vec!["2", "1a", "1b", "1c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_jobs_submitted_while_the_queue_drains_all_run() {
        let outbox = Outbox::new(store(), true);
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..2000 {
            let r = ran.clone();
            outbox
                .submit(
                    MemberKey {
                        chat: -1,
                        user: i % 3,
                    },
                    Box::pin(async move {
                        r.fetch_add(1, Ordering::SeqCst);
                    }),
                )
                .await;
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for _ in 0..400 {
            if ran.load(Ordering::SeqCst) == 2000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2000);
    }

    #[tokio::test]
    async fn edits_leave_the_outbox_at_the_next_flush_and_messages_at_once() {
        let store = store();
        let outbox = Outbox::new(store.clone(), true);
        let key = MemberKey { chat: 5, user: 5 };
        let edit = Effect::ClearButtons {
            chat: 5,
            message_id: 1,
        };
        let ids = store
            .commit_if(key, 0, None, &[edit.clone(), edit])
            .await
            .unwrap()
            .unwrap();
        outbox.confirmed(ids[0], false).await;
        outbox.confirmed(ids[1], true).await;
        let left: Vec<i64> = store
            .pending()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(left, vec![ids[0]], "the message is gone, the edit waits");
        outbox.flush().await;
        assert!(store.pending().await.unwrap().is_empty());
        let inline = Outbox::new(store.clone(), false);
        let more = store
            .commit_if(
                key,
                0,
                None,
                &[Effect::ClearButtons {
                    chat: 5,
                    message_id: 2,
                }],
            )
            .await
            .unwrap()
            .unwrap();
        inline.confirmed(more[0], false).await;
        assert!(store.pending().await.unwrap().is_empty(), "inline: at once");
    }
}
