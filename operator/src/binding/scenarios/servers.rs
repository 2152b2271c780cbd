//! The binding scenario with the real PostgreSQL holding the control tables
//! (`MEMORYC_TEST_DATABASE_URL`).

use std::sync::Arc;

use super::{Records, registered_and_unregistered};
use crate::provision::Backends;
use crate::test_support;

#[tokio::test]
async fn a_valid_binding_is_registered_and_unregistered_on_deletion() {
    let control = format!(
        "memoryc_control_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let backends = Arc::new(Backends {
        postgres: test_support::postgres().await,
        milvus: test_support::milvus(),
    });
    registered_and_unregistered(
        Records::Servers {
            backends,
            control: control.clone(),
        },
        &control,
    )
    .await;
}
