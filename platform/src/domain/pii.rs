//! Personal data and secrets in memory content: e-mail addresses, phone numbers, card numbers
//! (Luhn-checked), IBANs (mod-97-checked) and common secret and token formats. Detection is
//! deliberately conservative on numbers (checksums, digit counts, no dates) so ordinary notes
//! with versions, ports, dates and ids pass untouched.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of sensitive data was found.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    CardNumber,
    Iban,
    Secret,
}

impl PiiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CardNumber => "card_number",
            PiiKind::Iban => "iban",
            PiiKind::Secret => "secret",
        }
    }

    /// What replaces a finding when the policy masks.
    fn mask(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::CardNumber => "[CARD_NUMBER]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::Secret => "[SECRET]",
        }
    }

    /// When two findings overlap, the more specific one wins (a card number is not a phone).
    fn precedence(self) -> u8 {
        match self {
            PiiKind::Secret => 0,
            PiiKind::CardNumber => 1,
            PiiKind::Iban => 2,
            PiiKind::Email => 3,
            PiiKind::Phone => 4,
        }
    }
}

/// What a tenant wants done with content that holds sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PiiPolicy {
    /// Store as written.
    Allow,
    /// Store with each finding replaced by a marker such as `[EMAIL]`.
    Mask,
    /// Refuse the write (422 with the kinds found).
    Reject,
}

impl PiiPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiPolicy::Allow => "allow",
            PiiPolicy::Mask => "mask",
            PiiPolicy::Reject => "reject",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [PiiPolicy::Allow, PiiPolicy::Mask, PiiPolicy::Reject]
            .into_iter()
            .find(|p| p.as_str() == value)
    }
}

/// One finding: its kind and byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiFinding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

fn pattern(source: &str) -> Regex {
    // The patterns are constants checked by the tests; a typo fails every test run at once.
    #[allow(clippy::expect_used)]
    Regex::new(source).expect("PII pattern compiles")
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"));
static CARD: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b(?:\d[ -]?){12,18}\d\b"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:\+|\(|\b)\d[\d ().-]{6,}\d\b"));
static DATE: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"));
static SECRETS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // AWS access key ids.
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        // GitHub tokens (classic and fine-grained).
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
        // Slack tokens.
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        // Stripe keys.
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
        // OpenAI-style keys.
        r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}",
        // Google API keys.
        r"\bAIza[0-9A-Za-z_-]{35}\b",
        // JSON Web Tokens.
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        // PEM private keys.
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----",
        // This platform's own API keys.
        r"\bmck_[0-9a-f]{12}_[0-9a-f]{32}\b",
    ]
    .into_iter()
    .map(pattern)
    .collect()
});

fn digits(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// The Luhn checksum of card numbers.
pub fn luhn_valid(number: &[u32]) -> bool {
    let sum: u32 = number
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    !number.is_empty() && sum.is_multiple_of(10)
}

/// Whether the number has the length its issuer prefix calls for (Visa, Mastercard, Amex,
/// Diners, JCB, Discover). Luhn alone passes one random number in ten.
fn plausible_card(number: &[u32]) -> bool {
    let prefix = |n: usize| number.iter().take(n).fold(0, |acc, d| acc * 10 + d);
    let len = number.len();
    match number.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&prefix(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&prefix(4)) && len == 16,
        Some(3) => match prefix(2) {
            34 | 37 => len == 15,
            30 | 36 | 38 => matches!(len, 14 | 16),
            35 => (16..=19).contains(&len),
            _ => false,
        },
        Some(6) => (16..=19).contains(&len),
        _ => false,
    }
}

