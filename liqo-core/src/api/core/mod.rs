//! API group `core.liqo.io`: the peers the local cluster knows about.
//!
//! [`ForeignCluster`](v1beta1::ForeignCluster) objects are created and kept up to date by the
//! ForeignCluster controller of the liqo-rs controller-manager (one per peer, named after its
//! cluster ID); every other module (networking, authentication, offloading) reports its state for
//! a peer in that peer's ForeignCluster status.

pub mod v1beta1;
