//! Assigns a category to memories written without one, by closeness in meaning to short
//! descriptions of each category (zero-shot, with the same model that embeds memories).

use std::sync::Arc;

use crate::domain::Category;
use crate::embedding::{Embedder, EmbeddingError};

/// Sentences typical of each category. Several per category cover its different shapes.
const PROTOTYPES: [(Category, &str); 16] = [
    (
        Category::Technical,
        "Technical detail about code, APIs, libraries, databases or infrastructure.",
    ),
    (
        Category::Technical,
        "The function returns an error when the database connection times out.",
    ),
    (
        Category::Technical,
        "Use the async client and set the timeout to 30 seconds in the config file.",
    ),
    (
        Category::Technical,
        "SELECT statements, compiler errors, stack traces and command line flags.",
    ),
    (
        Category::Workflow,
        "A step-by-step process or routine the team follows to get work done.",
    ),
    (
        Category::Workflow,
        "First run the tests, then open a pull request and wait for review before merging.",
    ),
    (
        Category::Workflow,
        "The deploy pipeline builds the image and releases it every Friday.",
    ),
    (
        Category::Workflow,
        "How we triage incoming bugs and hand over on-call shifts.",
    ),
    (
        Category::Preference,
        "The user prefers, likes or dislikes something.",
    ),
    (
        Category::Preference,
        "I like short answers and dark mode in every editor.",
    ),
    (
        Category::Preference,
        "Always reply in German and avoid emojis, please.",
    ),
    (
        Category::Preference,
        "My favourite language is Rust; I dislike long meetings.",
    ),
    (
        Category::Project,
        "A project's goals, deadlines, milestones, owners or status.",
    ),
    (
        Category::Project,
        "The billing migration is due next quarter and Alice owns it.",
    ),
    (
        Category::Project,
        "Project Apollo launched its beta; the next milestone is general availability.",
    ),
    (
        Category::Project,
        "Meeting notes: we agreed on the roadmap and the budget for the release.",
    ),
];

/// Softmax temperature: cosine gaps between categories are small, so sharpen them.
const TEMPERATURE: f32 = 0.05;

/// Zero-shot categoriser built once at start-up.
pub struct Categorizer {
    prototypes: Vec<(Category, Vec<f32>)>,
}

impl Categorizer {
    pub async fn new(embedder: &Arc<dyn Embedder>) -> Result<Self, EmbeddingError> {
        let texts = PROTOTYPES
            .iter()
            .map(|(_, text)| text.to_string())
            .collect();
        let vectors = embedder.embed(texts).await?;
        let prototypes = PROTOTYPES.iter().map(|(c, _)| *c).zip(vectors).collect();
        Ok(Self { prototypes })
    }

    /// The most likely category of an embedded text and how sure that is (0..1).
    pub fn categorize(&self, embedding: &[f32]) -> (Category, f64) {
        let best_per_category: Vec<(Category, f32)> = Category::ALL
            .iter()
            .map(|category| {
                let best = self
                    .prototypes
                    .iter()
                    .filter(|(c, _)| c == category)
                    .map(|(_, v)| dot(v, embedding))
                    .fold(f32::MIN, f32::max);
                (*category, best)
            })
            .collect();
        let max = best_per_category
            .iter()
            .map(|(_, s)| *s)
            .fold(f32::MIN, f32::max);
        let weights: Vec<f32> = best_per_category
            .iter()
            .map(|(_, s)| ((s - max) / TEMPERATURE).exp())
            .collect();
        let total: f32 = weights.iter().sum();
        let (index, weight) = weights
            .iter()
            .enumerate()
            .fold(
                (0, f32::MIN),
                |best, (i, w)| if *w > best.1 { (i, *w) } else { best },
            );
        let confidence = if total > 0.0 {
            f64::from(weight / total)
        } else {
            0.0
        };
        (best_per_category[index].0, confidence.clamp(0.0, 1.0))
    }
}

/// Cosine similarity of two L2-normalised vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
