//! Locating the Kubernetes binaries built by `hack/k8s-binaries.sh`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Kubernetes version of the control planes (matches `hack/k8s-binaries.sh`).
pub const KUBERNETES_VERSION: &str = "v1.36.3";

/// Environment variable that points at a directory with the Kubernetes binaries.
pub const BIN_ENV: &str = "LIQO_K8S_BIN";

/// Binaries a cluster needs.
pub const REQUIRED: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
];

/// A validated directory holding every binary in [`REQUIRED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// The default directory: `$LIQO_K8S_BIN`, else
    /// `$HOME/.cache/liqo-rs/k8s/<version>/bin` (where `hack/k8s-binaries.sh` builds them).
    pub fn default_dir() -> (PathBuf, &'static str) {
        if let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) {
            return (PathBuf::from(dir), "from LIQO_K8S_BIN");
        }
        let cache = std::env::var_os("LIQO_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/liqo-rs")))
            .unwrap_or_else(|| PathBuf::from("/tmp/liqo-rs-cache"));
        (
            cache.join("k8s").join(KUBERNETES_VERSION).join("bin"),
            "the default cache",
        )
    }

    /// Finds the binaries in [`Binaries::default_dir`].
    pub fn discover() -> Result<Self> {
        let (dir, hint) = Self::default_dir();
        Self::in_dir_with_hint(dir, hint)
    }

    /// Uses the binaries in `dir`, checking that all of them are present and executable.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::in_dir_with_hint(dir.into(), "given explicitly")
    }

    fn in_dir_with_hint(dir: PathBuf, source_hint: &'static str) -> Result<Self> {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|b| !is_executable(&dir.join(b)))
            .collect();
        if !missing.is_empty() {
            let missing = if dir.is_dir() {
                missing.join(", ")
            } else {
                "the directory itself".to_owned()
            };
            return Err(Error::BinariesNotFound {
                dir,
                source_hint,
                missing,
            });
        }
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of one binary, e.g. `kube-apiserver`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_names_itself() {
        let err = Binaries::in_dir("/nonexistent/liqo-k8s").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/liqo-k8s"), "{msg}");
        assert!(msg.contains("the directory itself"), "{msg}");
        assert!(msg.contains("hack/k8s-binaries.sh"), "{msg}");
    }

    #[test]
    fn missing_binaries_are_listed() {
        let dir = std::env::temp_dir().join(format!("liqo-testenv-bins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("etcd"), "#!/bin/sh\n").unwrap();
        let msg = Binaries::in_dir(&dir).unwrap_err().to_string();
        // etcd is there but not executable, so it is missing too.
        assert!(msg.contains("etcd, kube-apiserver"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
