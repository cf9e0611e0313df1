// SPDX-License-Identifier: Apache-2.0
//! mcp-authz: an Envoy ext_authz gRPC service that gives each MCP server exactly the credential
//! it needs.
//!
//! For every request Envoy calls `Check`, and [`check::check`] runs the pipeline:
//!
//! 1. [`wire`]: `CheckRequest` → the caller's `authorization` and the route's backend name;
//! 2. [`identity`]: verify the caller's JWT (cached by digest);
//! 3. [`strategy`]: the backend's outgoing-auth strategy, which reads the caller's
//!    [`upstream`] token lazily (one store read, one provider);
//! 4. [`response`]: header mutations, or a denial precise enough for an MCP client to log in again.
//!
//! # Layout
//! - [`config`]: the YAML file, its validation rules and the runtime form built from it.
//! - [`authserver`]: the embedded authorization server: login through every upstream IdP,
//!   our tokens, dynamic client registration.
//! - [`app`], `app::http`, [`reload`], [`telemetry`]: wiring, the HTTP listener, hot reload, logs,
//!   metrics and decision audit events.
//! - [`secret`], [`random`], `time`: the ground floor: types that hold credentials and never
//!   print them, unguessable values and their digests, the wall clock.

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
pub mod secret;
pub mod store;
pub mod strategy;
pub mod telemetry;
mod time;
pub mod upstream;
pub mod wire;
