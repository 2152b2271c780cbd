//! Coalesces concurrent upserts into one request per space.
//!
//! Each new memory's vector is written on its own, but writers come in waves: the embedding
//! batcher answers a whole batch of requests at once, and each of them then upserts one point.
//! A remote store such as Milvus spends most of an upsert on per-request work (scheduling,
//! timestamps, routing to a channel), so [`CoalescingWrites`] queues upserts; a worker takes
//! whatever is waiting, writes each space's points in one request, and answers every caller.
//! Under no load an upsert is written at once, so there is no added latency. Every other
//! operation goes straight to the wrapped store.
//!
//! Points keep their queue order within a request, so a later write of the same memory wins,
//! as it would have one request at a time. A request the store rejects (a malformed point, say)
//! is retried one caller at a time, so one caller's bad point never fails another's write.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{ScoredId, VectorPoint, VectorQuery, VectorSpace, VectorStore, VectorStoreError};

/// Most upserts written together: bounds one request's size.
const MAX_COALESCED: usize = 128;
/// Upserts that may wait for the worker before callers wait to queue (backpressure).
const QUEUE_LENGTH: usize = 1024;

type Reply = Result<(), VectorStoreError>;

/// One caller's points and where to send the outcome.
struct Upsert {
    space: VectorSpace,
    points: Vec<VectorPoint>,
    reply: oneshot::Sender<Reply>,
}

/// Wraps a [`VectorStore`] so concurrent upserts share requests.
pub struct CoalescingWrites<S: VectorStore> {
    inner: Arc<S>,
    queue: mpsc::Sender<Upsert>,
}

impl<S: VectorStore> CoalescingWrites<S> {
    /// Starts the worker on the current tokio runtime; fails outside one.
    pub fn new(inner: S) -> Result<Self, VectorStoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|error| {
            VectorStoreError::Unavailable(format!(
                "coalescing writes needs a tokio runtime: {error}"
            ))
        })?;
        let inner = Arc::new(inner);
        let (queue, upserts) = mpsc::channel(QUEUE_LENGTH);
        runtime.spawn(run_worker(Arc::clone(&inner), upserts));
        Ok(Self { inner, queue })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn worker_gone() -> VectorStoreError {
    VectorStoreError::Unavailable("the vector write worker has stopped".into())
}

/// Writes waiting upserts until every sender is dropped and the queue is empty.
async fn run_worker<S: VectorStore>(inner: Arc<S>, mut upserts: mpsc::Receiver<Upsert>) {
    let mut waiting = Vec::with_capacity(MAX_COALESCED);
    // Parks until a caller arrives, then takes whatever else is already queued.
    while upserts.recv_many(&mut waiting, MAX_COALESCED).await > 0 {
        write_together(inner.as_ref(), std::mem::take(&mut waiting)).await;
    }
}

/// Writes the upserts, one request per space (spaces written concurrently), and answers each.
async fn write_together<S: VectorStore>(inner: &S, upserts: Vec<Upsert>) {
    // Callers that gave up (a cancelled request) need no write.
    let mut groups: Vec<(VectorSpace, Vec<Upsert>)> = Vec::new();
    for upsert in upserts.into_iter().filter(|u| !u.reply.is_closed()) {
        match groups.iter_mut().find(|(space, _)| *space == upsert.space) {
            Some((_, members)) => members.push(upsert),
            None => groups.push((upsert.space.clone(), vec![upsert])),
        }
    }
    futures::future::join_all(
        groups
            .into_iter()
            .map(|(space, members)| write_space(inner, space, members)),
    )
    .await;
}

async fn write_space<S: VectorStore>(inner: &S, space: VectorSpace, members: Vec<Upsert>) {
    if members.len() == 1 {
        return write_each_alone(inner, &space, members).await;
    }
    let points: Vec<VectorPoint> = members
        .iter()
        .flat_map(|member| member.points.iter().cloned())
        .collect();
    match inner.upsert(&space, &points).await {
        Err(
            error @ (VectorStoreError::Rejected(_) | VectorStoreError::DimensionMismatch { .. }),
        ) => {
            tracing::debug!(%error, callers = members.len(), "coalesced upsert rejected; writing each caller's points alone");
            write_each_alone(inner, &space, members).await;
        }
        outcome => {
            for member in members {
                let _ = member.reply.send(outcome.clone());
            }
        }
    }
}

/// Writes each caller's points in a request of its own and answers it.
async fn write_each_alone<S: VectorStore>(inner: &S, space: &VectorSpace, members: Vec<Upsert>) {
    for member in members {
        let outcome = inner.upsert(space, &member.points).await;
        let _ = member.reply.send(outcome);
    }
}

