// SPDX-License-Identifier: Apache-2.0
//! Wiring: builds the shared [`State`] from a config and runs both listeners until shutdown.

pub mod build;
pub mod grpc;
pub mod http;
pub mod keys;
mod storage;
mod verifier;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

pub use build::Runtime;
use grpc::AuthorizationService;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

use crate::config::{Config, ConfigError, Environment, Violation};
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::wire::pb::auth::authorization_server::AuthorizationServer;
use crate::wire::pb::FILE_DESCRIPTOR_SET;

/// Everything a Check or an HTTP handler reads; shared behind an `Arc`.
#[derive(Debug)]
pub struct State {
    /// The validated configuration in runtime form; swapped whole on reload.
    runtime: ArcSwap<Runtime>,
    /// Metric handles.
    pub metrics: Metrics,
    /// Whether the stores answer and we are not shutting down (drives `/readyz` and health).
    pub ready: AtomicBool,
    /// Decision audit events, when enabled.
    pub audit: Option<Audit>,
}

impl crate::authserver::Current for State {
    fn auth_server(&self) -> Option<Arc<crate::authserver::AuthServer>> {
        self.runtime().auth_server.clone()
    }
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The HTTP listener failed.
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection setup failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

impl State {
    /// Validates `config` and builds the state. Warnings are returned for the caller to report.
    ///
    /// # Errors
    /// [`ConfigError`] when the config is invalid or a referenced file cannot be used.
    pub async fn build(
        config: &Config,
        env: &dyn Environment,
    ) -> Result<(Arc<Self>, Vec<Violation>), ConfigError> {
        let metrics = Metrics::new();
        let audit =
            Audit::start(&config.server.audit, metrics.audit_dropped.clone()).map_err(|e| {
                ConfigError::Resource {
                    path: "server.audit.file".to_owned(),
                    message: e.to_string(),
                }
            })?;
        let handle = audit.as_ref().map(Audit::handle);
        let (runtime, warnings) = build::build(config.clone(), env, &metrics, handle, None).await?;
        let state = Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            ready: AtomicBool::new(false),
            audit,
        });
        Ok((state, warnings))
    }

    /// The current runtime. A Check takes it once and uses it throughout, so it never sees half
    /// of a reload.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Applies a new configuration: validated in full and built (keeping the store, the
    /// signing key and the caches it does not change), then swapped in at once. On any error the
    /// running configuration stays. Listener addresses, the resource URL, the issuer and the
    /// audit settings need a restart; a reload that changes them is refused.
    ///
    /// # Errors
    /// [`ConfigError`] with every reason the new configuration was refused.
    pub async fn reload(
        &self,
        config: Config,
        env: &dyn Environment,
    ) -> Result<Vec<Violation>, ConfigError> {
        let result = self.try_reload(config, env).await;
        match &result {
            Ok(_) => self.metrics.reloads.inc(),
            Err(_) => self.metrics.reload_failures.inc(),
        };
        result
    }

    async fn try_reload(
        &self,
        config: Config,
        env: &dyn Environment,
    ) -> Result<Vec<Violation>, ConfigError> {
        let current = self.runtime();
        let fixed = restart_only_changes(&current.config, &config);
        if !fixed.is_empty() {
            return Err(ConfigError::Resource {
                path: fixed.join(", "),
                message: "changing this needs a restart; the running configuration stays"
                    .to_owned(),
            });
        }
        let handle = self.audit.as_ref().map(Audit::handle);
        let (runtime, warnings) =
            build::build(config, env, &self.metrics, handle, Some(&current)).await?;
        drop(current);
        let old = self.runtime.swap(Arc::new(runtime));
        // Freeing a large configuration takes time too: not on a Check's worker (unless a Check
        // still holds the old snapshot and lets it go last).
        tokio::task::spawn_blocking(move || drop(old));
        Ok(warnings)
    }
}

