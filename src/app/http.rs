// SPDX-License-Identifier: Apache-2.0
//! The HTTP listener: `/healthz`, `/readyz`, `/metrics` and the RFC 9728 protected-resource
//! metadata document, plus the embedded authorization server's endpoints when it is configured.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::State;

/// The router for the HTTP listener.
pub fn router(state: Arc<State>) -> Router {
    let prm_path = state.runtime().resource_metadata_path.clone();
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(&prm_path, get(resource_metadata));
    if prm_path != "/.well-known/oauth-protected-resource" {
        router = router.route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        );
    }
    router
        .merge(crate::authserver::router(
            state.runtime().auth_server.as_deref(),
            state.clone(),
        ))
        .with_state(state)
}

async fn readyz(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn resource_metadata(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    Json(state.runtime().resource_metadata.clone())
}
