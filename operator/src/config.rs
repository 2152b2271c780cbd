//! Operator configuration: flags, each with a `MEMORYC_OPERATOR_*` environment variable, and
//! defaults that work against the services of a laptop or CI machine.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "memoryc-operator", version, about = "Memory-C* operator")]
pub struct Config {
    /// PostgreSQL the operator provisions tenants in, as a role that may create roles and schemas.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,

    /// The shared platform's PostgreSQL login. It gets DML on the control tables and is made
    /// `NOINHERIT` and a member of no tenant role: it serves each Shared tenant through that
    /// tenant's own `$platform` login, recorded in the control tables. Empty: the platform logs
    /// in as the operator's role.
    #[arg(long, env = "MEMORYC_OPERATOR_PLATFORM_DATABASE_ROLE")]
    pub platform_database_role: Option<String>,

    /// Host written into tenants' credentials, when applications reach PostgreSQL by another
    /// name than the operator does. Defaults to the host of `database_url`.
    #[arg(long, env = "MEMORYC_OPERATOR_TENANT_DATABASE_HOST")]
    pub tenant_database_host: Option<String>,

    /// Most connections the operator opens to PostgreSQL.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_DATABASE_MAX_CONNECTIONS",
        default_value_t = 8
    )]
    pub database_max_connections: u32,

    /// Control schema of the shared platform, where `Shared` tenants are registered.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_CONTROL_SCHEMA",
        default_value = "memoryc_control"
    )]
    pub control_schema: String,

    /// Milvus gRPC endpoint the operator creates collections through.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_MILVUS_URL",
        default_value = "http://127.0.0.1:19530"
    )]
    pub milvus_url: String,

    /// Milvus credentials (`user:password` or an API key) when its authentication is on.
    #[arg(long, env = "MEMORYC_OPERATOR_MILVUS_TOKEN", hide_env_values = true)]
    pub milvus_token: Option<String>,

    /// Milvus endpoint given to dedicated platforms. Defaults to `milvus_url`.
    #[arg(long, env = "MEMORYC_OPERATOR_PLATFORM_MILVUS_URL")]
    pub platform_milvus_url: Option<String>,

    /// Base URL of the shared platform, reported to `Shared` tenants. Empty: the installation
    /// runs no shared platform, and `Shared` tenants are refused.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_SHARED_PLATFORM_URL",
        default_value = "http://memoryc-platform.memoryc-system.svc:8080"
    )]
    pub shared_platform_url: String,

    /// Image of dedicated platforms, unless a tenant names its own.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_PLATFORM_IMAGE",
        default_value = "memoryc/platform:0.1.0"
    )]
    pub platform_image: String,

    /// Where the embedding model lives inside the platform image.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_PLATFORM_MODEL_DIR",
        default_value = "/opt/memoryc/model"
    )]
    pub platform_model_dir: String,

    /// Namespace of the operator and the shared platform; tenant namespaces accept traffic from it.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_NAMESPACE",
        default_value = "memoryc-system"
    )]
    pub system_namespace: String,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "MEMORYC_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Lease (in `system_namespace`) that elects the one active replica.
    #[arg(
        long,
        env = "MEMORYC_OPERATOR_LEASE_NAME",
        default_value = "memoryc-operator"
    )]
    pub lease_name: String,

    /// This replica's name in the Lease; the pod name in a cluster.
    #[arg(long, env = "MEMORYC_OPERATOR_IDENTITY")]
    pub identity: Option<String>,

    /// How long a Lease holds without renewal, in seconds.
    #[arg(long, env = "MEMORYC_OPERATOR_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,

    /// Print, as JSON, the environment variables and their defaults, the paths served, the
    /// tenant-admin Role's rules and the kinds of object applied, then exit.
    #[arg(long)]
    pub describe: bool,

    /// `json` (default) or `text`; the level comes from `RUST_LOG`.
    #[arg(long, env = "MEMORYC_OPERATOR_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
}

impl Config {
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.max(2))
    }
}

impl Config {
    /// The installation settings the builders use; `database` is where the operator reached
    /// PostgreSQL, which applications use too unless `tenant_database_host` says otherwise.
    pub fn settings(
        &self,
        database: &crate::settings::DatabaseAddress,
    ) -> crate::settings::Settings {
        let mut database = database.clone();
        if let Some(host) = &self.tenant_database_host {
            database.host = host.clone();
        }
        crate::settings::Settings {
            shared_control_schema: self.control_schema.clone(),
            shared_platform_url: Some(self.shared_platform_url.trim())
                .filter(|url| !url.is_empty())
                .map(str::to_string),
            platform_image: self.platform_image.clone(),
            platform_model_dir: self.platform_model_dir.clone(),
            platform_milvus_url: self
                .platform_milvus_url
                .clone()
                .unwrap_or_else(|| self.milvus_url.clone()),
            system_namespace: self.system_namespace.clone(),
            database,
            milvus_authenticated: self.milvus_token.as_deref().is_some_and(|t| !t.is_empty()),
        }
    }

    /// This replica's name in the Lease: the configured identity, else the host name.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("memoryc-operator-{}", std::process::id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_on_a_laptop_and_flags_override() {
        let config = Config::try_parse_from(["memoryc-operator"]).expect("defaults");
        assert_eq!(config.control_schema, "memoryc_control");
        assert_eq!(config.lease_duration(), Duration::from_secs(15));
        let config = Config::try_parse_from([
            "memoryc-operator",
            "--tenant-database-host",
            "db.internal",
            "--platform-milvus-url",
            "http://milvus.internal:19530",
        ])
        .expect("flags");
        let address = crate::settings::DatabaseAddress {
            host: "127.0.0.1".into(),
            port: 5432,
            dbname: "memoryc".into(),
        };
        let settings = config.settings(&address);
        assert_eq!(settings.database.host, "db.internal");
        assert_eq!(settings.database.dbname, "memoryc");
        assert_eq!(settings.platform_milvus_url, "http://milvus.internal:19530");
        assert_eq!(
            settings.shared_platform_url.as_deref(),
            Some("http://memoryc-platform.memoryc-system.svc:8080")
        );
    }

    #[test]
    fn an_empty_shared_platform_url_means_there_is_none() {
        let address = crate::settings::DatabaseAddress {
            host: "127.0.0.1".into(),
            port: 5432,
            dbname: "memoryc".into(),
        };
        for empty in ["", "  "] {
            let config =
                Config::try_parse_from(["memoryc-operator", "--shared-platform-url", empty])
                    .expect("an empty URL parses");
            assert_eq!(config.settings(&address).shared_platform_url, None);
        }
    }
}
