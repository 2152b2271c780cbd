//! The audit log: what the guard records (writes, denials, key changes) and what tenant admins
//! read back, page by page.

use std::sync::Arc;

use uuid::Uuid;

use super::ServiceError;
use crate::domain::validation::InputError;
use crate::stores::group_write::GroupWriter;
use crate::stores::{AuditEntry, AuditStore, Tenant};

/// Default and largest page of `GET /audit`.
pub const DEFAULT_AUDIT_PAGE: u64 = 50;
pub const MAX_AUDIT_PAGE: u64 = 500;

/// A page of entries and where the next one starts.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<Uuid>,
}

/// Most entries written in one statement (12 columns each, well below SQLite's and
/// PostgreSQL's parameter limits).
const MAX_ENTRIES_PER_WRITE: usize = 64;

pub struct AuditService {
    store: Arc<dyn AuditStore>,
    writer: GroupWriter<AuditEntry>,
}

impl AuditService {
    /// Starts the writer on the current tokio runtime: entries of requests that finish at the
    /// same time are stored in one statement.
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        let writing = Arc::clone(&store);
        let writer = GroupWriter::start(MAX_ENTRIES_PER_WRITE, move |entries: Vec<AuditEntry>| {
            let store = Arc::clone(&writing);
            async move { store.append(&entries).await }
        });
        Self { store, writer }
    }

    /// Records an entry; returns once it is stored. A failure is logged, never returned: the
    /// request it describes has already been answered, and refusing it now would not undo it.
    pub async fn record(&self, entry: AuditEntry) {
        let (route, outcome) = (entry.route.clone(), entry.outcome.as_str());
        if let Err(error) = self.writer.write(entry).await {
            tracing::error!(%error, %route, outcome, "could not write the audit record");
        }
    }

    pub async fn page(
        &self,
        tenant: &Tenant,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<AuditPage, ServiceError> {
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(InputError::Invalid {
                field: "limit",
                reason: format!("must be between 1 and {MAX_AUDIT_PAGE}"),
            }
            .into());
        }
        // One extra row tells whether another page follows.
        let mut entries = self.store.page(tenant.tenant_id, before, limit + 1).await?;
        let more = entries.len() as u64 > limit;
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_before = if more {
            entries.last().map(|e| e.audit_id)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before,
        })
    }
}
