//! The operator on a real cluster, driven the way a user would: install the CRDs, apply a
//! MemoryTenant, wait for Ready, use the API key from its Secret against the platform, delete it
//! and check that it is cleaned up.
//!
//! Runs only when `KUBECONFIG` names a cluster where the chart (`charts/memoryc`) is installed
//! (set when the tests are built); otherwise cargo reports it ignored, with the reason. Settings: `MEMORYC_E2E_NAMESPACE` (the operator's and
//! shared platform's namespace, default `memoryc-system`), `MEMORYC_E2E_PLATFORM_SERVICE`
//! (default `memoryc-platform`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use memoryc_e2e::{Running, free_port, wait_until_ready};

fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("kubectl").args(args).output()?;
    if !output.status.success() {
        anyhow::bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).to_string())
}

fn kubectl_apply(manifest: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?
        .write_all(manifest.as_bytes())?;
    anyhow::ensure!(child.wait()?.success(), "kubectl apply failed");
    Ok(())
}

#[tokio::test]
#[cfg_attr(
    not(memoryc_cluster),
    ignore = "KUBECONFIG was not set when the tests were built, so there is no cluster; point it \
              at a cluster with the memoryc chart installed to run this test"
)]
async fn a_memory_tenant_applied_with_kubectl_serves_its_admin_key_and_is_cleaned_up()
-> anyhow::Result<()> {
    anyhow::ensure!(
        Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok(),
        "KUBECONFIG is set but kubectl is not installed"
    );
    let system = std::env::var("MEMORYC_E2E_NAMESPACE").unwrap_or_else(|_| "memoryc-system".into());
    let service =
        std::env::var("MEMORYC_E2E_PLATFORM_SERVICE").unwrap_or_else(|_| "memoryc-platform".into());
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds");
    for file in ["memorytenants.yaml", "integrationbindings.yaml"] {
        kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &crds.join(file).display().to_string(),
        ])?;
    }
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/memorytenants.memoryc.dev",
        "--timeout=60s",
    ])?;

    let name = format!("e2e-{}", std::process::id());
    let namespace = format!("memoryc-{name}");
    kubectl_apply(&format!(
        "apiVersion: memoryc.dev/v1alpha1\nkind: MemoryTenant\nmetadata:\n  name: {name}\nspec:\n  \
         displayName: End-to-end\n  isolation: Shared\n  deletionPolicy: Delete\n"
    ))?;
    let waited = kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("memorytenant/{name}"),
        "--timeout=300s",
    ]);
    if let Err(error) = waited {
        let status = kubectl(&["get", "memorytenant", &name, "-o", "yaml"]).unwrap_or_default();
        anyhow::bail!("{error}\n{status}");
    }
    let key = kubectl(&[
        "get",
        "secret",
        "-n",
        &namespace,
        &format!("{name}-credentials"),
        "-o",
        "go-template={{index .data \"api-key\" | base64decode}}",
    ])?;
    anyhow::ensure!(key.starts_with("mck_"), "unexpected key {key:?}");

    let port = free_port();
    let _forward = Running(
        Command::new("kubectl")
            .args([
                "port-forward",
                "-n",
                &system,
                &format!("svc/{service}"),
                &format!("{port}:8080"),
            ])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    anyhow::ensure!(
        wait_until_ready(
            &format!("{base}/monitoring/health"),
            Duration::from_secs(60)
        )
        .await,
        "the shared platform did not answer through the port-forward"
    );
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/memories"))
        .header("X-API-Key", &key)
        .json(&serde_json::json!({"content": "The e2e tenant prefers short answers.", "category": "PREFERENCE"}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "POST /memories answered {}",
        created.status()
    );

    kubectl(&[
        "delete",
        "memorytenant",
        &name,
        "--wait=true",
        "--timeout=180s",
    ])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while kubectl(&["get", "namespace", &namespace]).is_ok() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "namespace {namespace} was not removed"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let refused = http
        .get(format!("{base}/memories"))
        .header("X-API-Key", &key)
        .send()
        .await?;
    anyhow::ensure!(
        refused.status().as_u16() == 401,
        "a deleted tenant's key answered {}",
        refused.status()
    );
    Ok(())
}
