//! Prints the CustomResourceDefinitions as YAML, or with `--write` refreshes the files under
//! `crds/` (for `kubectl apply`) and `charts/memoryc/crds/` (installed by Helm).

use std::process::ExitCode;

fn main() -> ExitCode {
    let documents = match memoryc_crds::resources::crd_documents() {
        Ok(documents) => documents,
        Err(error) => {
            eprintln!("cannot render the CRDs: {error}");
            return ExitCode::FAILURE;
        }
    };
    let write = std::env::args().any(|arg| arg == "--write");
    for (file, yaml) in documents {
        if write {
            for dir in memoryc_crds::resources::crd_directories() {
                let path = dir.join(file);
                if let Err(error) = std::fs::write(&path, &yaml) {
                    eprintln!("cannot write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
        } else {
            print!("---\n{yaml}");
        }
    }
    ExitCode::SUCCESS
}
