//! The gateway's static configuration file (`liqo-gateway --config`, see
//! `docs/networking.md`): the same data plane as from resources, from YAML, for a gateway
//! without a cluster. [`from_yaml`] parses and checks it into a [`GatewayConfig`].
//!
//! ```no_run
//! # async fn f() -> liqo_net::Result<()> {
//! use liqo_net::gateway::file::{FileDefaults, from_yaml};
//!
//! let yaml = "mode: server\nprivateKey: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\ndefaultInterface: eth0\n";
//! let config = from_yaml(yaml, &FileDefaults::new("liqo-tunnel")).await?;
//! assert_eq!(config.tunnel_interface, "liqo-tunnel");
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use ipnetwork::IpNetwork;
use liqo_ipam::remap::{Mapping, RemoteCidrs};
use serde::Deserialize;

use super::{GatewayConfig, Mode, PeerConfig};
use crate::tunnel::{PrivateKey, PublicKey};
use crate::{Error, Result};

/// The static configuration file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StaticConfig {
    mode: String,
    #[serde(default)]
    tunnel_interface: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    listen_port: Option<u16>,
    /// Base64, as `wg genkey` prints it.
    private_key: String,
    #[serde(default)]
    peer: Option<StaticPeer>,
    #[serde(default)]
    remote: StaticRemote,
    #[serde(default)]
    local_pod_cidrs: Vec<String>,
    #[serde(default)]
    local_external_cidr: Option<String>,
    #[serde(default)]
    full_masquerade: bool,
    #[serde(default)]
    default_interface: Option<String>,
    #[serde(default)]
    table: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StaticPeer {
    public_key: String,
    #[serde(default)]
    endpoint: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticRemote {
    #[serde(default)]
    pod: Vec<StaticMapping>,
    #[serde(default)]
    external: Vec<StaticMapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticMapping {
    real: String,
    remapped: String,
}

/// What the command line adds to the file: values the file may leave out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileDefaults {
    /// The tunnel interface when the file names none.
    pub tunnel_interface: String,
    /// The interface towards the outside when the file names none (else: the default
    /// route's, or the route to the peer's endpoint).
    pub default_interface: Option<String>,
    /// Source-NAT everything to the peer, whatever the file says.
    pub full_masquerade: bool,
}

impl FileDefaults {
    /// Defaults with the tunnel interface `tunnel_interface`.
    #[must_use]
    pub fn new(tunnel_interface: impl Into<String>) -> Self {
        Self {
            tunnel_interface: tunnel_interface.into(),
            default_interface: None,
            full_masquerade: false,
        }
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidConfig(message)
}

fn cidr(text: &str) -> Result<IpNetwork> {
    text.parse()
        .map_err(|e| invalid(format!("{text:?} is not a CIDR: {e}")))
}

fn mappings(list: &[StaticMapping]) -> Result<Vec<Mapping>> {
    list.iter()
        .map(|m| {
            Mapping::new(cidr(&m.real)?, cidr(&m.remapped)?)
                .map_err(|e| invalid(format!("cannot map {} to {}: {e}", m.real, m.remapped)))
        })
        .collect()
}

/// The [`GatewayConfig`] of a static configuration file's text, checked.
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming the field that is wrong.
pub async fn from_yaml(text: &str, defaults: &FileDefaults) -> Result<GatewayConfig> {
    let file: StaticConfig =
        serde_yaml::from_str(text).map_err(|e| invalid(format!("not a gateway file: {e}")))?;
    let mode: Mode = file.mode.parse()?;
    let private: PrivateKey = file
        .private_key
        .parse()
        .map_err(|_| invalid("privateKey: expected 32 bytes in base64".to_owned()))?;
    let default_interface = match file
        .default_interface
        .or(defaults.default_interface.clone())
    {
        Some(i) => i,
        None => match crate::sys::default_route_interface().await {
            Some(i) => i,
            None => {
                let endpoint = file.peer.as_ref().and_then(|p| p.endpoint);
                match endpoint {
                    Some(ep) => crate::sys::route_interface(ep.ip()).await,
                    None => None,
                }
                .ok_or_else(|| {
                    invalid("cannot detect the default interface: set defaultInterface".to_owned())
                })?
            }
        },
    };
    let mut config = GatewayConfig::new(mode, private, &default_interface);
    config.tunnel_interface = file
        .tunnel_interface
        .unwrap_or_else(|| defaults.tunnel_interface.clone());
    if let Some(mtu) = file.mtu {
        config.mtu = mtu;
    }
    if let Some(port) = file.listen_port {
        config.listen_port = port;
    }
    if let Some(peer) = file.peer {
        config.peer = Some(PeerConfig {
            public_key: peer
                .public_key
                .parse::<PublicKey>()
                .map_err(|_| invalid("peer.publicKey: expected 32 bytes in base64".to_owned()))?,
            endpoint: peer.endpoint,
        });
    }
    config.remote = RemoteCidrs {
        pod: mappings(&file.remote.pod)?,
        external: mappings(&file.remote.external)?,
    };
    config.local_pod_cidrs = file
        .local_pod_cidrs
        .iter()
        .map(|c| cidr(c))
        .collect::<Result<_>>()?;
    config.local_external_cidr = file.local_external_cidr.as_deref().map(cidr).transpose()?;
    config.full_masquerade = file.full_masquerade || defaults.full_masquerade;
    if let Some(table) = file.table {
        config.table = table;
    }
    config.validate()?;
    Ok(config)
}
