// SPDX-License-Identifier: Apache-2.0
//! The Envoy boundary. Only `wire` (input) and `response::encode` (output) see protobuf types.

pub mod pb;
pub mod request;
pub mod service;

pub use request::CheckInput;
pub use service::AuthorizationService;
