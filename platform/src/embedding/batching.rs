//! Micro-batching: coalesces small concurrent `embed` calls into one batch.
//!
//! Each HTTP request typically embeds a single memory. Run one at a time, a
//! transformer spends most of its time on per-call overhead; run as one batch,
//! many texts cost little more than one. [`BatchingEmbedder`] queues small
//! calls on an mpsc channel; a background task takes whatever is waiting (up to
//! `max_batch` texts), runs a single inner `embed`, and answers every caller
//! through its own oneshot. Under no load a call is embedded immediately, so
//! there is no added latency; under load batches form naturally while the
//! previous batch is being computed. With several passes allowed at once (see
//! [`super::threads`]), a batch forms whenever one of them is free, so up to that
//! many batches are computed side by side.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Embedder, EmbeddingError};

/// Texts per inner call; matches the MiniLM sub-batch size.
pub const DEFAULT_MAX_BATCH: usize = 32;

/// Queued calls per batch slot before callers wait (backpressure instead of
/// unbounded memory growth when requests arrive faster than inference).
const QUEUE_BATCHES: usize = 32;

type Reply = Result<Vec<Vec<f32>>, EmbeddingError>;

/// One caller's texts and where to send their vectors.
struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Reply>,
}

/// Wraps an [`Embedder`] so concurrent small calls share batched inference.
/// Clones share one queue and worker; the worker stops once every clone is
/// dropped and the queue is drained.
pub struct BatchingEmbedder<E: Embedder> {
    inner: Arc<E>,
    queue: mpsc::Sender<Job>,
    max_batch: usize,
}

impl<E: Embedder> Clone for BatchingEmbedder<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            queue: self.queue.clone(),
            max_batch: self.max_batch,
        }
    }
}

impl<E: Embedder> BatchingEmbedder<E> {
    /// Starts the batching worker on the current tokio runtime; fails outside one.
    /// `max_batch` (minimum 1) caps the texts per inner call; `passes` (minimum 1) inner calls
    /// run at the same time.
    pub fn new(inner: E, max_batch: usize, passes: usize) -> Result<Self, EmbeddingError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|err| {
            EmbeddingError::Unavailable(format!("batching needs a tokio runtime: {err}"))
        })?;
        let max_batch = max_batch.max(1);
        let inner = Arc::new(inner);
        let (queue, jobs) = mpsc::channel(max_batch * QUEUE_BATCHES);
        runtime.spawn(run_worker(
            Arc::clone(&inner),
            jobs,
            max_batch,
            passes.max(1),
        ));
        Ok(Self {
            inner,
            queue,
            max_batch,
        })
    }

    /// The wrapped embedder.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

#[async_trait]
impl<E: Embedder> Embedder for BatchingEmbedder<E> {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A call that fills a batch on its own gains nothing from queueing.
        if texts.len() >= self.max_batch {
            return self.inner.embed(texts).await;
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { texts, reply })
            .await
            .map_err(|_| worker_gone())?;
        answer.await.map_err(|_| worker_gone())?
    }
}

fn worker_gone() -> EmbeddingError {
    EmbeddingError::Unavailable("embedding batch worker has stopped".into())
}

/// Serves batches until every sender is dropped and the queue is empty; batches already
/// started finish on their own.
async fn run_worker<E: Embedder>(
    inner: Arc<E>,
    mut jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    passes: usize,
) {
    let free_passes = Arc::new(Semaphore::new(passes));
    // A job that did not fit into the previous batch opens the next one.
    let mut carried: Option<Job> = None;
    loop {
        // A batch forms only once a pass can take it: callers arriving meanwhile join it.
        let Ok(pass) = Arc::clone(&free_passes).acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(job) => job,
            // Parks the task until a caller arrives: no polling while idle.
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let (batch, overflow) = fill_batch(first, &mut jobs, max_batch);
        carried = overflow;
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            run_batch(inner.as_ref(), batch).await;
            drop(pass);
        });
    }
}

/// Adds already-waiting jobs to `first` without waiting for more, stopping at
/// `max_batch` texts; returns the batch and a job that would have overflowed it.
fn fill_batch(
    first: Job,
    jobs: &mut mpsc::Receiver<Job>,
    max_batch: usize,
) -> (Vec<Job>, Option<Job>) {
    let mut size = first.texts.len();
    let mut batch = vec![first];
    while size < max_batch {
        let Ok(job) = jobs.try_recv() else {
            break;
        };
        if size + job.texts.len() > max_batch {
            return (batch, Some(job));
        }
        size += job.texts.len();
        batch.push(job);
    }
    (batch, None)
}

