//! API group `offloading.liqo.io`: virtual nodes, namespace offloading and pod offloading.
//!
//! Used by the liqo-reflect crate (the virtual kubelet, the reflectors and the namespace
//! offloading controllers) and by the controller-manager: a
//! [`VirtualNode`](v1beta1::VirtualNode) becomes a virtual-kubelet Deployment and a Node,
//! [`NamespaceOffloading`](v1beta1::NamespaceOffloading) and
//! [`NamespaceMap`](v1beta1::NamespaceMap) decide which namespaces exist remotely, and
//! [`ShadowPod`](v1beta1::ShadowPod) / [`ShadowEndpointSlice`](v1beta1::ShadowEndpointSlice) are
//! what the consumer writes in the provider for each offloaded Pod / reflected EndpointSlice,
//! within the limits of a [`Quota`](v1beta1::Quota).

pub mod v1beta1;
