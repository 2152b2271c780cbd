//! Things a memory points at: other memories (by id), web pages (URLs) and issues or pull
//! requests. Each is normalised to one spelling so that two memories naming the same thing in
//! different ways are seen to share it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use uuid::Uuid;

/// One thing a text refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// A UUID; memories mention each other by id.
    Memory(Uuid),
    /// A URL with a lower-case scheme and host, no credentials, default port, fragment or
    /// trailing slash. GitHub issue and pull request URLs become [`Reference::Issue`] instead.
    Url(String),
    /// An issue or pull request in a named repository; `repository` is `owner/repo` in lower
    /// case (GitHub treats names case-insensitively), shown as `owner/repo#123`.
    Issue { repository: String, number: u64 },
    /// `#123` in a text that names no repository: which tracker it lives in is unknown, so it
    /// never equals an [`Reference::Issue`].
    BareIssue(u64),
}

impl Reference {
    /// Whether two memories that both carry this reference are about the same thing. A UUID
    /// links only the memory it names, and a bare `#12` is too ambiguous (every tracker has
    /// one) to link two memories on its own.
    pub fn is_shareable(&self) -> bool {
        matches!(self, Reference::Url(_) | Reference::Issue { .. })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Memory(id) => write!(f, "memory {id}"),
            Reference::Url(url) => f.write_str(url),
            Reference::Issue { repository, number } => write!(f, "{repository}#{number}"),
            Reference::BareIssue(number) => write!(f, "#{number}"),
        }
    }
}

fn pattern(source: &str) -> Regex {
    // The patterns are constants checked by the tests; a typo fails every test run at once.
    #[allow(clippy::expect_used)]
    Regex::new(source).expect("reference pattern compiles")
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
});
static URL: LazyLock<Regex> = LazyLock::new(|| pattern(r#"(?i)\bhttps?://[^\s<>"'`]+"#));
/// `owner/repo#123`, not preceded by anything that would make it part of a path or a word.
static QUALIFIED_ISSUE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"(?:^|[^\w/.#-])([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]{1,100})#(\d{1,9})\b")
});
/// `#123` on its own; `&#123;` (an HTML entity) and `C#1` are not issues.
static BARE_ISSUE: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:^|[^\w/&#])#(\d{1,9})\b"));

/// Every reference in `text`, deduplicated and ordered.
///
/// A bare `#123` is resolved to `owner/repo#123` when the text names exactly one repository
/// (through `owner/repo#N` or a GitHub URL); with none, or several to choose from, it stays a
/// [`Reference::BareIssue`].
pub fn extract_references(text: &str) -> BTreeSet<Reference> {
    let mut found = BTreeSet::new();
    let mut repositories = BTreeSet::new();
    for m in UUID.find_iter(text) {
        if let Ok(id) = Uuid::parse_str(m.as_str()) {
            found.insert(Reference::Memory(id));
        }
    }
    // URLs and qualified issues are blanked out before looking further, so that a fragment
    // such as `page#12` or the `#1` of `acme/api#1` is not read again as a bare issue.
    let mut rest = text.to_string();
    for m in URL.find_iter(text) {
        if let Some(url) = ParsedUrl::parse(trim_url(m.as_str())) {
            if let Some(repository) = url.github_repository() {
                repositories.insert(repository);
            }
            found.insert(url.into_reference());
        }
        blank(&mut rest, m.range());
    }
    let mut qualified = Vec::new();
    for caps in QUALIFIED_ISSUE.captures_iter(&rest) {
        let (Some(owner), Some(repo), Some(number)) = (caps.get(1), caps.get(2), caps.get(3))
        else {
            continue;
        };
        if let Ok(parsed) = number.as_str().parse() {
            let repository = format!("{}/{}", owner.as_str(), repo.as_str()).to_lowercase();
            qualified.push((repository, parsed, owner.start()..number.end()));
        }
    }
    for (repository, number, range) in qualified {
        repositories.insert(repository.clone());
        found.insert(Reference::Issue { repository, number });
        blank(&mut rest, range);
    }
    let only_repository = if repositories.len() == 1 {
        repositories.into_iter().next()
    } else {
        None
    };
    for caps in BARE_ISSUE.captures_iter(&rest) {
        let Some(Ok(number)) = caps.get(1).map(|m| m.as_str().parse::<u64>()) else {
            continue;
        };
        found.insert(match &only_repository {
            Some(repository) => Reference::Issue {
                repository: repository.clone(),
                number,
            },
            None => Reference::BareIssue(number),
        });
    }
    found
}

/// `text` with memory ids, URLs and issue references blanked out, for reading what a text is
/// about without the noise of `https`, hosts and hex digits.
pub fn strip_references(text: &str) -> String {
    let mut out = text.to_string();
    for pattern in [&*UUID, &*URL, &*QUALIFIED_ISSUE] {
        let ranges: Vec<_> = pattern.find_iter(&out).map(|m| m.range()).collect();
        for range in ranges {
            blank(&mut out, range);
        }
    }
    out
}

/// Replaces a byte range (on character boundaries, from a regex match) with spaces.
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let width = range.len();
    text.replace_range(range, &" ".repeat(width));
}

