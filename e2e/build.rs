//! The cluster test runs when `KUBECONFIG` is set; otherwise cargo reports it ignored, with the
//! reason, instead of passing it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(memoryc_cluster)");
    println!("cargo::rerun-if-env-changed=KUBECONFIG");
    if std::env::var_os("KUBECONFIG").is_some_and(|value| !value.is_empty()) {
        println!("cargo::rustc-cfg=memoryc_cluster");
    }
}
