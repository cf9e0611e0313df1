// SPDX-License-Identifier: Apache-2.0
//! The `mcp-authz` command: `serve` and `validate`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mcp_authz::app::{self, State};
use mcp_authz::config::{self, ConfigError, ProcessEnv, Violation};

#[derive(Parser)]
#[command(
    name = "mcp-authz",
    version,
    about = "Envoy ext_authz service for MCP servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ext_authz gRPC service and the HTTP listener.
    Serve {
        /// Configuration file (YAML). Reloaded on SIGHUP and when its content changes.
        #[arg(long, short)]
        config: PathBuf,
        /// How often the file is checked for changes, in seconds (0 = only on SIGHUP).
        #[arg(long, default_value_t = 2)]
        watch_interval: u64,
    },
    /// Check a configuration file and report every problem.
    Validate {
        /// Configuration file (YAML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve {
            config,
            watch_interval,
        } => runtime.block_on(serve(config, watch_interval)),
        Command::Validate { config } => validate(&config),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn report(violations: &[Violation]) {
    for v in violations {
        eprintln!("{v}");
    }
}

fn validate(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = config::load_file(path)?;
    let violations = config::validate(&config, &ProcessEnv);
    report(&violations);
    let errors = violations.iter().filter(|v| v.is_error()).count();
    if errors > 0 {
        eprintln!("{}: {errors} error(s)", path.display());
        Ok(ExitCode::FAILURE)
    } else {
        eprintln!("{}: ok", path.display());
        Ok(ExitCode::SUCCESS)
    }
}

async fn serve(path: PathBuf, watch_interval: u64) -> anyhow::Result<ExitCode> {
    let config = config::load_file(&path)?;
    mcp_authz::telemetry::init(config.server.log_format);
    let (state, warnings) = match State::build(&config, &ProcessEnv).await {
        Ok(built) => built,
        Err(ConfigError::Invalid(violations)) => {
            report(&violations);
            eprintln!("{}: refusing to start", path.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let grpc = tokio::net::TcpListener::bind(&config.server.grpc_addr)
        .await
        .with_context(|| format!("cannot bind gRPC listener {}", config.server.grpc_addr))?;
    let http = tokio::net::TcpListener::bind(&config.server.http_addr)
        .await
        .with_context(|| format!("cannot bind HTTP listener {}", config.server.http_addr))?;
    tracing::info!(grpc = %config.server.grpc_addr, http = %config.server.http_addr, "mcp-authz listening");
    let interval = if watch_interval == 0 {
        Duration::from_secs(u64::MAX / 4)
    } else {
        Duration::from_secs(watch_interval)
    };
    let watcher = tokio::spawn(mcp_authz::reload::watch(
        state.clone(),
        path.clone(),
        interval,
        Arc::new(ProcessEnv),
    ));
    app::run(state, grpc, http, shutdown_signal()).await?;
    watcher.abort();
    tracing::info!("mcp-authz stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
