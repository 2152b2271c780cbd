//! What the desired-state builders need to know about the installation, apart from the tenant.

/// Installation facts shared by every tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Control schema of the shared platform.
    pub shared_control_schema: String,
    /// Base URL of the shared platform; `None` where the installation runs none, which then
    /// serves Dedicated tenants only.
    pub shared_platform_url: Option<String>,
    /// Default image of dedicated platforms.
    pub platform_image: String,
    /// Model directory inside the platform image.
    pub platform_model_dir: String,
    /// Milvus endpoint given to dedicated platforms.
    pub platform_milvus_url: String,
    /// Namespace of the operator and the shared platform.
    pub system_namespace: String,
    /// PostgreSQL as applications reach it.
    pub database: DatabaseAddress,
    /// Milvus has authentication on (the operator presents a token). Dedicated platforms would
    /// need a Milvus user of their own, limited to their collection, which is not made yet.
    pub milvus_authenticated: bool,
}

/// Where applications reach PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseAddress {
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl Settings {
    /// Settings for tests and examples: the services of a local machine.
    pub fn local() -> Self {
        Self {
            shared_control_schema: "memoryc_control".to_string(),
            shared_platform_url: Some(
                "http://memoryc-platform.memoryc-system.svc:8080".to_string(),
            ),
            platform_image: "memoryc/platform:0.1.0".to_string(),
            platform_model_dir: "/opt/memoryc/model".to_string(),
            platform_milvus_url: "http://127.0.0.1:19530".to_string(),
            system_namespace: "memoryc-system".to_string(),
            database: DatabaseAddress {
                host: "127.0.0.1".to_string(),
                port: 5432,
                dbname: "postgres".to_string(),
            },
            milvus_authenticated: false,
        }
    }
}
