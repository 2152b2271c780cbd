//! Server-side apply under the operator's single field manager.

use std::fmt::Debug;

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The field manager of every object and status the operator writes.
pub const FIELD_MANAGER: &str = "memoryc-operator";

/// Applies a namespaced `object` and returns what the server holds afterwards. `force` takes
/// over fields another manager (e.g. `kubectl edit`) changed: the operator's desired state wins,
/// which is how drift is corrected.
pub async fn apply<K>(client: &Client, object: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(&object.name_any(), &params(), &Patch::Apply(object))
        .await
}

/// [`apply`] for cluster-scoped objects.
pub async fn apply_cluster<K>(client: &Client, object: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    api.patch(&object.name_any(), &params(), &Patch::Apply(object))
        .await
}

fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}
