//! API group `ipam.liqo.io`: address pools and the addresses allocated from them.
//!
//! Used by the liqo-ipam crate (the default `IpamAllocator` persists its state in these objects
//! and rebuilds it from them on restart): a [`Network`](v1alpha1::Network) asks for a CIDR (and
//! gets the CIDR it is remapped to in the status), an [`Ip`](v1alpha1::Ip) asks for an address of
//! the external CIDR that stands for a local IP.

pub mod v1alpha1;
