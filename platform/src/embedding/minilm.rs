//! all-MiniLM-L6-v2 run locally with candle.
//!
//! Reproduces the sentence-transformers recipe for this model so that vectors
//! are interchangeable with ones computed in Python:
//! WordPiece tokenisation truncated at 256 tokens (`max_seq_length`), padding
//! to the longest sequence of a batch, a BERT forward pass with zero
//! `token_type_ids`, mean pooling over the attention mask, L2 normalisation.
//!
//! A sub-batch of one text (a search query, mostly) skips candle's batched pass and goes
//! through [`SequenceEncoder`], a forward pass written for one unpadded sequence: at a few dozen
//! tokens candle's matrix multiplications spend as long re-packing each weight matrix as
//! multiplying with it, and the pass is bound by streaming the weights, which that encoder
//! keeps in half precision. Both passes compute the same model and are tested against the same
//! reference vectors (the single-sequence pass's smallest cosine is 0.999999).
//!
//! Threading: candle 0.11 parallelises each batched pass itself. Matmuls (gemm) and softmax
//! fan out over the global rayon pool; elementwise ops use candle's own spinning "barrier pool",
//! which serialises concurrent callers behind a mutex. Both take their size from
//! `RAYON_NUM_THREADS` (or `CANDLE_NUM_THREADS`), which the binary sets from its
//! [`super::threads::InferencePlan`]: by default one single-threaded pass per CPU, several passes
//! at once, as that measured faster than one pass split over the cores. Calls run on tokio's
//! blocking pool behind a semaphore of that many passes. The single-sequence pass runs on a
//! rayon pool of its own, one thread per CPU, so a search query on an idle machine still uses
//! every core whatever the batched passes are set to.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use memoryc_sequence_encoder::SequenceEncoder;
use tokenizers::{
    Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, pad_encodings,
};
use tokio::sync::Semaphore;

use super::threads::available_cpus;
use super::{Embedder, EmbeddingError};

/// sentence-transformers' `max_seq_length` for this model; the tokenizer.json
/// shipped with it says 128, which would silently cut long memories short.
pub const MAX_SEQ_LEN: usize = 256;

/// Most texts per forward pass; short memories are embedded this many at a time.
pub const SUB_BATCH_SIZE: usize = 32;

/// Most padded tokens per forward pass. Attention activations grow with
/// batch × length², so long texts go in smaller sub-batches: this bounds peak
/// memory (8 × 256 tokens ≈ 25 MB of attention scores per layer instead of
/// 100 MB for 32 × 256) and measured ~25% faster on long texts, as the
/// buffers stay small enough for the allocator to reuse instead of mapping
/// and zeroing fresh pages for every op.
pub const SUB_BATCH_TOKENS: usize = 2048;

/// Forward passes allowed to run at the same time unless [`MiniLmEmbedder::with_concurrent_passes`]
/// says otherwise.
const DEFAULT_CONCURRENT_PASSES: usize = 1;

/// candle's variable for how long an idle worker of its elementwise pool spins before it parks.
const SPIN_LIMIT_VARIABLE: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
/// Spins before parking unless the variable says otherwise: a few microseconds. candle's own
/// default (25 000) keeps an idle worker spinning for a large part of a millisecond after every
/// elementwise op, on a core the matrix multiplications, the HTTP handlers and the stores need;
/// under ingest load that spinning took about a fifth of the machine.
pub const DEFAULT_SPIN_LIMIT: u32 = 200;

/// Sets candle's pool to park idle workers after [`DEFAULT_SPIN_LIMIT`] spins, unless
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is already set. candle reads the variable when its pool
/// starts, at the first batched pass.
///
/// # Safety
/// Changes the process environment: call it before any other thread starts (first thing in
/// `main`, before the async runtime), as `std::env::set_var` requires.
pub unsafe fn limit_idle_spinning() {
    if std::env::var_os(SPIN_LIMIT_VARIABLE).is_none() {
        // SAFETY: the caller guarantees no other thread is running yet.
        unsafe { std::env::set_var(SPIN_LIMIT_VARIABLE, DEFAULT_SPIN_LIMIT.to_string()) };
    }
}

