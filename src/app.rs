// SPDX-License-Identifier: Apache-2.0
//! Wiring: builds the shared [`State`] from a config and runs both listeners until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

use crate::config::runtime::Runtime;
use crate::config::{Config, ConfigError, Environment, Violation};
use crate::telemetry::metrics::Metrics;
use crate::wire::pb::auth::authorization_server::AuthorizationServer;
use crate::wire::pb::FILE_DESCRIPTOR_SET;
use crate::wire::AuthorizationService;

/// Everything a Check or an HTTP handler reads; shared behind an `Arc`.
#[derive(Debug)]
pub struct State {
    /// The validated configuration in runtime form.
    pub runtime: Runtime,
    /// Metric handles.
    pub metrics: Metrics,
    /// Whether the stores answer (drives `/readyz` and gRPC health).
    pub ready: AtomicBool,
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
        let (runtime, warnings) = crate::config::runtime::build(config, env, &metrics).await?;
        let state = Arc::new(Self {
            runtime,
            metrics,
            ready: AtomicBool::new(false),
        });
        Ok((state, warnings))
    }
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

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let readiness = tokio::spawn(watch_readiness(state.clone(), reporter, stop_rx.clone()));

    let grpc_stop = wait_for(stop_rx.clone());
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AuthorizationServer::new(AuthorizationService::new(
            state.clone(),
        )))
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), grpc_stop);
    let http_server =
        axum::serve(http, crate::http::router(state)).with_graceful_shutdown(wait_for(stop_rx));
    let http_server = async move { http_server.await };

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
    readiness.abort();
    grpc_result?;
    http_result.map_err(AppError::Http)
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Keeps gRPC health and `/readyz` in line with whether the store answers.
async fn watch_readiness(
    state: Arc<State>,
    reporter: tonic_health::server::HealthReporter,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut was_ready = None;
    loop {
        let ready = match &state.runtime.store {
            Some(store) => store.ping().await,
            None => true,
        } && !*stop.borrow();
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
            } else {
                tracing::warn!("not ready: upstream token store does not answer");
            }
            was_ready = Some(ready);
        }
        tokio::time::sleep(Duration::from_secs(if ready { 5 } else { 1 })).await;
    }
}
