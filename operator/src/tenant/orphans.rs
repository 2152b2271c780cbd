//! The orphan sweep: children of a tenant that the operator no longer wants (made by an earlier
//! version under another name, say) are deleted. Every kind the tenant controller applies in
//! the tenant's namespace is listed by the operator's labels for this tenant; an object owned by
//! the tenant (its owner reference) whose name is not in [`desired::children`] goes. Objects the
//! tenant does not own are never touched, whatever their labels.
//!
//! The desired set of a tenant changes only with the operator's version (isolation, namespace
//! and names are fixed for a tenant's life), so each operator process sweeps a tenant once, on
//! its first successful apply, rather than listing ten kinds on every reconcile.

use std::collections::BTreeSet;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ResourceQuota, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource, ResourceExt};
use memoryc_crds::contract::labels;
use serde::de::DeserializeOwned;

use super::desired;
use super::plan::TenantPlan;

/// The kinds swept: every kind applied in the tenant's namespace, i.e. all of
/// [`desired::APPLIED_KINDS`] but the Namespace, which comes first. The operator needs `list`
/// and `delete` on each.
pub fn swept_kinds() -> &'static [&'static str] {
    &desired::APPLIED_KINDS[1..]
}

/// Deletes the tenant's orphaned children; what was deleted, as `Kind name`.
pub async fn sweep(client: &Client, plan: &TenantPlan) -> Result<Vec<String>, kube::Error> {
    let keep: BTreeSet<(&str, String)> = desired::children(plan).into_iter().collect();
    let mut removed = Vec::new();
    sweep_kind::<ServiceAccount>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<ResourceQuota>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<NetworkPolicy>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<Role>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<RoleBinding>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<Secret>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<Deployment>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<Service>(client, plan, &keep, &mut removed).await?;
    sweep_kind::<PodDisruptionBudget>(client, plan, &keep, &mut removed).await?;
    Ok(removed)
}

/// The label selector of everything the operator made for the tenant.
fn selector(plan: &TenantPlan) -> String {
    format!(
        "{}={},{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE,
        labels::TENANT,
        plan.tenant
    )
}

async fn sweep_kind<K>(
    client: &Client,
    plan: &TenantPlan,
    keep: &BTreeSet<(&str, String)>,
    removed: &mut Vec<String>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &plan.namespace);
    let kind = <K as k8s_openapi::Resource>::KIND;
    let listed = api
        .list(&ListParams::default().labels(&selector(plan)))
        .await?;
    for object in listed {
        let name = object.name_any();
        let owned = object
            .owner_references()
            .iter()
            .any(|owner| owner.uid == plan.owner_reference.uid);
        if !owned || keep.contains(&(kind, name.clone())) {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            // Gone already: someone else removed it.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
        removed.push(format!("orphaned {kind} {name} (removed)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Namespace;

    use super::*;

    #[test]
    fn every_kind_applied_but_the_namespace_is_swept() {
        assert_eq!(
            desired::APPLIED_KINDS[0],
            <Namespace as k8s_openapi::Resource>::KIND
        );
        assert_eq!(swept_kinds().len(), desired::APPLIED_KINDS.len() - 1);
    }
}
