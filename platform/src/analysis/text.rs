//! Words of a memory as the analysis compares them: lower-cased tokens, stop words dropped and
//! a light suffix stemmer so that "deploys", "deployed" and "deploying" count as one term.

use std::collections::BTreeSet;

/// Function words that say nothing about what a memory is about. Negation words are absent on
/// purpose: polarity detection reads them before stop words are removed.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "etc",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "lets",
    "like",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "per",
    "please",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "thus",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "always",
    "usually",
    "often",
    "still",
    "currently",
    "really",
    "user",
    "users",
    "one",
    "two",
    "use",
    "uses",
    "used",
    "using",
    "make",
    "makes",
    "made",
    "it's",
    "i'm",
    "i've",
    "i'd",
    "we're",
    "we've",
    "we'll",
    "you're",
    "they're",
    "that's",
    "there's",
    "let's",
];

/// Whether `word` (lower case) carries no topic.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// Lower-cased word tokens: runs of letters and digits; apostrophes inside a word are kept so
/// that contractions ("don't") stay one token. Typographic apostrophes count as plain ones.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = if c == '\u{2019}' { '\'' } else { c };
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if c == '\''
            && !current.is_empty()
            && chars.peek().is_some_and(|next| next.is_alphanumeric())
        {
            current.push('\'');
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A light stemmer: strips one inflectional suffix, a final "e" and a doubled final consonant.
/// Both sides of every comparison go through it, so the stems need not be real words.
pub fn stem(word: &str) -> String {
    let mut stem = word.to_string();
    let char_len = |s: &str| s.chars().count();
    for suffix in ["ing", "ed", "es", "s"] {
        if stem.ends_with(suffix) && char_len(&stem) >= suffix.len() + 3 {
            if suffix == "s" && (stem.ends_with("ss") || stem.ends_with("us")) {
                break;
            }
            stem.truncate(stem.len() - suffix.len());
            break;
        }
    }
    if stem.ends_with('e') && char_len(&stem) > 3 {
        stem.pop();
    }
    let bytes = stem.as_bytes();
    if bytes.len() > 3 {
        let last = bytes[bytes.len() - 1];
        if last == bytes[bytes.len() - 2] && last.is_ascii_alphabetic() && !b"aeiou".contains(&last)
        {
            stem.pop();
        }
    }
    stem
}

/// Whether a token says something on its own: not a stop word, at least two characters, and
/// not a bare number or an id fragment (mostly digits).
pub fn is_content_word(word: &str) -> bool {
    if word.chars().count() < 2 || is_stop_word(word) {
        return false;
    }
    let digits = word.chars().filter(char::is_ascii_digit).count();
    digits * 2 < word.chars().count()
}

/// The stemmed content terms of `text`.
pub fn content_terms(text: &str) -> BTreeSet<String> {
    tokens(text)
        .into_iter()
        .filter(|t| is_content_word(t))
        .map(|t| stem(&t))
        .collect()
}

/// Conjunctions that join two statements which may each hold on their own.
const CLAUSE_JOINERS: &[&str] = &["but", "however", "whereas", "although", "though"];

/// The statements of `text`: sentences (split at `.`, `!` or `?` before a space, and at `;` or
/// a line break) further split at contrasting conjunctions such as "but". A full stop inside a
/// token (`v1.2`, `10.0.0.1`) does not end a sentence.
pub fn clauses(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let ends = match c {
            ';' | '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|(_, next)| next.is_whitespace()),
            _ => false,
        };
        if ends {
            sentences.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    sentences.push(&text[start..]);
    let mut out = Vec::new();
    for sentence in sentences {
        let mut rest = sentence;
        'split: loop {
            for (at, _) in rest.match_indices(' ') {
                let word_start = at + 1;
                let word_len = rest[word_start..]
                    .find(|c: char| !c.is_alphabetic())
                    .unwrap_or(rest.len() - word_start);
                let word = &rest[word_start..word_start + word_len];
                if CLAUSE_JOINERS.iter().any(|j| j.eq_ignore_ascii_case(word)) {
                    out.push(&rest[..at]);
                    rest = &rest[word_start + word_len..];
                    continue 'split;
                }
            }
            out.push(rest);
            break;
        }
    }
    out.into_iter()
        .map(|c| c.trim_matches(|c: char| c.is_whitespace() || c == ','))
        .filter(|c| !c.is_empty())
        .collect()
}

/// `text` cut to at most `max` characters on a word boundary, with an ellipsis when cut.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(at) if at > max / 2 => &cut[..at],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_contractions_and_lower_case() {
        assert_eq!(
            tokens("We DON'T deploy—ever; it’s v1.2!"),
            vec!["we", "don't", "deploy", "ever", "it's", "v1", "2"]
        );
        assert!(tokens("  ...  ").is_empty());
    }

    #[test]
    fn stems_merge_inflections() {
        for (a, b) in [
            ("deploys", "deploy"),
            ("deployed", "deploying"),
            ("enable", "enabled"),
            ("preferred", "prefers"),
            ("tabs", "tab"),
            ("running", "run"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} vs {b}");
        }
        assert_ne!(stem("class"), stem("clas"));
        assert_eq!(stem("is"), "is");
        assert_ne!(stem("main"), stem("release"));
    }

    #[test]
    fn content_terms_drop_stop_words_and_numbers() {
        let terms = content_terms("The deploy branch is main and we use port 8080");
        let expected: BTreeSet<String> = ["deploy", "branch", "main", "port"]
            .iter()
            .map(|w| stem(w))
            .collect();
        assert_eq!(terms, expected);
    }

    #[test]
    fn clauses_split_sentences_and_contrasts() {
        assert_eq!(
            clauses("Deploy v1.2 to 10.0.0.1. Tests pass; docs lag!\nDone, but slowly"),
            vec![
                "Deploy v1.2 to 10.0.0.1",
                "Tests pass",
                "docs lag",
                "Done",
                "slowly"
            ]
        );
        assert!(clauses(" . ").is_empty());
    }

    #[test]
    fn snippets_cut_on_words() {
        assert_eq!(snippet("short  text", 40), "short text");
        let long = snippet("the quick brown fox jumps over the lazy dog", 20);
        assert_eq!(long, "the quick brown fox…");
    }
}
