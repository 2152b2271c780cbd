//! Casbin's [`Adapter`] on sea-orm: tenant-specific rules in the control table `policy_rules`.
//! No maintained adapter supports sea-orm 2, and this keeps the platform on one database stack.

use async_trait::async_trait;
use casbin::error::AdapterError;
use casbin::{Adapter, Filter, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Databases;
use super::entities::policy_rule::{self, Column, Entity as PolicyRule};
use crate::stores::{PolicyRuleStore, StoreError};

/// Casbin rules have at most six values (`v0`..`v5`).
const MAX_VALUES: usize = 6;

#[derive(Clone)]
pub struct SqlPolicyAdapter {
    databases: Databases,
}

impl SqlPolicyAdapter {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }

    /// Every stored rule as `(ptype, values)`, oldest first.
    pub async fn rules(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows = PolicyRule::find()
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::RuleId)
            .all(self.databases.control())
            .await?;
        Ok(rows.into_iter().map(values_of).collect())
    }

    /// Stores a rule; false when it was stored already.
    pub async fn insert(&self, ptype: &str, values: &[String]) -> Result<bool, StoreError> {
        let padded = padded(values)?;
        let row = policy_rule::ActiveModel {
            rule_id: Set(Uuid::now_v7()),
            ptype: Set(ptype.to_string()),
            v0: Set(padded[0].clone()),
            v1: Set(padded[1].clone()),
            v2: Set(padded[2].clone()),
            v3: Set(padded[3].clone()),
            v4: Set(padded[4].clone()),
            v5: Set(padded[5].clone()),
            created_at: Set(chrono::Utc::now()),
        };
        let inserted = PolicyRule::insert(row)
            .on_conflict(
                OnConflict::columns([
                    Column::Ptype,
                    Column::V0,
                    Column::V1,
                    Column::V2,
                    Column::V3,
                    Column::V4,
                    Column::V5,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(self.databases.control())
            .await?;
        Ok(inserted > 0)
    }

    /// Removes rules of `ptype` whose values from `field_index` on equal `values` (an empty
    /// value matches anything); returns how many were removed.
    pub async fn delete_matching(
        &self,
        ptype: &str,
        field_index: usize,
        values: &[String],
    ) -> Result<u64, StoreError> {
        let columns = [
            Column::V0,
            Column::V1,
            Column::V2,
            Column::V3,
            Column::V4,
            Column::V5,
        ];
        if field_index + values.len() > MAX_VALUES {
            return Err(StoreError::Corrupt(format!(
                "a policy rule has at most {MAX_VALUES} values"
            )));
        }
        let mut condition = Condition::all().add(Column::Ptype.eq(ptype));
        for (offset, value) in values.iter().enumerate() {
            if !value.is_empty() {
                condition = condition.add(columns[field_index + offset].eq(value.as_str()));
            }
        }
        let result = PolicyRule::delete_many()
            .filter(condition)
            .exec(self.databases.control())
            .await?;
        Ok(result.rows_affected)
    }
}

#[async_trait]
impl PolicyRuleStore for SqlPolicyAdapter {
    async fn rules(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        SqlPolicyAdapter::rules(self).await
    }

    async fn insert(&self, ptype: &str, values: &[String]) -> Result<bool, StoreError> {
        SqlPolicyAdapter::insert(self, ptype, values).await
    }

    async fn remove(&self, ptype: &str, values: &[String]) -> Result<bool, StoreError> {
        Ok(self.delete_matching(ptype, 0, values).await? > 0)
    }
}

fn padded(values: &[String]) -> Result<[String; MAX_VALUES], StoreError> {
    if values.len() > MAX_VALUES {
        return Err(StoreError::Corrupt(format!(
            "a policy rule has at most {MAX_VALUES} values"
        )));
    }
    let mut padded: [String; MAX_VALUES] = Default::default();
    for (slot, value) in padded.iter_mut().zip(values) {
        slot.clone_from(value);
    }
    Ok(padded)
}

fn values_of(row: policy_rule::Model) -> (String, Vec<String>) {
    let mut values = vec![row.v0, row.v1, row.v2, row.v3, row.v4, row.v5];
    while values.last().is_some_and(String::is_empty) {
        values.pop();
    }
    (row.ptype, values)
}

fn adapter_error(error: StoreError) -> casbin::Error {
    casbin::Error::AdapterError(AdapterError(Box::new(error)))
}

/// The section of a rule type: `p`, `p2`… are permissions, `g`, `g2`… role grants.
fn section_of(ptype: &str) -> &str {
    if ptype.starts_with('g') { "g" } else { "p" }
}

#[async_trait]
impl Adapter for SqlPolicyAdapter {
    async fn load_policy(&mut self, model: &mut dyn Model) -> casbin::Result<()> {
        for (ptype, values) in self.rules().await.map_err(adapter_error)? {
            model.add_policy(section_of(&ptype), &ptype, values);
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        model: &mut dyn Model,
        _filter: Filter<'a>,
    ) -> casbin::Result<()> {
        // The rule set is small; a filtered load is a full load.
        self.load_policy(model).await
    }

    async fn save_policy(&mut self, model: &mut dyn Model) -> casbin::Result<()> {
        self.clear_policy().await?;
        for section in ["p", "g"] {
            let Some(assertions) = model.get_model().get(section) else {
                continue;
            };
            for (ptype, assertion) in assertions {
                for rule in assertion.get_policy() {
                    self.insert(ptype, rule).await.map_err(adapter_error)?;
                }
            }
        }
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        PolicyRule::delete_many()
            .exec(self.databases.control())
            .await
            .map_err(|e| adapter_error(e.into()))?;
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.insert(ptype, &rule).await.map_err(adapter_error)
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut any = false;
        for rule in rules {
            any |= self.insert(ptype, &rule).await.map_err(adapter_error)?;
        }
        Ok(any)
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        let removed = self
            .delete_matching(ptype, 0, &rule)
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }

    async fn remove_policies(
        &mut self,
        sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut any = false;
        for rule in rules {
            any |= self.remove_policy(sec, ptype, rule).await?;
        }
        Ok(any)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        let removed = self
            .delete_matching(ptype, field_index, &field_values)
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }
}
