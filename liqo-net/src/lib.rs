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
//! - [`nat`]: the gateway's 1:1 prefix NAT for a peer's remapped CIDRs, rendered as an
//!   `nft -f` script ([`nat::RemapTables`]).
//!
//! The gateway, policy routing and the in-cluster overlay will follow. The
//! networking API types live in [`liqo_core::api::networking`]; remapped CIDRs come from
//! [`liqo_ipam::remap`].
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

pub mod error;
pub mod nat;
pub mod tunnel;
pub mod wireguard;

pub use error::{Error, Result};
pub use tunnel::TunnelBackend;
pub use wireguard::WireGuardBackend;
