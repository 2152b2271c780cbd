//! Casbin enforcement: the shipped model and policy plus the tenants' rules from the database.
//! The enforcer sits behind an `ArcSwap`: every request reads it without a lock, and a reload
//! builds a new one and swaps it in, so policy changes apply without a restart.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, MgmtApi};
use quick_cache::sync::Cache;

/// The operators' domain. Tenant names are `[a-z0-9-]`, so no tenant can be called this.
pub const PLATFORM_DOMAIN: &str = "_platform";

const SHIPPED_MODEL: &str = include_str!("../../../policies/model.conf");
const SHIPPED_POLICY: &str = include_str!("../../../policies/policy.csv");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("policy line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("casbin: {0}")]
    Casbin(#[from] casbin::Error),
}

/// Where the model and the built-in policy come from.
#[derive(Debug, Clone, Default)]
pub enum PolicySource {
    /// The files shipped in `policies/`, compiled in.
    #[default]
    Shipped,
    /// `model.conf` and `policy.csv` in a directory, re-read on every reload.
    Directory(PathBuf),
}

impl PolicySource {
    async fn texts(&self) -> Result<(String, String), PolicyError> {
        match self {
            PolicySource::Shipped => Ok((SHIPPED_MODEL.to_string(), SHIPPED_POLICY.to_string())),
            PolicySource::Directory(dir) => {
                let read = |name: &str| {
                    let path = dir.join(name);
                    async move {
                        tokio::fs::read_to_string(&path)
                            .await
                            .map_err(|e| PolicyError::Read {
                                path: path.display().to_string(),
                                reason: e.to_string(),
                            })
                    }
                };
                Ok((read("model.conf").await?, read("policy.csv").await?))
            }
        }
    }
}

/// A policy rule as Casbin sees it: `p` (permission) or `g` (role grant) and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLine {
    pub ptype: String,
    pub values: Vec<String>,
}

/// Parses Casbin's CSV policy format: `p, sub, dom, obj, act` or `g, user, role, dom`.
pub fn parse_policy(text: &str) -> Result<Vec<PolicyLine>, PolicyError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let ptype = fields.next().unwrap_or_default().to_string();
        let values: Vec<String> = fields.map(str::to_string).collect();
        let expected = match ptype.as_str() {
            "p" => 4,
            "g" => 3,
            other => {
                return Err(PolicyError::Line {
                    line: index + 1,
                    reason: format!("unknown rule type {other:?}"),
                });
            }
        };
        if values.len() != expected || values.iter().any(String::is_empty) {
            return Err(PolicyError::Line {
                line: index + 1,
                reason: format!("{ptype} rules have {expected} non-empty values"),
            });
        }
        lines.push(PolicyLine { ptype, values });
    }
    Ok(lines)
}

/// Builds the adapter that loads the tenants' stored rules; one per enforcer.
pub type AdapterFactory = Arc<dyn Fn() -> Box<dyn Adapter> + Send + Sync>;

/// Decisions remembered per policy snapshot; a reload starts with an empty memory.
const REMEMBERED_DECISIONS: usize = 100_000;

/// One loaded policy and the decisions taken on it. Casbin evaluates its matcher (a rhai
/// script) against every rule, tens of microseconds per call; the same question on the same
/// snapshot always has the same answer, so it is asked once.
struct Snapshot {
    enforcer: Enforcer,
    decisions: Cache<String, bool>,
}

impl Snapshot {
    fn new(enforcer: Enforcer) -> Self {
        Self {
            enforcer,
            decisions: Cache::new(REMEMBERED_DECISIONS),
        }
    }
}

/// The shared enforcer. Readers never block; reloads are serialised.
pub struct PolicyEnforcer {
    current: ArcSwap<Snapshot>,
    source: PolicySource,
    stored_rules: Option<AdapterFactory>,
    reloading: tokio::sync::Mutex<()>,
}

