//! Leader election on a `coordination.k8s.io/v1` Lease, with kube-lease-manager.
//!
//! Every replica runs [`Leadership::start`]; the holder renews the Lease every
//! `duration - grace` seconds, the others wait until it expires and then take it, so a
//! replica that dies is replaced within the lease duration. The flag starts `false` and
//! follows the Lease; [`Leadership::stop`] releases the Lease (graceful shutdown), so the next
//! replica takes over at once instead of after the lease duration.
//!
//! API calls (RBAC): `get` the Lease, `create` it when missing, `patch` it to take, renew and
//! release it (kube-lease-manager uses server-side apply and strategic-merge patches).

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::k8s::controller::{Error, Metrics};

/// Where and as whom to hold the Lease.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica (the pod name).
    pub identity: String,
    /// Seconds a Lease stays valid without renewal: the take-over time.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// A running election.
#[derive(Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Leadership {
    /// Start electing. Failures to reach the API server are logged and retried with backoff;
    /// they never end the process.
    #[must_use]
    pub fn start(client: Client, config: LeaseConfig, metrics: std::sync::Arc<Metrics>) -> Self {
        let (tx, rx) = watch::channel(false);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            let manager = loop {
                let built = LeaseManagerBuilder::new(client.clone(), &config.name)
                    .with_namespace(&config.namespace)
                    .with_identity(&config.identity)
                    .with_duration(config.duration)
                    .with_grace(config.grace)
                    .build()
                    .await;
                match built {
                    Ok(m) => break m,
                    Err(e) => {
                        let e = Error::Leader(e);
                        tracing::warn!(error = %e, lease = %config.name, "cannot reach the Lease; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            _ = stopped.changed() => return,
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            };
            tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting for the Lease");
            let (mut leading, handle) = manager.watch().await;
            loop {
                tokio::select! {
                    changed = leading.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let now = *leading.borrow_and_update();
                        metrics.leader.set(i64::from(now));
                        tracing::info!(leader = now, identity = %config.identity, "leadership changed");
                        tx.send_replace(now);
                    }
                    _ = stopped.changed() => break,
                }
            }
            // Stop publishing first, then release: dropping the receiver makes the manager
            // release the Lease.
            tx.send_replace(false);
            metrics.leader.set(0);
            drop(leading);
            match tokio::time::timeout(Duration::from_secs(5), handle).await {
                Ok(Ok(Ok(_))) => tracing::info!("Lease released"),
                Ok(Ok(Err(e))) => {
                    tracing::warn!(error = %Error::Leader(e), "releasing the Lease failed");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "the Lease task failed"),
                Err(_) => tracing::warn!("releasing the Lease timed out"),
            }
        });
        Self { rx, stop, task }
    }

    /// A flag that is `true` while this replica holds the Lease.
    #[must_use]
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Stop publishing and release the Lease (bounded: 5 s).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(6), self.task).await;
    }
}
