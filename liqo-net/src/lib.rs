//! Network fabric for liqo-rs.
//!
//! This crate hosts the pieces of the network fabric that make an offloaded pod reachable
//! across clusters, even when both clusters use the same pod CIDR:
//!
//! - [`tunnel`]: the [`TunnelBackend`] trait, the seam between the gateway and the tunnel
//!   implementation (WireGuard by default, anything else a third party plugs in), and the
//!   plain data it speaks (keys, interface and peer specs, status);
//! - [`wireguard`]: the default backend, [`WireGuardBackend`]: the kernel implementation when
//!   the module is there, the embedded userspace one (boringtun) otherwise;
//! - `vxlan` (feature `vxlan`): `VxlanBackend`, a plain VXLAN backend for trusted links,
//!   which proves the seam;
//! - [`nat`]: the gateway's 1:1 prefix NAT for a peer's remapped CIDRs, rendered as an
//!   `nft -f` script ([`nat::RemapTables`]);
//! - [`gateway`]: the gateway itself ([`gateway::Gateway`] over any backend: tunnel, policy
//!   routing, NAT, connection check) and its driver from GatewayServer/GatewayClient,
//!   PublicKey and Configuration resources ([`gateway::controller`]), run by `liqo-gateway`;
//! - [`configuration`]: the controller that remaps a peer's CIDRs through the IPAM;
//! - [`overlay`]: the in-cluster VXLAN (or Geneve) overlay from nodes to the gateway, run by
//!   `liqo-fabric`;
//! - [`check`]: the reachability check behind `liqoctl test network`;
//! - [`cluster_cidrs`]: the cluster's pod and service CIDRs, detected;
//! - [`sys`]: async access to `ip` and `nft`.
//!
//! The networking API types live in [`liqo_core::api::networking`]; remapped CIDRs come from
//! [`liqo_ipam::remap`]. How the pieces fit: `docs/networking.md`.
//!
//! ```
//! use liqo_ipam::remap::{Mapping, RemoteCidrs};
//! use liqo_net::nat::RemapTables;
//! use liqo_net::tunnel::{InterfaceSpec, PeerSpec, PrivateKey, PublicKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What a gateway asks of its tunnel backend ...
//! let interface = InterfaceSpec::new("169.254.18.1/30".parse()?, PrivateKey::from_bytes([1; 32]));
//! let peer = PeerSpec::new(PublicKey::from_bytes([2; 32])).with_endpoint("192.0.2.7:51840".parse()?);
//! assert_eq!((interface.mtu, peer.endpoint.map(|e| e.port())), (1340, Some(51840)));
//!
//! // ... and of nftables, when the peer's pod CIDR collides with ours.
//! let peer_cidrs = RemoteCidrs {
//!     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?],
//!     external: vec![],
//! };
//! let script = RemapTables::new("eth0", &interface.name, &peer_cidrs)?.render();
//! assert!(script.contains("dnat prefix to 10.0.0.0/16"));
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod check;
pub mod cluster_cidrs;
pub mod configuration;
pub mod error;
pub mod gateway;
pub mod nat;
pub mod overlay;
pub mod sys;
pub mod tunnel;
#[cfg(feature = "vxlan")]
#[cfg_attr(docsrs, doc(cfg(feature = "vxlan")))]
pub mod vxlan;
pub mod wireguard;

pub use error::{Error, Result};
pub use tunnel::TunnelBackend;
#[cfg(feature = "vxlan")]
pub use vxlan::VxlanBackend;
pub use wireguard::WireGuardBackend;
