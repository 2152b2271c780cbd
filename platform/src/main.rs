//! `memoryc-platform`: serve the API, or manage tenants against the configured backends.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use memoryc_crds::layout::Isolation;
use memoryc_platform::app::{Platform, StartupError, TenantAdmin};
use memoryc_platform::config::{Config, Loaded};
use memoryc_platform::embedding::threads::InferencePlan;
use memoryc_platform::logging;

#[derive(Parser)]
#[command(name = "memoryc-platform", version, about = "Memory-C* platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (configuration from memoryc.toml and MEMORYC_* variables).
    Serve,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Print, as JSON, the MEMORYC_* variables, subcommands and unauthenticated paths.
    Describe,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant and print its first admin API key as JSON.
    Create {
        /// Tenant name: lowercase letters, digits and '-', at most 40 characters.
        name: String,
        /// Human-readable name.
        #[arg(long)]
        display_name: Option<String>,
        /// `Shared` (default) or `Dedicated`.
        #[arg(long)]
        isolation: Option<String>,
    },
    /// List registered tenants as JSON.
    List,
}

/// What this binary reads and serves, as JSON, for tools that check deployments against it
/// (the chart's tests): every `MEMORYC_*` variable, the subcommands and the paths served
/// without a credential.
fn describe() -> serde_json::Value {
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|command| command.get_name().to_string())
        .collect();
    serde_json::json!({
        "environment": Config::environment_variables(),
        "renamed_environment": Config::renamed_environment_variables(),
        "commands": commands,
        "unauthenticated_paths": memoryc_platform::api::unauthenticated_paths(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Describe = cli.command {
        println!("{}", describe());
        return ExitCode::SUCCESS;
    }
    let loaded = match Config::load() {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let plan = InferencePlan::for_this_process(loaded.config.embedding.passes);
    // SAFETY: before the runtime or any other thread starts.
    unsafe { plan.apply_to_process() };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_cli(cli, loaded))
}

async fn run_cli(cli: Cli, loaded: Loaded) -> ExitCode {
    let Loaded { config, renamed } = loaded;
    logging::init(config.server.log_format);
    for setting in &renamed {
        tracing::warn!(
            setting = setting.old,
            replacement = setting.new,
            "{setting}"
        );
    }
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "memoryc-platform failed");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), StartupError> {
    match command {
        Command::Serve => serve(config).await,
        Command::Describe => print_json(&describe()),
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    display_name,
                    isolation,
                },
        } => {
            let admin = TenantAdmin::connect(&config).await?;
            let isolation = match isolation {
                Some(value) => Isolation::parse(&value).ok_or_else(|| {
                    StartupError::Config(format!(
                        "isolation must be Shared or Dedicated, not {value:?}"
                    ))
                })?,
                None => admin.default_isolation,
            };
            let created = admin
                .tenants
                .create(&name, display_name.as_deref(), isolation)
                .await?;
            admin.close().await?;
            print_json(&created)
        }
        Command::Tenant {
            command: TenantCommand::List,
        } => {
            let admin = TenantAdmin::connect(&config).await?;
            let tenants: Vec<serde_json::Value> = admin
                .tenants
                .list()
                .await?
                .into_iter()
                .map(|t| {
                    serde_json::json!({
                        "tenant": t.name.as_str(),
                        "tenant_id": t.tenant_id,
                        "display_name": t.display_name,
                        "isolation": t.isolation.as_str(),
                        "created_at": t.created_at,
                    })
                })
                .collect();
            admin.close().await?;
            print_json(&tenants)
        }
    }
}

async fn serve(config: Config) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    let demo = config.server.demo_tenant;
    let platform = Platform::build(config).await?;
    if demo {
        platform.ensure_demo_tenant().await?;
    }
    platform.serve(listener, shutdown_signal()).await
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), StartupError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| StartupError::Config(format!("cannot print result: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
