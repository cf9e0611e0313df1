// SPDX-License-Identifier: Apache-2.0
//! Configuration hot reload: on SIGHUP, and when the file's content or that of a file it names
//! changes (polled, so it also sees editors that replace the file and Kubernetes ConfigMap and
//! Secret symlink swaps). A new file goes
//! through the whole validation first; a refused one is logged and counted and the running
//! configuration stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::app::State;
use crate::config::{self, ConfigError, Environment};

/// Reloads from `path` now. Returns whether the new configuration was applied. The file is read
/// and parsed on a blocking thread, so a large or hostile file never holds up a Check.
pub async fn reload_file(state: &State, path: &Path, env: &dyn Environment) -> bool {
    let owned = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || config::load_file(&owned))
        .await
        .unwrap_or_else(|_| {
            Err(ConfigError::Parse(
                "reading the file did not complete".into(),
            ))
        });
    let outcome = match loaded {
        Ok(config) => state.reload(config, env).await,
        Err(e) => {
            state.metrics.reload_failures.inc();
            Err(e)
        }
    };
    match outcome {
        Ok(warnings) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::info!(file = %path.display(), "configuration reloaded");
            true
        }
        Err(ConfigError::Invalid(violations)) => {
            for v in violations.iter().filter(|v| v.is_error()) {
                tracing::error!("{v}");
            }
            tracing::error!(file = %path.display(), "configuration refused; the running configuration stays");
            false
        }
        Err(e) => {
            tracing::error!(file = %path.display(), "configuration refused ({e}); the running configuration stays");
            false
        }
    }
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

/// The digests of the configuration file and of every file the running configuration names
/// (a Kubernetes Secret volume updates its files in place of the config), read on a blocking
/// thread.
async fn digests(state: &State, path: &Path) -> Watched {
    let config = state.runtime().config.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let files: Vec<String> = config
            .referenced_files()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let digests = std::iter::once(digest(&path))
            .chain(files.iter().map(|f| digest(Path::new(f))))
            .collect();
        Watched { files, digests }
    })
    .await
    .unwrap_or_default()
}

/// What the watcher compares: the files the running configuration names, and the digests of
/// the configuration file and of those.
#[derive(Default, PartialEq)]
struct Watched {
    files: Vec<String>,
    digests: Vec<Option<[u8; 32]>>,
}

/// Reloads `path` on SIGHUP and whenever its content, or that of a file it names (a secret, a
/// key), changes (checked every `interval`). Runs until the process ends.
pub async fn watch(
    state: Arc<State>,
    path: PathBuf,
    interval: Duration,
    env: Arc<dyn Environment>,
) {
    let mut last = digests(&state, &path).await;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let by_signal = tokio::select! {
            _ = signalled => true,
            () = tokio::time::sleep(interval) => false,
        };
        let current = digests(&state, &path).await;
        if by_signal || current != last {
            reload_file(&state, &path, env.as_ref()).await;
            last = current;
            if state.runtime().config.referenced_files() != last.files {
                // The new configuration names other files: watch those from now on.
                last = digests(&state, &path).await;
            }
        }
    }
}
