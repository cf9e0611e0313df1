// SPDX-License-Identifier: Apache-2.0
//! Compiles the trimmed Envoy protos in `proto/` and writes a file-descriptor set for reflection.
//! protoc comes from the `protoc-bin-vendored` crate, so a fresh machine needs no install step.

// Build scripts are single-threaded, so setting PROTOC races with nothing.
#[allow(clippy::disallowed_methods)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        std::env::set_var("PROTOC", protoc);
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out_dir.join("mcp_authz_descriptor.bin"))
        .compile_protos(
            &[
                "proto/envoy/service/auth/v3/external_auth.proto",
                "proto/envoy/service/auth/v3/attribute_context.proto",
                "proto/envoy/config/core/v3/base.proto",
                "proto/envoy/type/v3/http_status.proto",
                "proto/google/rpc/status.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