/// The ISO 13616 check of IBANs: move the first four characters to the end, letters to
/// numbers, and the result mod 97 is 1.
pub fn iban_valid(candidate: &str) -> bool {
    let compact: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn phone_like(candidate: &str) -> bool {
    let count = digits(candidate).len();
    let international = candidate.starts_with('+') || candidate.starts_with('(');
    // E.164 has at most 15 digits; national numbers without a prefix have at least 10.
    let enough = if international {
        count >= 8
    } else {
        count >= 10
    };
    enough && count <= 15 && !DATE.is_match(candidate)
}

/// Every finding in `text`, ordered by position, overlaps resolved by precedence.
pub fn detect(text: &str) -> Vec<PiiFinding> {
    let mut found = Vec::new();
    let mut push = |kind, m: regex::Match<'_>| {
        found.push(PiiFinding {
            kind,
            start: m.start(),
            end: m.end(),
        })
    };
    for secret in SECRETS.iter() {
        for m in secret.find_iter(text) {
            push(PiiKind::Secret, m);
        }
    }
    for m in CARD.find_iter(text) {
        let number = digits(m.as_str());
        if plausible_card(&number) && luhn_valid(&number) {
            push(PiiKind::CardNumber, m);
        }
    }
    for m in IBAN.find_iter(text) {
        if iban_valid(m.as_str()) {
            push(PiiKind::Iban, m);
        }
    }
    for m in EMAIL.find_iter(text) {
        push(PiiKind::Email, m);
    }
    for m in PHONE.find_iter(text) {
        if phone_like(m.as_str()) {
            push(PiiKind::Phone, m);
        }
    }
    found.sort_by_key(|f| (f.kind.precedence(), f.start));
    let mut kept: Vec<PiiFinding> = Vec::with_capacity(found.len());
    for finding in found {
        if !kept
            .iter()
            .any(|k| finding.start < k.end && k.start < finding.end)
        {
            kept.push(finding);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

/// The distinct kinds among `findings`, in a stable order.
pub fn kinds(findings: &[PiiFinding]) -> Vec<PiiKind> {
    let mut kinds: Vec<PiiKind> = findings.iter().map(|f| f.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// `text` with every finding replaced by its marker.
pub fn mask(text: &str, findings: &[PiiFinding]) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut at = 0;
    for finding in findings {
        masked.push_str(&text[at..finding.start]);
        masked.push_str(finding.kind.mask());
        at = finding.end;
    }
    masked.push_str(&text[at..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_in(text: &str) -> Vec<PiiKind> {
        kinds(&detect(text))
    }

    #[test]
    fn finds_each_kind() {
        let positives: &[(&str, PiiKind)] = &[
            ("write to jane.doe+memo@example.co.uk today", PiiKind::Email),
            ("call +1 (555) 123-4567 after lunch", PiiKind::Phone),
            ("call +44 20 7946 0958", PiiKind::Phone),
            ("her number is 555-123-4567", PiiKind::Phone),
            ("card 4111 1111 1111 1111 exp 12/29", PiiKind::CardNumber),
            ("card 5500-0000-0000-0004", PiiKind::CardNumber),
            ("amex 378282246310005", PiiKind::CardNumber),
            ("pay to DE89 3704 0044 0532 0130 00 please", PiiKind::Iban),
            ("IBAN GB82WEST12345698765432", PiiKind::Iban),
            ("key AKIAIOSFODNN7EXAMPLE in the env", PiiKind::Secret),
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                PiiKind::Secret,
            ),
            ("slack xoxb-123456789012-abcdefABCDEF", PiiKind::Secret),
            ("stripe sk_live_abcdefghijklmnop1234", PiiKind::Secret),
            ("openai sk-proj-abcdefghijklmnopqrstuvwx", PiiKind::Secret),
            (
                "google AIzaSyA1234567890abcdefghijklmnopqrstuv",
                PiiKind::Secret,
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2ln",
                PiiKind::Secret,
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", PiiKind::Secret),
            ("-----BEGIN PRIVATE KEY-----", PiiKind::Secret),
            (
                "our key mck_0123456789ab_0123456789abcdef0123456789abcdef",
                PiiKind::Secret,
            ),
        ];
        for (text, kind) in positives {
            assert_eq!(kinds_in(text), vec![*kind], "{text}");
        }
    }

    #[test]
    fn ordinary_notes_pass() {
        let negatives = [
            "Deploys go out on Fridays after the test suite passes.",
            "We moved to PostgreSQL 16 and Rust 1.88 in release 2.3.4.",
            "The incident started 2026-11-24 10:30:00 UTC and lasted 45 minutes.",
            "Port 8080 on 192.168.1.10 answers; order #12345 shipped.",
            "memory 01a20bb7-3e8e-73bc-b21d-919a40dcaaa5 is related",
            "card-like but wrong checksum 4111 1111 1111 1112",
            "not an IBAN: DE89 3704 0044 0532 0130 01",
            "an at sign alone: meet @ noon, or user@localhost",
            "sk-short is not a key; AKIA alone is not a key",
            "version 10.2.3.4.5 and build 20261124",
            "",
        ];
        for text in negatives {
            assert_eq!(kinds_in(text), vec![], "{text}");
        }
    }

    #[test]
    fn masking_replaces_every_finding_and_keeps_the_rest() {
        let text = "Mail jane@example.com or call +1 555 123 4567; card 4111111111111111.";
        let findings = detect(text);
        assert_eq!(
            kinds(&findings),
            vec![PiiKind::Email, PiiKind::Phone, PiiKind::CardNumber]
        );
        assert_eq!(
            mask(text, &findings),
            "Mail [EMAIL] or call [PHONE]; card [CARD_NUMBER]."
        );
        assert_eq!(
            mask("nothing here", &detect("nothing here")),
            "nothing here"
        );
    }

    #[test]
    fn checksums() {
        assert!(luhn_valid(&digits("4111111111111111")));
        assert!(!luhn_valid(&digits("4111111111111112")));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(!iban_valid("DE89"));
    }

    #[test]
    fn policies_round_trip() {
        for policy in [PiiPolicy::Allow, PiiPolicy::Mask, PiiPolicy::Reject] {
            assert_eq!(PiiPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(PiiPolicy::parse("drop"), None);
    }
}