/// The settings a reload cannot change (they shape the listeners and the HTTP routes).
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.server != new.server {
        changed.push("server");
    }
    let issuer = |c: &Config| c.auth_server.as_ref().map(|s| s.issuer.clone());
    if issuer(old) != issuer(new) {
        changed.push("authServer.issuer");
    }
    changed
}

/// Serves gRPC (Check, health, reflection v1 and v1alpha) on `grpc` and HTTP on `http` until
/// `shutdown` completes; health reports NOT_SERVING until the store answers.
///
/// # Errors
/// [`AppError`] when a listener fails.
pub async fn run(
    state: Arc<State>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    reporter
        .set_not_serving::<AuthorizationServer<AuthorizationService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let server_config = state.runtime().config.server.clone();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let readiness = tokio::spawn(watch_readiness(state.clone(), reporter, drain_rx));

    let grpc_stop = wait_for(stop_rx.clone());
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(grpc::GrpcOnly(
            AuthorizationServer::new(AuthorizationService::new(state.clone()))
                .max_decoding_message_size(server_config.max_check_request_bytes),
        ))
        .serve_with_incoming_shutdown(nodelay(grpc), grpc_stop);
    let http_server = axum::serve(http, http::router(state.clone()))
        .with_graceful_shutdown(wait_for(stop_rx.clone()));
    let http_server = async move { http_server.await };

    // Shutdown: report NOT_SERVING first, give load balancers `shutdownDelaySeconds` to notice,
    // then stop accepting; in-flight requests get `shutdownGraceSeconds` to finish.
    let delay = Duration::from_secs(server_config.shutdown_delay_seconds);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: health is NOT_SERVING");
        let _ = drain_tx.send(true);
        tokio::time::sleep(delay).await;
        let _ = stop_tx.send(true);
    });
    let grace = Duration::from_secs(server_config.shutdown_grace_seconds);
    let grace_over = async move {
        wait_for(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        (grpc_result, http_result) = async { tokio::join!(grpc_server, http_server) } => {
            grpc_result.map_err(AppError::from).and(http_result.map_err(AppError::Http))
        }
        () = grace_over => {
            tracing::warn!("shutdown grace period over: closing the remaining connections");
            Ok(())
        }
    };
    readiness.abort();
    if let Some(audit) = &state.audit {
        audit.close();
    }
    result
}

/// The accepted connections of `listener` with TCP_NODELAY set: Check answers are small writes,
/// and Nagle's algorithm with delayed ACKs would hold some of them back by ~40 ms. (tonic sets it
/// only for listeners it binds itself.)
pub fn nodelay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// gRPC health and `/readyz`: NOT_SERVING until the store has answered once, SERVING from then
/// on, NOT_SERVING for good from the start of shutdown.
async fn watch_readiness(
    state: Arc<State>,
    reporter: tonic_health::server::HealthReporter,
    mut draining: tokio::sync::watch::Receiver<bool>,
) {
    let mut was_ready = None;
    // Ready once the store has answered; a later store outage only fails the Checks that need
    // the store (503), because taking every replica out of service would fail every backend.
    let mut store_seen = false;
    loop {
        let drain = *draining.borrow();
        let store_answers = match &state.runtime().pipeline.store {
            Some(store) => store.kv().ping().await,
            None => true,
        };
        if store_answers != store_seen && was_ready.is_some() && !drain {
            if store_answers {
                tracing::info!("upstream token store answers again");
            } else {
                tracing::warn!("upstream token store does not answer: Checks that need it get 503");
            }
        }
        store_seen |= store_answers;
        let ready = !drain && store_seen;
        if was_ready != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status(
                    <AuthorizationServer<AuthorizationService> as NamedService>::NAME,
                    status,
                )
                .await;
            state.ready.store(ready, Ordering::Relaxed);
            if ready {
                tracing::info!("ready: serving Checks");
            } else if !drain {
                tracing::warn!("not ready: upstream token store has not answered yet");
            }
            was_ready = Some(ready);
        }
        if drain {
            return;
        }
        let pause = Duration::from_secs(if ready { 5 } else { 1 });
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = draining.changed() => {}
        }
    }
}