/// Mirrors sentence-transformers' clamp so an all-zero row cannot divide by zero.
const NORM_EPSILON: f64 = 1e-12;

/// all-MiniLM-L6-v2 on the CPU. Cheap to clone: clones share one model.
#[derive(Clone)]
pub struct MiniLmEmbedder {
    model: Arc<LoadedModel>,
    passes: Arc<Semaphore>,
    /// The pass a single text takes.
    single_text_pass: SingleTextPass,
}

/// How a single text (a search query, mostly) is embedded: `embedding.single_text_pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SingleTextPass {
    /// The single-sequence encoder (half-precision weights, packed once; see
    /// `docs/decisions/0001-single-sequence-encoder.md`).
    #[default]
    Sequence,
    /// candle's batched BERT, the reference implementation, as batches use.
    Candle,
}

/// Everything needed for inference, immutable after loading.
struct LoadedModel {
    bert: BertModel,
    sequence: SequenceEncoder,
    /// Threads of the single-sequence pass, apart from candle's.
    sequence_threads: rayon::ThreadPool,
    tokenizer: Tokenizer,
    padding: PaddingParams,
    dimension: usize,
}

impl MiniLmEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<Self, EmbeddingError> {
        let model = LoadedModel::load(model_dir).map_err(|reason| EmbeddingError::ModelLoad {
            path: model_dir.display().to_string(),
            reason,
        })?;
        Ok(Self {
            model: Arc::new(model),
            passes: Arc::new(Semaphore::new(DEFAULT_CONCURRENT_PASSES)),
            single_text_pass: SingleTextPass::default(),
        })
    }

    /// The pass single texts take: the single-sequence encoder (default), or candle's batched
    /// pass, the reference implementation, selectable by configuration.
    #[must_use]
    pub fn with_single_text_pass(mut self, pass: SingleTextPass) -> Self {
        self.single_text_pass = pass;
        self
    }

    /// Allows `passes` forward passes at once (minimum 1). Worth raising when candle is limited
    /// to fewer threads than there are cores (see [`super::threads`]).
    #[must_use]
    pub fn with_concurrent_passes(mut self, passes: usize) -> Self {
        self.passes = Arc::new(Semaphore::new(passes.max(1)));
        self
    }
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn dimension(&self) -> usize {
        self.model.dimension
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // The permit moves into the blocking closure: if the caller is dropped,
        // the pass keeps running, and it must keep its slot until it really ends.
        let permit = Arc::clone(&self.passes)
            .acquire_owned()
            .await
            .map_err(|_| EmbeddingError::Unavailable("embedder is shutting down".into()))?;
        let model = Arc::clone(&self.model);
        let single_pass = self.single_text_pass;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            model.embed(&texts, single_pass)
        })
        .await
        .map_err(|err| EmbeddingError::Inference(format!("inference task failed: {err}")))?
    }
}

