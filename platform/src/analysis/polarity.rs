//! Whether a statement affirms or denies something: "we use tabs" against "we never use tabs",
//! "enable TLS" against "disable TLS". Each clause becomes a stance (negated or not, plus its
//! terms with opposites folded onto one word) so two texts can be compared clause by clause.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use super::text::{clauses, is_content_word, snippet, stem, tokens};

/// Words that deny the clause they stand in. Contractions ending in "n't" count as well.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "without", "nothing", "none", "neither", "nor", "cannot", "stop",
    "stopped", "stops", "stopping", "quit", "nobody", "nowhere",
];

/// Pairs of opposites, the denying word first: "avoid X" reads as "not use X".
const OPPOSITES: &[(&str, &str)] = &[
    ("avoid", "use"),
    ("disable", "enable"),
    ("dislike", "like"),
    ("hate", "like"),
    ("forbid", "allow"),
    ("prohibit", "allow"),
    ("disallow", "allow"),
    ("deny", "allow"),
    ("block", "allow"),
    ("exclude", "include"),
    ("reject", "accept"),
    ("remove", "add"),
    ("drop", "add"),
    ("unsupported", "supported"),
    ("deprecate", "recommend"),
    ("discourage", "encourage"),
    ("optional", "required"),
];

/// Forms of "use" and "prefer", which all affirm the same thing; most are stop words elsewhere
/// but here they carry the statement.
const USE_FORMS: &[&str] = &[
    "use",
    "uses",
    "used",
    "using",
    "prefer",
    "prefers",
    "preferred",
    "preferring",
];

/// The canonical term of a use form.
const USE: &str = "use";

/// Stem of a denying word → stem of its affirming opposite.
static OPPOSITE_OF: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    OPPOSITES
        .iter()
        .map(|(neg, pos)| (stem(neg), canonical(pos)))
        .collect()
});

/// Stems of the affirming words, kept as terms even where they are stop words ("like").
static AFFIRMING: LazyLock<BTreeSet<String>> =
    LazyLock::new(|| OPPOSITES.iter().map(|(_, pos)| canonical(pos)).collect());

fn canonical(word: &str) -> String {
    if USE_FORMS.contains(&word) {
        USE.to_string()
    } else {
        stem(word)
    }
}

/// Whether `token` (lower case) denies its clause.
pub fn is_negation(token: &str) -> bool {
    NEGATIONS.contains(&token) || token.ends_with("n't")
}

/// One clause read for polarity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stance {
    /// The clause as written.
    pub text: String,
    /// Whether an odd number of denials stands in it ("don't disable" affirms).
    pub negated: bool,
    /// Stemmed content terms, opposites replaced by their affirming word.
    pub terms: BTreeSet<String>,
}

/// Reads one clause.
pub fn stance(clause: &str) -> Stance {
    let mut negated = false;
    let mut terms = BTreeSet::new();
    let mut previous = String::new();
    for token in tokens(clause) {
        if is_negation(&token) {
            negated = !negated;
        } else if token == "longer" && previous == "no" {
            // "no longer" is one denial, already counted at "no".
        } else if USE_FORMS.contains(&token.as_str()) {
            terms.insert(USE.to_string());
        } else if let Some(positive) = OPPOSITE_OF.get(&stem(&token)) {
            negated = !negated;
            terms.insert(positive.clone());
        } else if is_content_word(&token) || AFFIRMING.contains(&stem(&token)) {
            terms.insert(stem(&token));
        }
        previous = token;
    }
    Stance {
        text: clause.to_string(),
        negated,
        terms,
    }
}

/// Every clause of `text` read for polarity.
pub fn stances(text: &str) -> Vec<Stance> {
    clauses(text).into_iter().map(stance).collect()
}

/// Whether two stances say opposite things about the same matter: one denies what the other
/// affirms, and they share most of their terms (at least two, three quarters of the shorter
/// clause and two fifths of the longer) so that "don't deploy on Fridays" does not clash with
/// "deploy on Mondays".
pub fn opposes(a: &Stance, b: &Stance) -> bool {
    if a.negated == b.negated {
        return false;
    }
    let shared = a.terms.intersection(&b.terms).count();
    let shorter = a.terms.len().min(b.terms.len());
    let longer = a.terms.len().max(b.terms.len());
    shared >= 2 && shared * 4 >= shorter * 3 && shared * 5 >= longer * 2
}

/// An explanation when a clause of `a` and a clause of `b` have opposite polarity on the same
/// matter; `None` when no pair does.
pub fn opposite_polarity(a: &str, b: &str) -> Option<String> {
    let left = stances(a);
    let right = stances(b);
    left.iter().find_map(|x| {
        right.iter().find(|y| opposes(x, y)).map(|y| {
            format!(
                "opposite statements: \"{}\" vs \"{}\"",
                snippet(&x.text, 60),
                snippet(&y.text, 60)
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stances_count_denials() {
        assert!(!stance("We use tabs").negated);
        assert!(stance("We don't use tabs").negated);
        assert!(stance("We no longer use tabs").negated);
        assert!(stance("Never deploy on Fridays").negated);
        assert!(stance("Avoid tabs").negated);
        assert!(stance("Disable TLS on the API").negated);
        assert!(!stance("Don't disable TLS on the API").negated);
        assert!(stance("We stopped using Redis").negated);
        assert!(stance("It doesn’t work").negated);
        assert_eq!(stance("Avoid tabs").terms, stance("Prefer tabs").terms);
        assert!(!stance("no longer").terms.contains("longer"));
        assert_eq!(stance("I like it").terms, stance("I dislike it").terms);
    }

    #[test]
    fn finds_opposite_statements() {
        let cases = [
            (
                "We use tabs for indentation.",
                "We don't use tabs for indentation.",
            ),
            ("Always enable TLS on the API.", "Disable TLS on the API."),
            ("Prefer tabs for indentation", "Avoid tabs for indentation"),
            (
                "Never deploy on Fridays.",
                "Deploy on Fridays after the tests pass.",
            ),
            (
                "The cache is shared by workers",
                "The cache is no longer shared by workers",
            ),
            (
                "Setup is done. We store sessions in Redis.",
                "Sessions are not stored in Redis",
            ),
        ];
        for (a, b) in cases {
            let explanation = opposite_polarity(a, b);
            assert!(explanation.is_some(), "{a} / {b}");
            assert!(opposite_polarity(b, a).is_some(), "symmetric: {b} / {a}");
        }
        let explanation = opposite_polarity("We use tabs", "We never use tabs").unwrap_or_default();
        assert_eq!(
            explanation,
            "opposite statements: \"We use tabs\" vs \"We never use tabs\""
        );
    }

    #[test]
    fn leaves_compatible_statements_alone() {
        let cases = [
            (
                "We use tabs for indentation.",
                "We use tabs for indentation in Go.",
            ),
            ("Don't deploy on Fridays.", "Deploy on Mondays."),
            ("Don't disable TLS.", "Enable TLS."),
            (
                "We don't use Redis for sessions.",
                "We use Redis for caching rendered pages.",
            ),
            (
                "No tests for docs changes.",
                "Write release notes for each release.",
            ),
            ("Never use tabs.", "Never use tabs in YAML."),
        ];
        for (a, b) in cases {
            assert_eq!(opposite_polarity(a, b), None, "{a} / {b}");
        }
    }
}
