// SPDX-License-Identifier: Apache-2.0
//! The Envoy boundary. Only `wire` (input) and `response::encode` (output) see protobuf types;
//! the tonic service that joins them is `app::grpc`.

pub mod elicitation;
pub mod mcp;
pub mod pb;
pub mod request;

pub use request::CheckInput;
