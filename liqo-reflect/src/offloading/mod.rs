//! Namespace offloading: extending a namespace to provider clusters.
//!
//! - [`namespace_offloading`] (consumer): NamespaceOffloading `offloading` -> desired mappings
//!   in the NamespaceMap of every selected provider, status with per-cluster conditions.
//! - [`namespace_map`] (provider): NamespaceMap replicas -> twin namespaces with their
//!   RoleBinding, `currentMapping` status.
//! - [`shadow_endpointslice`] (provider): ShadowEndpointSlices written by consumers' virtual
//!   kubelets -> EndpointSlices of the reflected Services.
//! - [`webhook`]: the pure admission decisions (pod mutation per `podOffloadingStrategy`,
//!   NamespaceOffloading validation) for a webhook server.
//! - [`pod_policy`]: what a tenant may run on a provider (Pod Security baseline, no
//!   `nodeName` or system priority) and how much (its Quota), for the ShadowPod webhooks.
//! - [`plan`]: the pure decisions of the controllers (remote names, cluster selection, status).
//!
//! The virtual kubelet then reflects each namespace whose mapping is `Accepted`
//! ([`virtual_kubelet::accepted_pairs`](crate::virtual_kubelet::accepted_pairs)).

pub mod admission;
pub mod namespace_map;
pub mod namespace_offloading;
pub mod plan;
pub mod pod_policy;
pub mod shadow_endpointslice;
pub mod shadowpod_admission;
pub mod webhook;