/// Embeds all texts of `batch` in one inner call and answers each caller.
async fn run_batch<E: Embedder>(inner: &E, mut batch: Vec<Job>) {
    // Callers that gave up (e.g. a cancelled request) need no inference.
    batch.retain(|job| !job.reply.is_closed());
    if batch.is_empty() {
        return;
    }
    let counts: Vec<usize> = batch.iter().map(|job| job.texts.len()).collect();
    let texts: Vec<String> = batch
        .iter_mut()
        .flat_map(|job| std::mem::take(&mut job.texts))
        .collect();
    let expected = texts.len();
    match inner.embed(texts).await {
        Ok(vectors) if vectors.len() == expected => answer_each(batch, &counts, vectors),
        Ok(vectors) => fail_each(
            batch,
            &EmbeddingError::Inference(format!(
                "embedder returned {} vectors for {expected} texts",
                vectors.len()
            )),
        ),
        Err(err) => fail_each(batch, &err),
    }
}

/// Hands each caller its slice of the batch's vectors, in order.
fn answer_each(batch: Vec<Job>, counts: &[usize], vectors: Vec<Vec<f32>>) {
    let mut vectors = vectors.into_iter();
    for (job, &count) in batch.into_iter().zip(counts) {
        let own: Vec<Vec<f32>> = vectors.by_ref().take(count).collect();
        // A caller that went away meanwhile simply misses its answer.
        let _ = job.reply.send(Ok(own));
    }
}

