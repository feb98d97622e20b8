//! Container images without a daemon or a registry: an OCI image (one uncompressed layer) made
//! from files of the host, written as an OCI archive (`oci-layout`, `index.json`, blobs) that
//! `ctr images import` loads into a node's containerd under its full name
//! (`localhost/liqo-rs/<name>:<tag>`).
//!
//! ```
//! use liqo_testenv::image::ImageBuilder;
//!
//! let image = ImageBuilder::new("localhost/liqo-rs/hello", "v1")
//!     .file("/hello.txt", b"hello\n".to_vec(), 0o644)
//!     .entrypoint(["/bin/cat", "/hello.txt"]);
//! let archive = image.archive().unwrap();
//! assert!(!archive.is_empty());
//! assert_eq!(image.reference(), "localhost/liqo-rs/hello:v1");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One entry of the image's file system.
#[derive(Debug, Clone)]
enum Entry {
    File { bytes: Vec<u8>, mode: u32 },
    Symlink { target: String },
    Dir,
}

/// An image under construction (see the [module](self) documentation).
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    name: String,
    tag: String,
    entries: BTreeMap<String, Entry>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ImageBuilder {
    /// An empty image `name:tag` (`name` like `localhost/liqo-rs/busybox`).
    pub fn new(name: impl Into<String>, tag: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            tag: tag.into(),
            entries: BTreeMap::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".to_owned()],
            user: None,
            workdir: None,
        }
    }

    /// The full reference, `name:tag`.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    fn key(path: &str) -> String {
        path.trim_start_matches('/').to_owned()
    }

    /// A regular file with `bytes` and permission `mode`.
    #[must_use]
    pub fn file(mut self, path: &str, bytes: Vec<u8>, mode: u32) -> Self {
        self.entries
            .insert(Self::key(path), Entry::File { bytes, mode });
        self
    }

    /// A file copied from the host (its permissions kept).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the host file cannot be read.
    pub fn host_file(self, path: &str, host: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let bytes =
            std::fs::read(host).map_err(Error::io(format!("reading {}", host.display())))?;
        let mode = std::fs::metadata(host)
            .map_err(Error::io(format!("reading {}", host.display())))?
            .permissions()
            .mode()
            & 0o7777;
        Ok(self.file(path, bytes, mode))
    }

    /// A host binary at `path`, with the shared libraries it loads (from `ldd`) at their host
    /// paths, so a dynamically linked program runs in the image.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the binary or a library cannot be read, [`Error::InvalidConfig`]
    /// when `ldd` fails on it.
    pub fn host_binary(mut self, path: &str, host: &Path) -> Result<Self> {
        self = self.host_file(path, host)?;
        for library in shared_libraries(host)? {
            let inside = library.display().to_string();
            if !self.entries.contains_key(&Self::key(&inside)) {
                self = self.host_file(&inside, &library)?;
            }
        }
        Ok(self)
    }

    /// A symbolic link at `path` to `target`.
    #[must_use]
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.insert(
            Self::key(path),
            Entry::Symlink {
                target: target.to_owned(),
            },
        );
        self
    }

    /// An empty directory.
    #[must_use]
    pub fn dir(mut self, path: &str) -> Self {
        self.entries.insert(Self::key(path), Entry::Dir);
        self
    }

    /// The entrypoint.
    #[must_use]
    pub fn entrypoint<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.entrypoint = args.into_iter().map(Into::into).collect();
        self
    }

    /// The default arguments.
    #[must_use]
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.cmd = args.into_iter().map(Into::into).collect();
        self
    }

    /// The user (`uid:gid`).
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The working directory.
    #[must_use]
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The layer: a tar of the entries, parents first.
    fn layer(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dirs = std::collections::BTreeSet::new();
        for path in self.entries.keys() {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.display().to_string());
                parent = p.parent();
            }
        }
        for (path, entry) in &self.entries {
            if matches!(entry, Entry::Dir) {
                dirs.insert(path.clone());
            }
        }
        let io = |e: std::io::Error| Error::InvalidConfig(format!("building the image layer: {e}"));
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h
        };
        for dir in &dirs {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut h, format!("{dir}/"), std::io::empty())
                .map_err(io)?;
        }
        for (path, entry) in &self.entries {
            match entry {
                Entry::File { bytes, mode } => {
                    let mut h = header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                    builder
                        .append_data(&mut h, path, bytes.as_slice())
                        .map_err(io)?;
                }
                Entry::Symlink { target } => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    builder.append_link(&mut h, path, target).map_err(io)?;
                }
                Entry::Dir => {}
            }
        }
        builder.into_inner().map_err(io)
    }

    /// The OCI archive (a tar of an OCI image layout) `ctr images import` reads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the archive cannot be assembled.
    pub fn archive(&self) -> Result<Vec<u8>> {
        let layer = self.layer()?;
        let layer_digest = format!("sha256:{}", sha256_hex(&layer));
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": self.env},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        if !self.entrypoint.is_empty() {
            config["config"]["Entrypoint"] = serde_json::json!(self.entrypoint);
        }
        if !self.cmd.is_empty() {
            config["config"]["Cmd"] = serde_json::json!(self.cmd);
        }
        if let Some(user) = &self.user {
            config["config"]["User"] = serde_json::json!(user);
        }
        if let Some(dir) = &self.workdir {
            config["config"]["WorkingDir"] = serde_json::json!(dir);
        }
        let config = config.to_string().into_bytes();
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        })
        .to_string()
        .into_bytes();
        let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {
                    "io.containerd.image.name": self.reference(),
                    "org.opencontainers.image.ref.name": self.tag,
                },
            }],
        })
        .to_string()
        .into_bytes();
        let io =
            |e: std::io::Error| Error::InvalidConfig(format!("building the image archive: {e}"));
        let mut out = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            h.set_mtime(0);
            out.append_data(&mut h, path, bytes).map_err(io)
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &index)?;
        for (digest, bytes) in [
            (&layer_digest, &layer),
            (&config_digest, &config),
            (&manifest_digest, &manifest),
        ] {
            let hex = digest.trim_start_matches("sha256:");
            add(&format!("blobs/sha256/{hex}"), bytes)?;
        }
        out.into_inner().map_err(io)
    }

    /// Writes [`archive`](Self::archive) to `path`.
    ///
    /// # Errors
    ///
    /// As [`archive`](Self::archive), and [`Error::Io`] when the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.archive()?;
        std::fs::write(path, bytes).map_err(Error::io(format!("writing {}", path.display())))
    }
}

