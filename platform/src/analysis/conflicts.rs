//! Whether two texts about the same thing contradict each other: one denies what the other
//! affirms (see [`super::polarity`]), or both give a value to the same subject and the values
//! differ ("the deploy branch is main" / "… is release", "port: 8080" / "port: 9090",
//! "prefers tabs" / "prefers spaces").
//!
//! The reading is lexical and errs towards silence: values introduced by "a"/"an" are
//! classifications that can coexist ("Redis is a cache", "Redis is a broker"), a handful of
//! descriptive words are not treated as values, and clauses that deny are left to polarity.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::polarity::{is_negation, opposite_polarity};
use super::text::{clauses, is_content_word, is_stop_word, stem, tokens};

/// An explanation when `a` and `b` contradict each other, `None` when they do not.
pub fn contradiction(a: &str, b: &str) -> Option<String> {
    opposite_polarity(a, b).or_else(|| value_conflict(a, b))
}

/// An explanation when `a` and `b` give different values to the same subject.
pub fn value_conflict(a: &str, b: &str) -> Option<String> {
    let left = assertions(a);
    let right = assertions(b);
    left.iter().find_map(|x| {
        right
            .iter()
            .find(|y| x.conflicts_with(y))
            .map(|y| match x.kind {
                AssertionKind::Value => format!(
                    "conflicting values for \"{}\": \"{}\" vs \"{}\"",
                    x.subject_phrase(y),
                    x.value,
                    y.value
                ),
                AssertionKind::Preference => format!(
                    "conflicting preferences: \"{}\" vs \"{}\"",
                    x.value, y.value
                ),
            })
    })
}

/// What an assertion sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    /// A subject has a value: "X is Y", "X: Y", "X = Y".
    Value,
    /// Someone prefers something: "prefers Y".
    Preference,
}

/// One "subject has value" statement found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub kind: AssertionKind,
    /// Stemmed content terms of the subject, in order; for preferences, who prefers (often
    /// empty: "prefers tabs").
    pub subject: Vec<String>,
    /// The subject's content words as written (lower case), for explanations.
    pub subject_words: Vec<String>,
    /// The value, lower case, words separated by single spaces.
    pub value: String,
    /// For preferences, the situation it applies to ("for YAML"); empty when unqualified.
    pub scope: BTreeSet<String>,
}

impl Assertion {
    fn conflicts_with(&self, other: &Assertion) -> bool {
        if self.kind != other.kind || !values_differ(&self.value, &other.value) {
            return false;
        }
        match self.kind {
            AssertionKind::Value => same_subject(&self.subject, &other.subject),
            AssertionKind::Preference => {
                let compatible =
                    |a: &Vec<String>, b: &Vec<String>| a.is_empty() || b.is_empty() || a == b;
                let scopes =
                    self.scope.is_empty() || other.scope.is_empty() || self.scope == other.scope;
                compatible(&self.subject, &other.subject) && scopes
            }
        }
    }

    /// The more specific of the two subject phrases.
    fn subject_phrase(&self, other: &Assertion) -> String {
        let words = if other.subject_words.len() > self.subject_words.len() {
            &other.subject_words
        } else {
            &self.subject_words
        };
        words.join(" ")
    }
}

/// Subjects match when equal, or when one narrows the other and both end in the same head
/// word ("database port" and "port"), but not "api port" and "database port".
fn same_subject(a: &[String], b: &[String]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.last() == long.last() && short.iter().all(|term| long.contains(term))
}

/// Values differ when neither's words contain the other's: "postgresql 16" refines
/// "postgresql" rather than contradicting it.
fn values_differ(a: &str, b: &str) -> bool {
    let words = |v: &str| v.split(' ').map(str::to_string).collect::<BTreeSet<_>>();
    let (a, b) = (words(a), words(b));
    !a.is_subset(&b) && !b.is_subset(&a)
}

fn pattern(source: &str) -> Regex {
    // The patterns are constants checked by the tests; a typo fails every test run at once.
    #[allow(clippy::expect_used)]
    Regex::new(source).expect("assertion pattern compiles")
}

/// "X is Y" and its relatives; the first one in a clause is the statement's verb.
static COPULA: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"(?i)\b(?:is set to|are set to|set to|defaults to|default to|should be|must be|will be|is|are|was|equals)\s+",
    )
});
/// "key: value" or "key = value"; the key is one to three words.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r#"(?:^|[\s(,])([A-Za-z_][\w.-]*(?:[ \t]+[A-Za-z_][\w.-]*){0,2})[ \t]*(:|=)[ \t]*("[^"]*"|'[^']*'|[^\s,;()]+)"#,
    )
});
static PREFERENCE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?i)\b(?:prefers?|preferred|preferring|favou?rs?|favou?red)\s+"));