impl LoadedModel {
    fn load(dir: &Path) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err("not a directory".into());
        }
        let config = read_config(&dir.join("config.json"))?;
        let (tokenizer, padding) = load_tokenizer(&dir.join("tokenizer.json"))?;
        let (bert, sequence) = load_weights(&dir.join("model.safetensors"), &config)?;
        let sequence_threads = rayon::ThreadPoolBuilder::new()
            .num_threads(available_cpus())
            .thread_name(|index| format!("query-pass-{index}"))
            .build()
            .map_err(|err| format!("cannot start the query pass's threads: {err}"))?;
        Ok(Self {
            bert,
            sequence,
            sequence_threads,
            tokenizer,
            padding,
            dimension: config.hidden_size,
        })
    }

    /// Embeds `texts`, returning vectors in input order.
    fn embed(
        &self,
        texts: &[String],
        single_pass: SingleTextPass,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let encodings = self.tokenize(texts)?;
        // Sorting by length keeps similar lengths in one sub-batch, so little
        // compute is spent on padding; `order` maps back to input positions.
        let mut indexed: Vec<(usize, Encoding)> = encodings.into_iter().enumerate().collect();
        indexed.sort_by_key(|(_, encoding)| encoding.len());
        let (order, mut sorted): (Vec<usize>, Vec<Encoding>) = indexed.into_iter().unzip();

        let mut vectors = vec![Vec::new(); texts.len()];
        let (mut rest, mut rest_order) = (sorted.as_mut_slice(), order.as_slice());
        while !rest.is_empty() {
            let len = sub_batch_len(rest);
            let (chunk, tail) = rest.split_at_mut(len);
            let (chunk_order, tail_order) = rest_order.split_at(len);
            let chunk_vectors = self.embed_chunk(chunk, single_pass)?;
            for (vector, &index) in chunk_vectors.into_iter().zip(chunk_order) {
                vectors[index] = vector;
            }
            (rest, rest_order) = (tail, tail_order);
        }
        Ok(vectors)
    }

    /// Tokenises with truncation only; padding happens per sub-batch.
    fn tokenize(&self, texts: &[String]) -> Result<Vec<Encoding>, EmbeddingError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|err| EmbeddingError::Tokenize(err.to_string()))
    }

    /// Pads one sub-batch to its longest member and runs it through the model; a single text
    /// needs no padding and takes the single-sequence pass, unless `single_pass` says candle.
    fn embed_chunk(
        &self,
        chunk: &mut [Encoding],
        single_pass: SingleTextPass,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if let ([single], SingleTextPass::Sequence) = (&*chunk, single_pass) {
            return Ok(vec![self.embed_sequence(single)]);
        }
        self.embed_batch(chunk)
    }

    /// One text through [`SequenceEncoder`]: mean pooling over its tokens, then L2 norm.
    fn embed_sequence(&self, encoding: &Encoding) -> Vec<f32> {
        let mut vector = self
            .sequence_threads
            .install(|| self.sequence.mean_hidden_state(encoding.get_ids()));
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        let norm = norm.max(NORM_EPSILON as f32);
        vector.iter_mut().for_each(|x| *x /= norm);
        vector
    }

    /// The sub-batch through candle's BERT, padded to its longest member.
    fn embed_batch(&self, chunk: &mut [Encoding]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        pad_encodings(chunk, &self.padding)
            .map_err(|err| EmbeddingError::Tokenize(err.to_string()))?;
        self.forward(chunk)
            .map_err(|err| EmbeddingError::Inference(err.to_string()))
    }

    fn forward(&self, chunk: &[Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let input_ids = stack_rows(chunk, Encoding::get_ids)?;
        let attention_mask = stack_rows(chunk, Encoding::get_attention_mask)?;
        // Single-segment input: every token belongs to segment 0, as in sentence-transformers.
        let token_type_ids = input_ids.zeros_like()?;
        let hidden = self
            .bert
            .forward(&input_ids, &token_type_ids, Some(&attention_mask))?;
        let pooled = mean_pool(&hidden, &attention_mask)?;
        l2_normalize(&pooled)?.to_vec2::<f32>()
    }
}

fn read_config(path: &Path) -> Result<Config, String> {
    let raw = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    serde_json::from_str(&raw).map_err(|err| format!("{}: {err}", path.display()))
}

/// Loads the tokenizer with the sentence-transformers settings instead of the
/// file's own (truncate at 128, pad everything to 128).
fn load_tokenizer(path: &Path) -> Result<(Tokenizer, PaddingParams), String> {
    let describe = |err: tokenizers::Error| format!("{}: {err}", path.display());
    let mut tokenizer = Tokenizer::from_file(path).map_err(describe)?;
    let truncation = TruncationParams {
        max_length: MAX_SEQ_LEN,
        ..tokenizer.get_truncation().cloned().unwrap_or_default()
    };
    // Keep the file's pad token and id, but pad only to the longest in a batch.
    let padding = PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..tokenizer.get_padding().cloned().unwrap_or_default()
    };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(describe)?;
    // Padding is applied per sub-batch after sorting by length, not at encode time.
    tokenizer.with_padding(None);
    Ok((tokenizer, padding))
}

fn load_weights(path: &Path, config: &Config) -> Result<(BertModel, SequenceEncoder), String> {
    let describe = |err: candle_core::Error| format!("{}: {err}", path.display());
    // Read into memory rather than mmap: this avoids `unsafe`, and candle copies
    // the CPU tensors out of the file either way.
    let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let weights =
        VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).map_err(describe)?;
    let sequence = SequenceEncoder::load(&weights, config).map_err(describe)?;
    let bert = BertModel::load(weights, config).map_err(describe)?;
    Ok((bert, sequence))
}