/// The shared libraries `binary` loads (absolute paths, from `ldd`); none for a static one.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(Error::io("running ldd"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": static, nothing to add.
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The tag of the images the testenv builds (the liqo-rs version).
pub const TAG: &str = env!("CARGO_PKG_VERSION");

/// The pause image (`localhost/liqo-rs/pause`): the static `pause` program built by
/// hack/k8s-binaries.sh, running as nobody.
///
/// # Errors
///
/// As [`ImageBuilder::host_file`].
pub fn pause(pause_binary: &Path) -> Result<ImageBuilder> {
    Ok(ImageBuilder::new("localhost/liqo-rs/pause", TAG)
        .host_file("/pause", pause_binary)?
        .entrypoint(["/pause"])
        .user("65535:65535"))
}

/// The busybox commands the workload image links (a shell, an HTTP server, wget, nc, ...).
const BUSYBOX_APPLETS: &[&str] = &[
    "sh",
    "ash",
    "cat",
    "echo",
    "httpd",
    "wget",
    "nc",
    "sleep",
    "ls",
    "ps",
    "hostname",
    "ip",
    "ping",
    "nslookup",
    "env",
    "id",
    "mkdir",
    "printf",
    "grep",
    "head",
    "tail",
    "true",
    "false",
    "date",
    "ssl_client",
    "kill",
    "rm",
    "touch",
    "test",
    "[",
    "wc",
    "sed",
    "tr",
    "seq",
];