/// Words that describe a subject rather than give it a value: a subject can be several of
/// these at once.
const DESCRIPTIVE: &[&str] = &[
    "documented",
    "tested",
    "protected",
    "important",
    "useful",
    "covered",
    "monitored",
    "versioned",
    "automated",
    "configured",
    "deployed",
    "done",
    "available",
    "needed",
    "used",
    "fine",
    "ok",
    "okay",
    "good",
    "great",
    "here",
    "there",
    "known",
    "responsible",
    "able",
];

/// Labels that introduce a remark rather than name a setting: "Note: …", "Update: …".
const LABELS: &[&str] = &[
    "note",
    "notes",
    "todo",
    "tip",
    "warning",
    "update",
    "example",
    "summary",
    "important",
    "fyi",
    "reminder",
    "nb",
    "ps",
    "decision",
    "question",
    "answer",
    "context",
    "reason",
    "see",
    "http",
    "https",
    "ftp",
    "mailto",
    "file",
    "re",
    "fix",
    "feat",
    "chore",
    "docs",
];

/// Words before a key that say how it is set, not what it is: "set LOG_LEVEL = debug".
const KEY_VERBS: &[&str] = &["set", "export", "let", "const", "var", "env", "config"];

/// Every assertion in `text`, skipping clauses that deny (polarity covers those).
pub fn assertions(text: &str) -> Vec<Assertion> {
    let mut found = Vec::new();
    for clause in clauses(text) {
        if tokens(clause).iter().any(|t| is_negation(t)) {
            continue;
        }
        found.extend(key_values(clause));
        if let Some(assertion) = preference(clause) {
            found.push(assertion);
        } else if let Some(assertion) = copula(clause) {
            found.push(assertion);
        }
    }
    found
}

/// Stemmed and written forms of the content words in `phrase`, keeping at most the last
/// `keep` (the words nearest the verb name the subject).
fn subject_terms(phrase: &str, keep: usize) -> (Vec<String>, Vec<String>) {
    let words: Vec<String> = tokens(phrase)
        .into_iter()
        .filter(|t| is_content_word(t))
        .collect();
    let words = words[words.len().saturating_sub(keep)..].to_vec();
    (words.iter().map(|w| stem(w)).collect(), words)
}

/// The leading value words of `rest`: up to three words before the first stop word, after
/// dropping a leading "the" and frequency adverbs. `None` when the value is introduced by
/// "a"/"an" (a classification), is descriptive, or is empty.
fn leading_value(rest: &str) -> Option<String> {
    // A value ends at the first punctuation that closes a phrase: "release, set up by …".
    let end = rest
        .find([',', '(', ')', ':', '!', '?'])
        .unwrap_or(rest.len());
    // Whitespace-separated so that hosts and versions ("api.example.com", "v1.2") stay whole.
    let mut words = rest[..end]
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .peekable();
    while words.peek().is_some_and(|w| {
        matches!(
            w.as_str(),
            "the" | "always" | "currently" | "now" | "still" | "usually" | "also" | "just"
        )
    }) {
        words.next();
    }
    let value: Vec<String> = words
        .take_while(|w| !is_stop_word(w) && !is_negation(w))
        .take(3)
        .collect();
    let first = value.first()?;
    if DESCRIPTIVE.contains(&first.as_str()) {
        return None;
    }
    Some(value.join(" "))
}

fn copula(clause: &str) -> Option<Assertion> {
    let m = COPULA.find(clause)?;
    let (subject, subject_words) = subject_terms(&clause[..m.start()], 4);
    if subject.is_empty() {
        return None;
    }
    let rest = &clause[m.end()..];
    let first = tokens(rest).into_iter().next()?;
    if first == "a" || first == "an" {
        return None;
    }
    Some(Assertion {
        kind: AssertionKind::Value,
        subject,
        subject_words,
        value: leading_value(rest)?,
        scope: BTreeSet::new(),
    })
}