#[async_trait]
impl<S: VectorStore> VectorStore for CoalescingWrites<S> {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn ensure_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        self.inner.ensure_space(space).await
    }

    async fn upsert(
        &self,
        space: &VectorSpace,
        points: &[VectorPoint],
    ) -> Result<(), VectorStoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Upsert {
                space: space.clone(),
                points: points.to_vec(),
                reply,
            })
            .await
            .map_err(|_| worker_gone())?;
        outcome.await.map_err(|_| worker_gone())?
    }

    async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        self.inner.delete(space, ids).await
    }

    async fn search(
        &self,
        space: &VectorSpace,
        query: VectorQuery<'_>,
    ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError> {
        self.inner.search(space, query).await
    }

    async fn count(&self, space: &VectorSpace) -> Result<u64, VectorStoreError> {
        self.inner.count(space).await
    }

    async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        self.inner.drop_space(space).await
    }

    async fn health(&self) -> Result<(), VectorStoreError> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use memoryc_crds::layout::{Isolation, TenantName};

    use super::*;
    use crate::stores::vector::conformance::{point, unit_vector};
    use crate::stores::vector::embedded::EmbeddedVectorStore;
    use crate::stores::vector::{Nearest, VectorFilter};

    /// The real embedded store, recording how many points each upsert request carried.
    struct RecordedStore {
        store: EmbeddedVectorStore,
        requests: Arc<Mutex<Vec<usize>>>,
    }

    #[async_trait]
    impl VectorStore for RecordedStore {
        fn backend_name(&self) -> &'static str {
            self.store.backend_name()
        }
        async fn ensure_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
            self.store.ensure_space(space).await
        }
        async fn upsert(
            &self,
            space: &VectorSpace,
            points: &[VectorPoint],
        ) -> Result<(), VectorStoreError> {
            self.requests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(points.len());
            self.store.upsert(space, points).await
        }
        async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
            self.store.delete(space, ids).await
        }
        async fn search(
            &self,
            space: &VectorSpace,
            query: VectorQuery<'_>,
        ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError> {
            self.store.search(space, query).await
        }
        async fn count(&self, space: &VectorSpace) -> Result<u64, VectorStoreError> {
            self.store.count(space).await
        }
        async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
            self.store.drop_space(space).await
        }
        async fn health(&self) -> Result<(), VectorStoreError> {
            self.store.health().await
        }
    }

    fn space(name: &str) -> VectorSpace {
        VectorSpace {
            tenant: TenantName::parse(name).expect("tenant name"),
            isolation: Isolation::Shared,
        }
    }

    fn recorded(
        root: &tempfile::TempDir,
    ) -> (CoalescingWrites<RecordedStore>, Arc<Mutex<Vec<usize>>>) {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let store = RecordedStore {
            store: EmbeddedVectorStore::open(root.path().to_path_buf()).expect("store opens"),
            requests: Arc::clone(&requests),
        };
        (CoalescingWrites::new(store).expect("runtime"), requests)
    }

    #[tokio::test]
    async fn concurrent_upserts_share_requests_and_all_land() {
        let root = tempfile::tempdir().expect("tempdir");
        let (store, requests) = recorded(&root);
        let (a, b) = (space("t-coalesce-a"), space("t-coalesce-b"));
        store.ensure_space(&a).await.expect("space a");
        store.ensure_space(&b).await.expect("space b");
        let user = Uuid::new_v4();
        let points: Vec<(VectorSpace, VectorPoint)> = (0..64)
            .map(|seed| {
                let space = if seed % 2 == 0 { a.clone() } else { b.clone() };
                (space, point(seed, "TECHNICAL", user))
            })
            .collect();
        let writes = points
            .iter()
            .map(|(space, point)| store.upsert(space, std::slice::from_ref(point)));
        for outcome in futures::future::join_all(writes).await {
            outcome.expect("upsert");
        }
        assert_eq!(store.count(&a).await.expect("count a"), 32);
        assert_eq!(store.count(&b).await.expect("count b"), 32);
        // Each point landed in its own tenant's space and is found there.
        for (space, point) in &points {
            let hits = store
                .nearest(space, &point.vector, 1, &VectorFilter::default())
                .await
                .expect("search");
            assert_eq!(hits.first().map(|h| h.memory_id), Some(point.memory_id));
        }
        let requests = requests.lock().expect("log").clone();
        assert_eq!(
            requests.iter().sum::<usize>(),
            64,
            "every point written once"
        );
        assert!(
            requests.len() < 64,
            "64 concurrent upserts took {} requests",
            requests.len()
        );
    }

    #[tokio::test]
    async fn a_rejected_point_fails_only_its_own_caller() {
        let root = tempfile::tempdir().expect("tempdir");
        let (store, _) = recorded(&root);
        let a = space("t-coalesce-rejected");
        store.ensure_space(&a).await.expect("space");
        let user = Uuid::new_v4();
        let good: Vec<VectorPoint> = (0..8).map(|seed| point(seed, "TECHNICAL", user)).collect();
        let mut bad = point(99, "TECHNICAL", user);
        bad.vector.truncate(10);
        let mut writes: Vec<_> = good
            .iter()
            .map(|p| store.upsert(&a, std::slice::from_ref(p)))
            .collect();
        writes.insert(4, store.upsert(&a, std::slice::from_ref(&bad)));
        let outcomes = futures::future::join_all(writes).await;
        for (index, outcome) in outcomes.iter().enumerate() {
            if index == 4 {
                assert!(
                    matches!(outcome, Err(VectorStoreError::DimensionMismatch { .. })),
                    "{outcome:?}"
                );
            } else {
                assert!(outcome.is_ok(), "caller {index}: {outcome:?}");
            }
        }
        assert_eq!(store.count(&a).await.expect("count"), 8);
    }

    #[tokio::test]
    async fn a_later_write_of_the_same_memory_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        let (store, _) = recorded(&root);
        let a = space("t-coalesce-order");
        store.ensure_space(&a).await.expect("space");
        let first = point(1, "TECHNICAL", Uuid::new_v4());
        let second = VectorPoint {
            vector: unit_vector(2),
            ..first.clone()
        };
        let (one, two) = futures::join!(
            store.upsert(&a, std::slice::from_ref(&first)),
            store.upsert(&a, std::slice::from_ref(&second))
        );
        one.expect("first");
        two.expect("second");
        assert_eq!(store.count(&a).await.expect("count"), 1);
        let hits = store
            .nearest(&a, &unit_vector(2), 1, &VectorFilter::default())
            .await
            .expect("search");
        assert_eq!(hits.first().map(|h| h.memory_id), Some(first.memory_id));
        assert!(hits[0].score > 0.999, "the second vector is the stored one");
    }
}
