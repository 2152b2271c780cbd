//! Group commit: rows that callers write at the same time go to the database as one statement.
//!
//! Each caller still waits until its own row is stored and gets that write's result, so nothing
//! changes for it but the cost. A worker takes whatever rows are waiting (up to a group's
//! size), writes them together and answers every caller. With no load a row is written at once,
//! alone; under load, rows that arrive while one group is being written form the next.

use std::future::Future;
use std::sync::Arc;

use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Queues rows of type `T` for a write function that stores many at once.
pub struct GroupWriter<T> {
    queue: mpsc::Sender<(T, Reply)>,
}

impl<T: Send + 'static> GroupWriter<T> {
    /// Starts the worker on the current tokio runtime; `write` stores a group of at most
    /// `max_group` rows (minimum 1) in one statement. The worker stops once the writer is
    /// dropped and its queue is drained.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does; the platform builds its stores inside one.
    pub fn start<F, Fut>(max_group: usize, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let max_group = max_group.max(1);
        let (queue, rows) = mpsc::channel(max_group * 4);
        tokio::spawn(run_worker(rows, max_group, Arc::new(write)));
        Self { queue }
    }

    /// Stores `row` with whatever rows are written at the same time; returns once it is stored.
    pub async fn write(&self, row: T) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the group writer has stopped".into());
        self.queue.send((row, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run_worker<T, F, Fut>(
    mut rows: mpsc::Receiver<(T, Reply)>,
    max_group: usize,
    write: Arc<F>,
) where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    while let Some(first) = rows.recv().await {
        let mut group = vec![first];
        while group.len() < max_group {
            match rows.try_recv() {
                Ok(row) => group.push(row),
                Err(_) => break,
            }
        }
        let (group, replies): (Vec<T>, Vec<Reply>) = group.into_iter().unzip();
        let result = write(group).await;
        for reply in replies {
            // A caller that went away meanwhile simply misses its answer.
            let _ = reply.send(result.as_ref().map(|_| ()).map_err(shared));
        }
    }
}

/// The group's error, for each of its callers.
fn shared(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Conflict(message) => StoreError::Conflict(message.clone()),
        StoreError::UnknownTenant(tenant) => StoreError::UnknownTenant(tenant.clone()),
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Database(error) => StoreError::Database(DbErr::Custom(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records the size of every group it is asked to write, after a pause that lets rows pile up.
    fn recording(groups: Arc<Mutex<Vec<Vec<u32>>>>) -> GroupWriter<u32> {
        GroupWriter::start(8, move |group: Vec<u32>| {
            let groups = Arc::clone(&groups);
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                groups.lock().expect("lock").push(group);
                Ok(())
            }
        })
    }

    #[tokio::test]
    async fn rows_written_together_share_groups_and_none_is_lost() {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let writer = recording(Arc::clone(&groups));
        let writes = (0..20).map(|row| writer.write(row));
        for result in futures::future::join_all(writes).await {
            result.expect("stored");
        }
        let groups = groups.lock().expect("lock").clone();
        let mut rows: Vec<u32> = groups.iter().flatten().copied().collect();
        rows.sort_unstable();
        assert_eq!(rows, (0..20).collect::<Vec<_>>());
        assert!(groups.len() < 20, "rows were not grouped: {groups:?}");
        assert!(groups.iter().all(|group| group.len() <= 8), "{groups:?}");
    }

    #[tokio::test]
    async fn a_lone_row_is_written_at_once() {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let writer = recording(Arc::clone(&groups));
        tokio::time::timeout(Duration::from_secs(5), writer.write(7))
            .await
            .expect("not held back")
            .expect("stored");
        assert_eq!(*groups.lock().expect("lock"), vec![vec![7]]);
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_callers() {
        let writer = GroupWriter::start(8, |group: Vec<u32>| async move {
            if group.contains(&3) {
                Err(StoreError::Conflict("row 3 is refused".into()))
            } else {
                Ok(())
            }
        });
        let results = futures::future::join_all((0..6).map(|row| writer.write(row))).await;
        // The caller of row 3 hears of its group's failure.
        assert!(matches!(&results[3], Err(StoreError::Conflict(m)) if m == "row 3 is refused"));
        // Written alone later, a row is not affected by an earlier group's failure.
        writer.write(4).await.expect("stored");
    }
}
