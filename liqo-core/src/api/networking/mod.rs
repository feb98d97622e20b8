//! API group `networking.liqo.io`: the network fabric between peered clusters.
//!
//! Used by the liqo-net crate (gateways, WireGuard tunnel, routes, nftables NAT, in-cluster
//! overlay) and by the networking controllers of the controller-manager:
//! [`Configuration`](v1beta1::Configuration) holds the CIDRs of a peer and their remapping,
//! [`GatewayServer`](v1beta1::GatewayServer) / [`GatewayClient`](v1beta1::GatewayClient) are
//! rendered from the WireGuard templates into
//! [`WgGatewayServer`](v1beta1::WgGatewayServer) / [`WgGatewayClient`](v1beta1::WgGatewayClient),
//! [`Connection`](v1beta1::Connection) reports the tunnel state,
//! [`InternalFabric`](v1beta1::InternalFabric), [`InternalNode`](v1beta1::InternalNode) and
//! [`GeneveTunnel`](v1beta1::GeneveTunnel) describe the overlay between nodes and gateways, and
//! [`RouteConfiguration`](v1beta1::RouteConfiguration) /
//! [`FirewallConfiguration`](v1beta1::FirewallConfiguration) are the routes and nftables rules the
//! gateway and fabric agents enforce.

pub mod v1beta1;
