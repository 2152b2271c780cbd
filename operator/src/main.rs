//! `memoryc-operator`: wires configuration, logging, the HTTP endpoints, leader election and the
//! controllers. Everything else lives in the library.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use clap::Parser;
use kube::Client;
use memoryc_operator::config::Config;
use memoryc_operator::context::Context;
use memoryc_operator::leader::LeaderElector;
use memoryc_operator::provision::Backends;
use memoryc_operator::provision::milvus::Milvus;
use memoryc_operator::provision::postgres::Postgres;
use memoryc_operator::telemetry::http::{self, Health};
use memoryc_operator::telemetry::logging;
use memoryc_operator::telemetry::metrics::Metrics;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if config.describe {
        println!("{}", memoryc_operator::describe::describe());
        return ExitCode::SUCCESS;
    }
    logging::init(&config.log_format);
    match run(config).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(%error, "memoryc-operator failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    let listener = http::bind(config.listen).await?;
    tracing::info!(address = %config.listen, "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(http::serve(
        listener,
        Health {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        stopped.clone(),
    ));

    let client = Client::try_default().await?;
    // PostgreSQL may come up after the operator; keep trying, unready, until it answers.
    let postgres = (|| Postgres::connect(&config.database_url, config.database_max_connections))
        .retry(
            ExponentialBuilder::default()
                .with_max_delay(Duration::from_secs(30))
                .without_max_times(),
        )
        .notify(|error, delay| tracing::warn!(%error, ?delay, "PostgreSQL not reachable yet"))
        .await?
        .with_platform_role(config.platform_database_role.clone())?;
    let settings = config.settings(postgres.address());
    let identity = config.identity();
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        Arc::new(Backends {
            postgres,
            milvus: Milvus::new(config.milvus_url.clone()).with_token(config.milvus_token.clone()),
        }),
        metrics,
        Some(identity.clone()),
    ));
    ready.store(true, Ordering::Relaxed);

    let elector = Arc::new(LeaderElector::new(
        client,
        &config.system_namespace,
        &config.lease_name,
        &identity,
        config.lease_duration(),
    ));
    let (leading_tx, mut leading) = watch::channel(false);
    let election = tokio::spawn({
        let elector = elector.clone();
        let stopped = stopped.clone();
        async move { elector.run(leading_tx, stopped).await }
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.send_replace(true);
    });

    let mut stopped_watch = stopped.clone();
    tokio::select! {
        _ = leading.wait_for(|leads| *leads) => {}
        _ = stopped_watch.wait_for(|stopped| *stopped) => {
            let _ = server.await;
            return Ok(ExitCode::SUCCESS);
        }
    }
    tracing::info!(%identity, "leading: starting the controllers");
    let controllers = memoryc_operator::controllers::run(ctx, stopped.clone());
    let lost = async {
        let _ = leading.wait_for(|leads| !*leads).await;
    };
    let code = tokio::select! {
        _ = controllers => ExitCode::SUCCESS,
        _ = lost => {
            // Another replica may act now; this one must not. A restart makes it a standby.
            tracing::error!("lost the leader lease; exiting");
            ExitCode::FAILURE
        }
    };
    election.abort();
    if let Err(error) = elector.release().await {
        tracing::warn!(%error, "cannot release the leader lease");
    }
    server.abort();
    Ok(code)
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