/// How many of `sorted` (ascending by length) go into the next sub-batch:
/// up to [`SUB_BATCH_SIZE`] texts and [`SUB_BATCH_TOKENS`] padded tokens, at least one.
fn sub_batch_len(sorted: &[Encoding]) -> usize {
    let mut count = 1;
    // Sorted ascending, so the candidate is the longest so far and sets the padded length.
    while count < sorted.len().min(SUB_BATCH_SIZE)
        && (count + 1) * sorted[count].len() <= SUB_BATCH_TOKENS
    {
        count += 1;
    }
    count
}

/// Builds a `(batch, seq_len)` u32 tensor from equally long (padded) encodings.
fn stack_rows(chunk: &[Encoding], row: fn(&Encoding) -> &[u32]) -> candle_core::Result<Tensor> {
    let seq_len = chunk.first().map_or(0, Encoding::len);
    let flat: Vec<u32> = chunk.iter().flat_map(|e| row(e).iter().copied()).collect();
    Tensor::from_vec(flat, (chunk.len(), seq_len), &Device::Cpu)
}

/// Averages token vectors over real (unmasked) tokens only.
fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = attention_mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    // [CLS] and [SEP] are always present, so the count is ≥ 2; the clamp is belt and braces.
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}

fn l2_normalize(vectors: &Tensor) -> candle_core::Result<Tensor> {
    let norms = vectors
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(NORM_EPSILON, f64::MAX)?;
    vectors.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::batching::{BatchingEmbedder, DEFAULT_MAX_BATCH};
    use crate::embedding::test_support::{cosine, model};
    use serde::Deserialize;
    use std::time::Instant;

    #[derive(Deserialize)]
    struct Fixture {
        items: Vec<FixtureItem>,
    }

    #[derive(Deserialize)]
    struct FixtureItem {
        text: String,
        /// Token count before truncation, including [CLS] and [SEP].
        tokens: usize,
        vector: Vec<f32>,
    }

    fn fixture() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/minilm-l6-v2-reference.json"
        );
        let raw = std::fs::read_to_string(path).expect("reference fixture is readable");
        serde_json::from_str(&raw).expect("reference fixture parses")
    }

    fn texts(fixture: &Fixture) -> Vec<String> {
        fixture.items.iter().map(|item| item.text.clone()).collect()
    }

    /// Asserts every vector matches its reference; returns the lowest cosine.
    fn assert_matches_reference(fixture: &Fixture, vectors: &[Vec<f32>]) -> f32 {
        assert_eq!(vectors.len(), fixture.items.len());
        let mut min = f32::MAX;
        for (item, vector) in fixture.items.iter().zip(vectors) {
            assert_eq!(vector.len(), 384);
            let similarity = cosine(vector, &item.vector);
            assert!(
                similarity >= 0.999,
                "cosine {similarity} for {:?}… ({} tokens)",
                item.text.chars().take(60).collect::<String>(),
                item.tokens
            );
            min = min.min(similarity);
        }
        min
    }

    #[test]
    fn tokenizer_truncates_at_256_and_pads_to_longest() {
        let fixture = fixture();
        let model = model();
        let encodings = model.model.tokenize(&texts(&fixture)).expect("tokenises");
        for (item, encoding) in fixture.items.iter().zip(&encodings) {
            assert_eq!(
                encoding.len(),
                item.tokens.min(MAX_SEQ_LEN),
                "{:?}",
                item.text
            );
        }
        assert!(fixture.items.iter().any(|item| item.tokens > MAX_SEQ_LEN));

        let mut short = model
            .model
            .tokenize(&["a b".into(), "a b c d".into()])
            .expect("tokenises");
        pad_encodings(&mut short, &model.model.padding).expect("pads");
        assert!(
            short.iter().all(|e| e.len() == 6),
            "pads to longest, not to 128"
        );
    }

    #[test]
    fn sub_batches_respect_text_and_token_limits() {
        let model = model();
        let split = |texts: Vec<String>| {
            let mut encodings = model.model.tokenize(&texts).expect("tokenises");
            encodings.sort_by_key(Encoding::len);
            let mut sizes = Vec::new();
            let mut rest = encodings.as_slice();
            while !rest.is_empty() {
                let len = sub_batch_len(rest);
                sizes.push(len);
                rest = &rest[len..];
            }
            sizes
        };
        // Short texts: capped by the text count.
        assert_eq!(split(vec!["short note".into(); 70]), vec![32, 32, 6]);
        // 256-token texts: capped by the token budget (2048 / 256 = 8).
        assert_eq!(split(vec!["word ".repeat(400); 20]), vec![8, 8, 4]);
        // Mixed: the short ones fill a batch, the long one goes on its own.
        let mut mixed = vec!["short note".to_string(); 10];
        mixed.push("word ".repeat(400));
        assert_eq!(split(mixed), vec![10, 1]);
    }

    #[tokio::test]
    async fn matches_reference_vectors_in_one_batch() {
        let fixture = fixture();
        let vectors = model().embed(texts(&fixture)).await.expect("embeds");
        let min = assert_matches_reference(&fixture, &vectors);
        println!(
            "min cosine (one batch): {min:.7} (1 - min = {:e})",
            1.0 - min
        );
    }

    /// `embed` puts the long text in its own sub-batch; this forces every
    /// fixture through one forward pass, so short texts are padded to 256.
    #[test]
    fn matches_reference_vectors_in_one_forward_pass() {
        let fixture = fixture();
        let model = model();
        let mut encodings = model.model.tokenize(&texts(&fixture)).expect("tokenises");
        let vectors = model
            .model
            .embed_chunk(&mut encodings, SingleTextPass::Sequence)
            .expect("embeds");
        assert!(encodings.iter().all(|e| e.len() == MAX_SEQ_LEN));
        let min = assert_matches_reference(&fixture, &vectors);
        println!(
            "min cosine (one forward pass): {min:.7} (1 - min = {:e})",
            1.0 - min
        );
    }

    #[tokio::test]
    async fn matches_reference_vectors_one_at_a_time() {
        let fixture = fixture();
        let model = model();
        let mut vectors = Vec::new();
        for text in texts(&fixture) {
            let mut single = model.embed(vec![text]).await.expect("embeds");
            vectors.push(single.pop().expect("one vector per text"));
        }
        let min = assert_matches_reference(&fixture, &vectors);
        println!(
            "min cosine (one at a time): {min:.7} (1 - min = {:e})",
            1.0 - min
        );
    }

    /// The reference path chosen by configuration: single texts through candle's pass.
    #[tokio::test]
    async fn matches_reference_vectors_one_at_a_time_through_candle() {
        let fixture = fixture();
        let model = model().with_single_text_pass(SingleTextPass::Candle);
        let mut vectors = Vec::new();
        for text in texts(&fixture) {
            let mut single = model.embed(vec![text]).await.expect("embeds");
            vectors.push(single.pop().expect("one vector per text"));
        }
        let min = assert_matches_reference(&fixture, &vectors);
        println!("min cosine (one at a time, candle): {min:.7}");
    }

    /// Every fixture text, the 256-token one included, through both passes of the same model.
    #[test]
    fn the_single_sequence_pass_agrees_with_the_batched_pass() {
        let fixture = fixture();
        let model = model();
        for text in texts(&fixture) {
            let mut encodings = model
                .model
                .tokenize(std::slice::from_ref(&text))
                .expect("tokenises");
            let single = model.model.embed_sequence(&encodings[0]);
            let batched = model
                .model
                .embed_batch(&mut encodings)
                .expect("embeds")
                .pop()
                .expect("one vector");
            let similarity = cosine(&single, &batched);
            assert!(
                similarity > 0.99999,
                "cosine {similarity} for {:?}",
                text.chars().take(60).collect::<String>()
            );
        }
    }

    #[tokio::test]
    async fn sub_batches_keep_input_order() {
        // More texts than one sub-batch, with lengths out of order, so both the
        // split and the length sort are exercised.
        let texts: Vec<String> = (0..SUB_BATCH_SIZE + 5)
            .map(|i| format!("memory {i}: {}", "detail ".repeat((i * 7) % 23)))
            .collect();
        let model = model();
        let batched = model.embed(texts.clone()).await.expect("embeds");
        for (text, vector) in texts.iter().zip(&batched) {
            let single = model.embed(vec![text.clone()]).await.expect("embeds");
            assert!(cosine(vector, &single[0]) > 0.9999, "{text:?} out of order");
        }
    }

    #[tokio::test]
    async fn empty_input_gives_empty_output() {
        assert!(model().embed(Vec::new()).await.expect("embeds").is_empty());
    }

    #[tokio::test]
    async fn vectors_are_unit_length() {
        let vectors = model()
            .embed(vec!["short".into(), "a somewhat longer sentence".into()])
            .await
            .expect("embeds");
        for vector in vectors {
            let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
    }

    /// (anchor, related, unrelated): the related text must score higher.
    const RANKING_CASES: &[(&str, &str, &str)] = &[
        (
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "A cheetah is running behind its prey.",
        ),
        (
            "What theme does the user like for their editor?",
            "User prefers dark mode in every editor and terminal.",
            "The billing service migrates to PostgreSQL 16 next quarter.",
        ),
        (
            "Where is the staging kubeconfig stored?",
            "The staging cluster's kubeconfig lives in the ops vault.",
            "The user is allergic to peanuts.",
        ),
        (
            "How do we ship a release?",
            "The deploy pipeline runs cargo test, then builds and pushes the container image.",
            "Alice's birthday is on the third of March.",
        ),
    ];

    #[tokio::test]
    async fn related_sentences_rank_above_unrelated_ones() {
        let model = model();
        for &(anchor, related, unrelated) in RANKING_CASES {
            let v = model
                .embed(vec![anchor.into(), related.into(), unrelated.into()])
                .await
                .expect("embeds");
            let (close, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
            assert!(
                close > far,
                "{anchor:?}: related {close:.3} <= unrelated {far:.3}"
            );
        }
    }

    #[tokio::test]
    async fn missing_model_dir_is_a_load_error() {
        let result = MiniLmEmbedder::load(Path::new("/nonexistent/minilm"));
        assert!(matches!(result, Err(EmbeddingError::ModelLoad { .. })));
    }

    /// Manual measurement (numbers are printed, nothing is asserted):
    /// `cargo test -p memoryc-platform --lib minilm::tests::speed -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "manual performance measurement"]
    async fn speed() {
        let model = model();
        let sentence = "User prefers dark mode in every editor and terminal.".to_string();
        model.embed(vec![sentence.clone()]).await.expect("warm-up");

        let runs = 50;
        let start = Instant::now();
        for _ in 0..runs {
            model.embed(vec![sentence.clone()]).await.expect("embeds");
        }
        let single_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        println!("single sentence latency: {single_ms:.1} ms");

        let fixture = fixture();
        let short: Vec<String> = fixture
            .items
            .iter()
            .filter(|item| item.tokens <= 32)
            .map(|item| item.text.clone())
            .cycle()
            .take(256)
            .collect();
        report_throughput("short memories, one call", short.len(), || async {
            model.embed(short.clone()).await.expect("embeds");
        })
        .await;

        let batching = BatchingEmbedder::new(model.clone(), DEFAULT_MAX_BATCH, 1).expect("runtime");
        report_throughput(
            "short memories, concurrent single calls via BatchingEmbedder",
            short.len(),
            || async {
                let calls = short.iter().map(|text| batching.embed(vec![text.clone()]));
                for result in futures::future::join_all(calls).await {
                    result.expect("embeds");
                }
            },
        )
        .await;

        let mixed: Vec<String> = texts(&fixture).into_iter().cycle().take(64).collect();
        report_throughput(
            "fixture mix incl. 256-token texts, one call",
            mixed.len(),
            || async {
                model.embed(mixed.clone()).await.expect("embeds");
            },
        )
        .await;
    }

    async fn report_throughput<F, Fut>(label: &str, texts: usize, run: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let start = Instant::now();
        run().await;
        let rate = texts as f64 / start.elapsed().as_secs_f64();
        println!("batched throughput ({label}, {texts} texts): {rate:.0} sentences/s");
    }
}
