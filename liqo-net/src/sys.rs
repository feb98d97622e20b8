//! Thin, async access to the host's networking tools (`ip`, `nft`) and settings, shared by
//! the gateway, the overlay and the backends that drive the kernel through `iproute2`.
//!
//! Everything here runs the programs with [`tokio::process`], so callers never block the
//! runtime, and turns a failure into [`Error::Command`] carrying the program's stderr.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::{Error, Result};

/// Runs `program` with `args` (and `stdin`, if any) and returns its stdout.
///
/// # Errors
///
/// [`Error::Command`] when the program cannot be started or exits unsuccessfully; the error
/// carries the command line and what the program printed on stderr.
pub async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let command_line = || format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| Error::Command {
        command: command_line(),
        message: format!("cannot start {program}: {e} (is it installed and on PATH?)"),
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| Error::Command {
                command: command_line(),
                message: format!("writing stdin: {e}"),
            })?;
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(|e| Error::Command {
        command: command_line(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: command_line(),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip <args>`.
///
/// # Errors
///
/// As [`run`].
pub async fn ip(args: &[&str]) -> Result<String> {
    run("ip", args, None).await
}

/// Applies an `nft -f` script as one transaction.
///
/// # Errors
///
/// As [`run`]; nothing of the script is applied then.
pub async fn nft_apply(script: &str) -> Result<()> {
    run("nft", &["-f", "-"], Some(script)).await.map(drop)
}

/// Whether the nftables table `ip <name>` exists.
pub async fn nft_table_exists(name: &str) -> bool {
    run("nft", &["list", "table", "ip", name], None)
        .await
        .is_ok()
}

/// Whether the link `name` exists in this network namespace.
pub async fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).await.is_ok()
}

/// Writes a sysctl of this network namespace, e.g. `("net/ipv4/ip_forward", "1")`.
///
/// # Errors
///
/// [`Error::Command`] naming the file when it cannot be written.
pub async fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    tokio::fs::write(&path, value)
        .await
        .map_err(|e| Error::Command {
            command: format!("write {value} to {path}"),
            message: e.to_string(),
        })
}

/// The id of the routing table called `name`, as upstream Liqo derives it (so both pick the
/// same table for the same name): the first four bytes of the SHA-256 of the name read little
/// endian, with the top bit cleared (ids are positive) and bit 8 set, so it is at least 256
/// and never collides with the kernel's `main`, `local` and `default`.
///
/// ```
/// let id = liqo_net::sys::table_id("liqo-gw-milan");
/// assert!(id >= 256 && id < 1 << 31);
/// assert_eq!(id, liqo_net::sys::table_id("liqo-gw-milan"));
/// assert_ne!(id, liqo_net::sys::table_id("liqo-gw-naples"));
/// ```
#[must_use]
pub fn table_id(name: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&digest.as_ref()[..4]);
    bytes[3] >>= 1;
    bytes[1] |= 1;
    u32::from_le_bytes(bytes)
}

#[derive(serde::Deserialize)]
struct JsonRoute {
    dev: Option<String>,
}

/// The interface of the IPv4 default route, if there is one.
pub async fn default_route_interface() -> Option<String> {
    let out = ip(&["-j", "-4", "route", "show", "default"]).await.ok()?;
    let routes: Vec<JsonRoute> = serde_json::from_str(&out).ok()?;
    routes.into_iter().find_map(|r| r.dev)
}

/// The interface the kernel would use to reach `addr`.
pub async fn route_interface(addr: std::net::IpAddr) -> Option<String> {
    let addr = addr.to_string();
    let out = ip(&["-j", "route", "get", &addr]).await.ok()?;
    let routes: Vec<JsonRoute> = serde_json::from_str(&out).ok()?;
    routes.into_iter().find_map(|r| r.dev)
}

#[derive(serde::Deserialize)]
struct JsonAddrInfo {
    local: Option<std::net::IpAddr>,
}

#[derive(serde::Deserialize)]
struct JsonLink {
    #[serde(default)]
    addr_info: Vec<JsonAddrInfo>,
}

/// The first IPv4 address of interface `name`.
pub async fn interface_ipv4(name: &str) -> Option<std::net::IpAddr> {
    let out = ip(&["-j", "-4", "addr", "show", "dev", name]).await.ok()?;
    let links: Vec<JsonLink> = serde_json::from_str(&out).ok()?;
    links
        .into_iter()
        .flat_map(|l| l.addr_info)
        .find_map(|a| a.local)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_ids_match_upstream() {
        // Computed independently (Python's hashlib, following upstream's generateTableID in
        // pkg/route/table.go) for the same name.
        assert_eq!(super::table_id("liqo-gw-milan"), 1_248_771_386);
    }
}