/// The workload image (`localhost/liqo-rs/busybox`): busybox-static with a shell, an HTTP
/// server (`httpd`), `wget`, `nc` and other tools, `/www` for `httpd -h /www`.
///
/// # Errors
///
/// [`Error::Io`] when `/bin/busybox` (Debian's busybox-static) cannot be read.
pub fn busybox() -> Result<ImageBuilder> {
    let mut image = ImageBuilder::new("localhost/liqo-rs/busybox", TAG)
        .host_file("/bin/busybox", Path::new("/bin/busybox"))?
        .file(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
            0o644,
        )
        .file(
            "/etc/group",
            b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
            0o644,
        )
        .file("/www/index.html", b"hello from liqo-rs\n".to_vec(), 0o644)
        // busybox-static resolves names with glibc, which loads its NSS modules at run time.
        .file(
            "/etc/nsswitch.conf",
            b"hosts: files dns\npasswd: files\ngroup: files\n".to_vec(),
            0o644,
        )
        .dir("/tmp")
        .cmd(["/bin/sh"]);
    for module in ["libnss_dns.so.2", "libnss_files.so.2", "libresolv.so.2"] {
        let host = Path::new("/lib/x86_64-linux-gnu").join(module);
        if host.exists() {
            image = image.host_binary(&host.display().to_string(), &host)?;
        }
    }
    for applet in BUSYBOX_APPLETS {
        image = image.symlink(&format!("/bin/{applet}"), "busybox");
    }
    Ok(image)
}

/// An image of a host program (`localhost/liqo-rs/<name>`) with its shared libraries, its
/// entrypoint the program: how liqo-rs's own binaries are packed.
///
/// # Errors
///
/// As [`ImageBuilder::host_binary`].
pub fn program(name: &str, host: &Path) -> Result<ImageBuilder> {
    let inside = format!("/usr/local/bin/{name}");
    Ok(ImageBuilder::new(format!("localhost/liqo-rs/{name}"), TAG)
        .host_binary(&inside, host)?
        .file(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                .to_vec(),
            0o644,
        )
        .dir("/tmp")
        .entrypoint([inside]))
}

/// The tools each liqo-rs binary runs at run time (beside its own shared libraries).
#[must_use]
pub fn runtime_tools(binary: &str) -> &'static [&'static str] {
    match binary {
        // Tunnels, routes, rules and NAT tables.
        "liqo-gateway" | "liqo-fabric" => &["/usr/sbin/ip", "/usr/sbin/nft"],
        _ => &[],
    }
}

/// The liqo-rs reference binaries packed as images.
pub const LIQO_RS_BINARIES: [&str; 5] = [
    "liqo-controller-manager",
    "liqo-virtual-kubelet",
    "liqo-gateway",
    "liqo-fabric",
    "liqoctl",
];

/// The image of liqo-rs binary `name` built in `target_dir` (`target/debug`), with the tools
/// it runs ([`runtime_tools`]) and their libraries: `localhost/liqo-rs/<name>:<version>`.
///
/// # Errors
///
/// As [`ImageBuilder::host_binary`] (a binary not built yet is an [`Error::Io`] naming it).
pub fn liqo_rs(name: &str, target_dir: &Path) -> Result<ImageBuilder> {
    let mut image = program(name, &target_dir.join(name))?;
    for tool in runtime_tools(name) {
        image = image.host_binary(tool, Path::new(tool))?;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_oci_layouts_with_the_full_name() {
        let image = ImageBuilder::new("localhost/liqo-rs/t", "1")
            .file("/a/b.txt", b"x".to_vec(), 0o600)
            .symlink("/a/c", "b.txt")
            .entrypoint(["/a/b.txt"]);
        let bytes = image.archive().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        let mut index = String::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if path == "index.json" {
                use std::io::Read as _;
                entry.read_to_string(&mut index).unwrap();
            }
            names.push(path);
        }
        assert!(names.contains(&"oci-layout".to_owned()));
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("blobs/sha256/"))
                .count(),
            3
        );
        assert!(index.contains("\"io.containerd.image.name\":\"localhost/liqo-rs/t:1\""));
        // The same content gives the same archive (reproducible).
        assert_eq!(bytes, image.archive().unwrap());
    }
}