fn fail_each(batch: Vec<Job>, err: &EmbeddingError) {
    for job in batch {
        let _ = job.reply.send(Err(err.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::minilm::MiniLmEmbedder;
    use crate::embedding::test_support::{cosine, model};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Passes through to the real model, recording the size of every call.
    #[derive(Clone, Default)]
    struct CallLog(Arc<Mutex<Vec<usize>>>);

    impl CallLog {
        fn sizes(&self) -> Vec<usize> {
            self.0.lock().expect("log lock").clone()
        }
    }

    struct Counting {
        model: MiniLmEmbedder,
        log: CallLog,
    }

    #[async_trait]
    impl Embedder for Counting {
        fn dimension(&self) -> usize {
            self.model.dimension()
        }

        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            self.log.0.lock().expect("log lock").push(texts.len());
            self.model.embed(texts).await
        }
    }

    fn sentences(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("Memory {i}: the user mentioned topic number {}.", i * 3))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_single_calls_are_batched_and_match_direct_calls() {
        let log = CallLog::default();
        let batching = BatchingEmbedder::new(
            Counting {
                model: model(),
                log: log.clone(),
            },
            DEFAULT_MAX_BATCH,
            1,
        )
        .expect("runtime present");
        let texts = sentences(20);

        let handles: Vec<_> = texts
            .iter()
            .map(|text| {
                let batching = batching.clone();
                let text = text.clone();
                tokio::spawn(async move { batching.embed(vec![text]).await })
            })
            .collect();
        let mut batched = Vec::new();
        for handle in handles {
            let mut vectors = handle.await.expect("task").expect("embeds");
            assert_eq!(vectors.len(), 1);
            batched.push(vectors.remove(0));
        }

        let sizes = log.sizes();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.len() < 20, "no coalescing happened: {sizes:?}");
        println!("inner call sizes: {sizes:?}");

        let model = model();
        for (text, vector) in texts.iter().zip(&batched) {
            let direct = model.embed(vec![text.clone()]).await.expect("embeds");
            let similarity = cosine(vector, &direct[0]);
            assert!(similarity > 0.9999, "{text:?}: cosine {similarity}");
        }
    }

    #[tokio::test]
    async fn multi_text_calls_keep_their_own_vectors() {
        let batching = BatchingEmbedder::new(model(), 4, 1).expect("runtime present");
        let (a, b) = (sentences(3), vec!["A man is eating food.".to_string()]);
        let (va, vb) = tokio::join!(batching.embed(a.clone()), batching.embed(b.clone()));
        let (va, vb) = (va.expect("embeds"), vb.expect("embeds"));
        assert_eq!((va.len(), vb.len()), (3, 1));
        let direct = model().embed([a, b].concat()).await.expect("embeds");
        for (got, want) in va.iter().chain(&vb).zip(&direct) {
            assert!(cosine(got, want) > 0.9999);
        }
    }

    /// Fails every call: stands in for a broken provider to check error fan-out.
    struct Failing(AtomicUsize);

    #[async_trait]
    impl Embedder for Failing {
        fn dimension(&self) -> usize {
            384
        }

        async fn embed(&self, _texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(EmbeddingError::Inference("boom".into()))
        }
    }

    #[tokio::test]
    async fn errors_reach_every_caller_of_the_batch() {
        let batching =
            BatchingEmbedder::new(Failing(AtomicUsize::new(0)), 8, 1).expect("runtime present");
        let calls = (0..5).map(|i| batching.embed(vec![format!("text {i}")]));
        let results = futures::future::join_all(calls).await;
        for result in results {
            assert!(matches!(result, Err(EmbeddingError::Inference(ref m)) if m == "boom"));
        }
        // All five were queued before the worker ran, so they shared one call.
        assert_eq!(batching.inner().0.load(Ordering::SeqCst), 1);
    }

    /// Holds a token so the test can see when the worker lets go of the inner embedder.
    struct Tracked {
        _token: Arc<()>,
    }

    #[async_trait]
    impl Embedder for Tracked {
        fn dimension(&self) -> usize {
            384
        }

        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            Ok(vec![vec![0.0; 384]; texts.len()])
        }
    }

    #[tokio::test]
    async fn dropping_the_wrapper_stops_the_worker() {
        let token = Arc::new(());
        let batching = BatchingEmbedder::new(
            Tracked {
                _token: Arc::clone(&token),
            },
            8,
            2,
        )
        .expect("runtime present");
        batching.embed(vec!["x".into()]).await.expect("embeds");
        drop(batching);
        tokio::time::timeout(Duration::from_secs(5), async {
            while Arc::strong_count(&token) > 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("worker released the inner embedder after the wrapper was dropped");
    }

    #[test]
    fn new_outside_a_runtime_is_an_error() {
        let result = BatchingEmbedder::new(
            Tracked {
                _token: Arc::new(()),
            },
            8,
            1,
        );
        assert!(matches!(result, Err(EmbeddingError::Unavailable(_))));
    }

    /// Records how many calls ran at the same time. Until `wanted` calls have run together, each
    /// call waits (up to `patience`) for others to join it, so overlap shows whenever the
    /// wrapper allows it.
    struct Overlapping {
        running: AtomicUsize,
        most: AtomicUsize,
        wanted: usize,
        patience: Duration,
    }

    impl Overlapping {
        fn new(wanted: usize, patience: Duration) -> Self {
            Self {
                running: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
                wanted,
                patience,
            }
        }
    }

    #[async_trait]
    impl Embedder for Overlapping {
        fn dimension(&self) -> usize {
            384
        }

        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let deadline = tokio::time::Instant::now() + self.patience;
            // Once `wanted` calls have overlapped, nobody needs to wait any more.
            while self.most.load(Ordering::SeqCst) < self.wanted
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(vec![vec![0.0; 384]; texts.len()])
        }
    }

    /// Most batches that ran together when twelve callers came at once (batches of two: a call
    /// of a whole batch would skip the queue), each batch waiting up to `patience` for `wanted`
    /// batches to run with it.
    async fn most_batches_at_once(passes: usize, wanted: usize, patience: Duration) -> usize {
        let batching = BatchingEmbedder::new(Overlapping::new(wanted, patience), 2, passes)
            .expect("runtime present");
        let calls = (0..12).map(|i| batching.embed(vec![format!("text {i}")]));
        for result in futures::future::join_all(calls).await {
            assert_eq!(result.expect("embeds").len(), 1);
        }
        batching.inner().most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_run_side_by_side_up_to_the_passes_allowed() {
        let long = Duration::from_secs(5);
        assert_eq!(most_batches_at_once(2, 2, long).await, 2);
        assert_eq!(most_batches_at_once(3, 3, long).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_batches_run_at_once_than_passes_allowed() {
        // Each batch waits a while for partners that must never come.
        let short = Duration::from_millis(50);
        assert_eq!(most_batches_at_once(1, 2, short).await, 1);
        assert_eq!(most_batches_at_once(2, 3, short).await, 2);
    }
}