/// Drops punctuation that ends the sentence around a URL rather than the URL itself; a closing
/// bracket stays when the URL opened one (Wikipedia-style links).
fn trim_url(raw: &str) -> &str {
    let mut url = raw;
    loop {
        let Some(last) = url.chars().last() else {
            return url;
        };
        let unbalanced = |open: char, close: char| {
            last == close && url.matches(open).count() < url.matches(close).count()
        };
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            url = &url[..url.len() - last.len_utf8()];
        } else {
            return url;
        }
    }
}

/// First path segments of github.com that are site pages, not owners.
const GITHUB_PAGES: &[&str] = &[
    "orgs",
    "settings",
    "features",
    "marketplace",
    "sponsors",
    "topics",
    "collections",
    "notifications",
    "login",
    "search",
    "explore",
    "enterprise",
    "apps",
];

/// The parts of a URL the normalisation needs.
struct ParsedUrl {
    scheme: String,
    host: String,
    port: Option<String>,
    path: String,
    query: Option<String>,
}

impl ParsedUrl {
    fn parse(raw: &str) -> Option<Self> {
        let (scheme, rest) = raw.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.split('#').next().unwrap_or_default();
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        // Credentials never belong in a stored reference.
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => (host, Some(port)),
            _ => (host_port, None),
        };
        if host.is_empty() {
            return None;
        }
        let default_port = match scheme.as_str() {
            "https" => "443",
            _ => "80",
        };
        Some(Self {
            host: host.to_lowercase(),
            port: port
                .filter(|p| !p.is_empty() && *p != default_port)
                .map(str::to_string),
            path: path.trim_end_matches('/').to_string(),
            query: query.filter(|q| !q.is_empty()).map(str::to_string),
            scheme,
        })
    }

    fn is_github(&self) -> bool {
        self.port.is_none() && matches!(self.host.as_str(), "github.com" | "www.github.com")
    }

    /// `owner/repo` for any URL inside a GitHub repository.
    fn github_repository(&self) -> Option<String> {
        if !self.is_github() {
            return None;
        }
        let mut segments = self.path.split('/').filter(|s| !s.is_empty());
        let owner = segments.next()?;
        if GITHUB_PAGES.contains(&owner) {
            return None;
        }
        let repo = segments.next()?;
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        Some(format!("{owner}/{repo}").to_lowercase())
    }

    fn into_reference(self) -> Reference {
        if self.is_github() {
            let segments: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
            if let [_, _, "issues" | "pull" | "pulls", number, ..] = segments.as_slice()
                && let (Some(repository), Ok(number)) = (self.github_repository(), number.parse())
            {
                return Reference::Issue { repository, number };
            }
        }
        let mut url = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = &self.port {
            url.push(':');
            url.push_str(port);
        }
        url.push_str(&self.path);
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        Reference::Url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<String> {
        extract_references(text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn finds_memory_ids() {
        let id = "01a20bb7-3e8e-73bc-b21d-919a40dcaaa5";
        let found = extract_references(&format!("see {} and {id}.", id.to_uppercase()));
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec![Reference::Memory(Uuid::parse_str(id).expect("uuid"))]
        );
        assert!(extract_references("01a20bb7-3e8e-73bc-b21d-919a40dcaaa").is_empty());
    }

    #[test]
    fn normalises_urls() {
        assert_eq!(
            refs("Docs at HTTPS://Docs.Example.COM/Guide/ (see there)."),
            vec!["https://docs.example.com/Guide"]
        );
        assert_eq!(
            refs("read https://example.com/a/b#section, then https://example.com:443/a/b/"),
            vec!["https://example.com/a/b"]
        );
        assert_eq!(
            refs("http://user:pw@Example.com:8080/x?q=1#top"),
            vec!["http://example.com:8080/x?q=1"]
        );
        assert_eq!(
            refs("(https://en.wikipedia.org/wiki/Rust_(programming_language))"),
            vec!["https://en.wikipedia.org/wiki/Rust_(programming_language)"]
        );
        assert_eq!(refs("https://example.com/"), vec!["https://example.com"]);
    }

    #[test]
    fn issues_and_pull_requests_share_one_form() {
        let expected = vec!["acme/api#123"];
        assert_eq!(refs("fixed in acme/api#123"), expected);
        assert_eq!(refs("fixed in Acme/API#123"), expected);
        assert_eq!(refs("https://github.com/acme/api/issues/123"), expected);
        assert_eq!(
            refs("https://github.com/Acme/api/pull/123/files#diff-1"),
            expected
        );
        assert_eq!(
            refs("see https://github.com/acme/api/issues/123#issuecomment-9 and acme/api#123"),
            expected
        );
    }

    #[test]
    fn bare_issues_resolve_only_against_one_named_repository() {
        assert_eq!(refs("blocked by #42"), vec!["#42"]);
        assert_eq!(
            refs("acme/api#1 is blocked by #42"),
            vec!["acme/api#1", "acme/api#42"]
        );
        assert_eq!(
            refs("in https://github.com/acme/web see #7"),
            vec!["https://github.com/acme/web", "acme/web#7"]
        );
        assert_eq!(
            refs("acme/api#1 and acme/web#2 mention #3"),
            vec!["acme/api#1", "acme/web#2", "#3"]
        );
        let bare = extract_references("ticket #9");
        assert!(bare.contains(&Reference::BareIssue(9)));
        assert!(!bare.iter().any(Reference::is_shareable));
    }

    #[test]
    fn strips_references_for_reading() {
        let text = "see https://Example.com/a?b=1 and acme/api#3 for 01a20bb7-3e8e-73bc-b21d-919a40dcaaa5 now";
        let stripped = strip_references(text);
        assert_eq!(
            stripped.split_whitespace().collect::<Vec<_>>(),
            vec!["see", "and", "for", "now"]
        );
        assert_eq!(stripped.len(), text.len());
    }

    #[test]
    fn ignores_look_alikes() {
        for text in [
            "Port 8080 on 192.168.1.10 answers",
            "written in C#3 or F#",
            "entity &#123; in HTML",
            "path a/b/c#12 in a tree",
            "version 1.2.3",
            "",
        ] {
            assert_eq!(refs(text), Vec::<String>::new(), "{text}");
        }
        // The fragment of a non-GitHub URL is not an issue.
        assert_eq!(
            refs("https://example.com/notes#12"),
            vec!["https://example.com/notes"]
        );
    }
}
