// SPDX-License-Identifier: Apache-2.0
//! Generated code for the trimmed Envoy protos in `proto/`.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// `envoy.*` packages.
pub mod envoy {
    /// `envoy.service.*`
    pub mod service {
        /// `envoy.service.auth.*`
        pub mod auth {
            /// `envoy.service.auth.v3`
            pub mod v3 {
                tonic::include_proto!("envoy.service.auth.v3");
            }
        }
    }
    /// `envoy.config.*`
    pub mod config {
        /// `envoy.config.core.*`
        pub mod core {
            /// `envoy.config.core.v3`
            pub mod v3 {
                tonic::include_proto!("envoy.config.core.v3");
            }
        }
    }
    /// `envoy.type.*`
    pub mod r#type {
        /// `envoy.type.v3`
        pub mod v3 {
            tonic::include_proto!("envoy.r#type.v3");
        }
    }
}

/// `google.*` packages.
pub mod google {
    /// `google.rpc`
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// Encoded file-descriptor set of our protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mcp_authz_descriptor");

pub use envoy::config::core::v3 as core;
pub use envoy::service::auth::v3 as auth;
