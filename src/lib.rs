// SPDX-License-Identifier: Apache-2.0
//! mcp-authz: an Envoy ext_authz gRPC service that gives each MCP server exactly the credential
//! it needs.
//!
//! For every request Envoy calls `Check`: [`app::grpc`] takes the deadline and one runtime
//! snapshot, [`check::check`] runs the pipeline, and the edge records and encodes the answer:
//!
//! 1. [`wire`]: `CheckRequest` → the caller's `authorization` and the route's backend name;
//! 2. [`identity`]: verify the caller's JWT (cached by digest);
//! 3. [`strategy`]: the backend's outgoing-auth strategy, which reads the caller's
//!    [`upstream`] token lazily (one store read, one provider);
//! 4. [`response`]: header mutations, or a denial precise enough for an MCP client to log in again.
//!
//! # Layout
//! - [`config`]: the YAML file, its rules, and the typed [`config::Spec`] they produce.
//! - [`app`]: assembly (`app::build`, the subsystems from a `Spec`), the gRPC and HTTP edges,
//!   the shared state; [`reload`]: hot reload.
//! - [`authserver`]: the embedded authorization server: login through every upstream IdP,
//!   our tokens, dynamic client registration.
//! - [`oauth`]: outbound OAuth: the one HTTP client, the shared token-endpoint call, the upstream
//!   identity providers.
//! - [`telemetry`]: logs, metrics and decision audit events.
//! - [`store`], [`secret`], [`random`], `time`: the ground floor: the key/value store, types that
//!   hold credentials and never print them, unguessable values and their digests, the wall clock.

pub mod app;
pub mod authserver;
pub mod check;
pub mod config;
pub mod identity;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod oauth;
pub mod random;
pub mod reload;
pub mod response;
pub mod scope;
pub mod secret;
pub mod store;
pub mod strategy;
pub mod telemetry;
mod time;
pub mod tools;
pub mod upstream;
pub mod wire;