fn key_values(clause: &str) -> Vec<Assertion> {
    let mut found = Vec::new();
    for caps in KEY_VALUE.captures_iter(clause) {
        let (Some(key), Some(sign), Some(value)) = (caps.get(1), caps.get(2), caps.get(3)) else {
            continue;
        };
        // `==`, `=>`, `!=`, `<=` and `::` are operators or paths, not settings.
        let after = clause[sign.end()..].chars().next();
        let before = clause[..sign.start()].chars().last();
        if matches!(after, Some('=' | '>' | ':' | '/'))
            || matches!(before, Some('=' | '!' | '<' | '>'))
        {
            continue;
        }
        // Keys are identifiers as often as words: split on spaces only so `LOG_LEVEL` and
        // `server.port` stay whole.
        let key_words: Vec<String> = key
            .as_str()
            .split_whitespace()
            .map(str::to_lowercase)
            .filter(|w| is_content_word(w) && !KEY_VERBS.contains(&w.as_str()))
            .collect();
        if tokens(key.as_str())
            .last()
            .is_some_and(|last| LABELS.contains(&last.as_str()))
        {
            continue;
        }
        let subject: Vec<String> = key_words.iter().map(|w| stem(w)).collect();
        let subject_words = key_words;
        let value = value
            .as_str()
            .trim_matches(|c: char| c == '"' || c == '\'')
            .trim_end_matches('.')
            .to_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.is_empty() || value.is_empty() || is_stop_word(&value) {
            continue;
        }
        found.push(Assertion {
            kind: AssertionKind::Value,
            subject,
            subject_words,
            value,
            scope: BTreeSet::new(),
        });
    }
    found
}

fn preference(clause: &str) -> Option<Assertion> {
    let m = PREFERENCE.find(clause)?;
    let (subject, subject_words) = subject_terms(&clause[..m.start()], 2);
    let rest = &clause[m.end()..];
    let value = leading_value(rest)?;
    // "prefers tabs for YAML": the words after the first of these name where it applies.
    let rest_words = tokens(rest);
    let scope = rest_words
        .iter()
        .position(|w| matches!(w.as_str(), "for" | "in" | "when" | "on" | "with"))
        .map(|at| {
            rest_words[at + 1..]
                .iter()
                .filter(|w| is_content_word(w))
                .map(|w| stem(w))
                .collect()
        })
        .unwrap_or_default();
    Some(Assertion {
        kind: AssertionKind::Preference,
        subject,
        subject_words,
        value,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_conflicting_values() {
        let cases = [
            (
                "The deploy branch is main.",
                "The deploy branch is release.",
                "conflicting values for \"deploy branch\": \"main\" vs \"release\"",
            ),
            (
                "api_port: 8080",
                "api_port: 9090",
                "conflicting values for \"api_port\": \"8080\" vs \"9090\"",
            ),
            (
                "Set LOG_LEVEL = debug in staging",
                "LOG_LEVEL=info",
                "conflicting values for \"log_level\": \"debug\" vs \"info\"",
            ),
            (
                "The user prefers tabs for indentation.",
                "Prefers spaces for indentation.",
                "conflicting preferences: \"tabs\" vs \"spaces\"",
            ),
            (
                "The database port: 5432",
                "port: 5433",
                "conflicting values for \"database port\": \"5432\" vs \"5433\"",
            ),
            (
                "The request timeout should be 30 seconds",
                "Request timeout is 60 seconds.",
                "conflicting values for \"request timeout\": \"30 seconds\" vs \"60 seconds\"",
            ),
            (
                "My favourite editor is vim",
                "Favourite editor: emacs",
                "conflicting values for \"favourite editor\": \"vim\" vs \"emacs\"",
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(contradiction(a, b).as_deref(), Some(expected), "{a} / {b}");
        }
    }

    #[test]
    fn polarity_counts_as_contradiction() {
        let found = contradiction("We deploy on Fridays.", "We never deploy on Fridays.");
        assert!(found.is_some_and(|e| e.starts_with("opposite statements")));
        let found = contradiction("The deploy branch is main", "The deploy branch is not main");
        assert!(found.is_some_and(|e| e.starts_with("opposite statements")));
    }

    #[test]
    fn leaves_agreeing_or_unrelated_values_alone() {
        let cases = [
            (
                "The deploy branch is main.",
                "The deploy branch is main for every service.",
            ),
            ("The API port is 8080", "The database port is 5432"),
            ("Redis is a cache", "Redis is a message broker"),
            ("The API is documented", "The API is versioned"),
            (
                "The staging database is PostgreSQL 16",
                "The staging database is PostgreSQL",
            ),
            ("Alice prefers tabs", "Bob prefers spaces"),
            ("Prefers tabs for Go", "Prefers spaces for YAML"),
            ("Note: deploys are slow", "Note: tests are flaky"),
            ("see https://example.com/a", "see https://example.com/b"),
            ("if a == b then stop", "if a == c then go"),
            ("The meeting was great", "The meeting was long"),
            ("This is main", "This is release"),
            ("Deploys happen on Fridays", "Backups run nightly"),
            ("", "port: 8080"),
        ];
        for (a, b) in cases {
            assert_eq!(contradiction(a, b), None, "{a} / {b}");
        }
    }

    #[test]
    fn reads_assertions() {
        let found = assertions("The deploy branch is main; port = 8080. Avoid tabs.");
        let values: Vec<&str> = found.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(values, vec!["main", "8080"]);
        assert!(assertions("The deploy branch is not main").is_empty());
    }
}
