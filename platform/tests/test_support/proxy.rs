//! A TCP forwarder that tests switch off and on, to take a real backend "down" for the
//! platform without stopping it for everyone else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct SwitchableProxy {
    pub address: SocketAddr,
    enabled: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl SwitchableProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let enabled = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let accept_enabled = enabled.clone();
        let accept_cut = cut.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !accept_enabled.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = accept_cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            address,
            enabled,
            cut,
        }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}