impl PolicyEnforcer {
    /// Loads the model, the built-in policy and, with `stored_rules`, the tenants' rules.
    pub async fn load(
        source: PolicySource,
        stored_rules: Option<AdapterFactory>,
    ) -> Result<Self, PolicyError> {
        let enforcer = build(&source, stored_rules.as_ref()).await?;
        Ok(Self {
            current: ArcSwap::from_pointee(Snapshot::new(enforcer)),
            source,
            stored_rules,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// Re-reads everything and swaps the new enforcer in; requests in flight finish on the old.
    pub async fn reload(&self) -> Result<(), PolicyError> {
        let _serialised = self.reloading.lock().await;
        let enforcer = build(&self.source, self.stored_rules.as_ref()).await?;
        self.current.store(Arc::new(Snapshot::new(enforcer)));
        Ok(())
    }

    /// Whether any of `subjects` (the caller and its roles) may do `action` on `object` in
    /// `domain`. Errors deny.
    pub fn allows(&self, subjects: &[&str], domain: &str, object: &str, action: &str) -> bool {
        let snapshot = self.current.load();
        subjects.iter().any(|subject| {
            // Unit separators cannot occur in names, so distinct questions get distinct keys.
            let question = format!("{subject}\u{1f}{domain}\u{1f}{object}\u{1f}{action}");
            if let Some(answer) = snapshot.decisions.get(&question) {
                return answer;
            }
            match snapshot.enforcer.enforce((*subject, domain, object, action)) {
                Ok(allowed) => {
                    snapshot.decisions.insert(question, allowed);
                    allowed
                }
                Err(error) => {
                    tracing::error!(%error, subject, domain, object, action, "policy evaluation failed; denying");
                    false
                }
            }
        })
    }
}

async fn build(
    source: &PolicySource,
    stored_rules: Option<&AdapterFactory>,
) -> Result<Enforcer, PolicyError> {
    let (model_text, policy_text) = source.texts().await?;
    let shipped = parse_policy(&policy_text)?;
    let model = DefaultModel::from_str(&model_text).await?;
    let adapter = StoredRules(match stored_rules {
        Some(factory) => factory(),
        None => Box::new(casbin::MemoryAdapter::default()),
    });
    let mut enforcer = Enforcer::new(model, adapter).await?;
    // The shipped rules are added to the model only; they never belong in the database.
    enforcer.enable_auto_save(false);
    for line in shipped {
        // `false` means the database holds the same rule already, which is harmless.
        if line.ptype == "p" {
            enforcer.add_named_policy(&line.ptype, line.values).await?;
        } else {
            enforcer
                .add_named_grouping_policy(&line.ptype, line.values)
                .await?;
        }
    }
    Ok(enforcer)
}

/// Casbin takes adapters by type; this lets the storage behind them be chosen at run time.
struct StoredRules(Box<dyn Adapter>);

#[async_trait::async_trait]
impl Adapter for StoredRules {
    async fn load_policy(&mut self, m: &mut dyn casbin::Model) -> casbin::Result<()> {
        self.0.load_policy(m).await
    }
    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn casbin::Model,
        f: casbin::Filter<'a>,
    ) -> casbin::Result<()> {
        self.0.load_filtered_policy(m, f).await
    }
    async fn save_policy(&mut self, m: &mut dyn casbin::Model) -> casbin::Result<()> {
        self.0.save_policy(m).await
    }
    async fn clear_policy(&mut self) -> casbin::Result<()> {
        self.0.clear_policy().await
    }
    fn is_filtered(&self) -> bool {
        self.0.is_filtered()
    }
    async fn add_policy(
        &mut self,
        sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.0.add_policy(sec, ptype, rule).await
    }
    async fn add_policies(
        &mut self,
        sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        self.0.add_policies(sec, ptype, rules).await
    }
    async fn remove_policy(
        &mut self,
        sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.0.remove_policy(sec, ptype, rule).await
    }
    async fn remove_policies(
        &mut self,
        sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        self.0.remove_policies(sec, ptype, rules).await
    }
    async fn remove_filtered_policy(
        &mut self,
        sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        self.0
            .remove_filtered_policy(sec, ptype, field_index, field_values)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_lines_are_parsed_and_checked() {
        let lines = parse_policy("# c\n\np, reader, *, memories, read\ng, user:1, reader, acme\n")
            .expect("parses");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].values, vec!["user:1", "reader", "acme"]);
        assert!(parse_policy("p, reader, *, memories").is_err());
        assert!(parse_policy("x, a, b, c, d").is_err());
        assert!(parse_policy("p, reader, , memories, read").is_err());
    }

    #[tokio::test]
    async fn the_shipped_files_load_and_deny_by_default() {
        let policy = PolicyEnforcer::load(PolicySource::Shipped, None)
            .await
            .expect("shipped policy loads");
        assert!(policy.allows(&["reader"], "acme", "memories", "read"));
        assert!(!policy.allows(&["reader"], "acme", "memories", "write"));
        assert!(!policy.allows(&["nobody"], "acme", "memories", "read"));
        assert!(!policy.allows(&[], "acme", "memories", "read"));
        // `*` rules never reach the platform domain, and platform rules never reach tenants.
        assert!(!policy.allows(&["tenant-admin"], PLATFORM_DOMAIN, "tenants", "read"));
        assert!(policy.allows(&["platform-admin"], PLATFORM_DOMAIN, "tenants", "read"));
        assert!(!policy.allows(&["platform-admin"], "acme", "memories", "read"));
    }
}
