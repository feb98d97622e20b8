//! Every label, annotation, taint and finalizer key Liqo uses, with their well-known values.
//!
//! The keys are exactly upstream Liqo's, so objects created by liqo-rs and by Liqo are
//! interchangeable and manifests written for Liqo apply unchanged. They are grouped by the Liqo
//! module that owns them:
//!
//! | module | what |
//! |---|---|
//! | [`core`] | peering-wide keys: remote cluster id, tenant namespaces, virtual nodes, lifecycle |
//! | [`replication`] | the CRD replicator (objects copied into the peer's tenant namespace) |
//! | [`authentication`] | nonces, identities, tenants, resource slices |
//! | [`offloading`] | namespace offloading, virtual kubelet, shadow pods, pod placement |
//! | [`reflection`] | reflection of Services, EndpointSlices, Secrets, ... into the remote cluster |
//! | [`networking`] | gateways, firewall and route configurations, the internal fabric |
//! | [`ipam`] | Networks and IPs |
//! | [`storage`] | the virtual storage class and its provisioner |
//! | [`kubernetes`] | Kubernetes-defined keys that Liqo sets or relies on |
//!
//! Labels whose only meaningful value is `"true"` are set to [`TRUE`].
//!
//! Call sites never spell a key: they use these constants or the typed helpers of this module,
//! which build label pairs, label maps and [`Selector`]s from validated ids:
//!
//! ```
//! use liqo_core::ids::ClusterId;
//! use liqo_core::labels;
//!
//! let peer: ClusterId = "milan".parse()?;
//! assert_eq!(
//!     labels::remote_cluster_id(&peer),
//!     ("liqo.io/remote-cluster-id", "milan".to_owned()),
//! );
//! assert_eq!(
//!     labels::virtual_nodes_of(&peer).to_string(),
//!     "liqo.io/type=virtual-node,liqo.io/remote-cluster-id=milan",
//! );
//! # Ok::<(), liqo_core::Error>(())
//! ```

use std::collections::BTreeMap;

use kube::core::{Expression, Selector};

use crate::error::Result;
use crate::ids::ClusterId;

/// The value of every Liqo label or annotation that acts as a boolean flag (`"true"`).
pub const TRUE: &str = "true";

/// Peering-wide keys (upstream `pkg/consts`, core module).
pub mod core {
    /// Label with the id of the peer cluster an object belongs to. Set on tenant namespaces,
    /// ForeignClusters, Tenants, Identities, ResourceSlices, VirtualNodes and virtual Nodes,
    /// gateway resources, Configurations, PublicKeys, remote namespaces and kubeconfig Secrets.
    pub const REMOTE_CLUSTER_ID: &str = "liqo.io/remote-cluster-id";

    /// Label with the kind of a Liqo node; see [`TYPE_VIRTUAL_NODE`].
    pub const TYPE: &str = "liqo.io/type";
    /// Value of [`TYPE`] on the virtual Nodes that stand for a provider cluster.
    pub const TYPE_VIRTUAL_NODE: &str = "virtual-node";

    /// Label marking a tenant namespace (set to [`TRUE`](super::TRUE); selected by presence).
    pub const TENANT_NAMESPACE: &str = "liqo.io/tenant-namespace";

    /// Label with the name of the VirtualNode a virtual-kubelet Deployment runs for.
    pub const VIRTUAL_NODE: &str = "liqo.io/virtual-node";

    /// Label set to [`TRUE`](super::TRUE) by default on everything the Helm chart installs
    /// (the chart's global labels).
    pub const MANAGED: &str = "liqo.io/managed";

    /// Label marking the pod that currently holds a blocking leader-election lease (set to
    /// [`TRUE`](super::TRUE)), e.g. the active IPAM replica.
    pub const LEADER_ELECTION_LEADER: &str = "leaderelection.liqo.io/leader";

    /// Suggested cluster label with the provider of a cluster (e.g. `aks`, `eks`, `kind`),
    /// advertised to peers and copied onto the virtual node.
    pub const PROVIDER: &str = "liqo.io/provider";
    /// Cluster label used in Liqo's documentation to tag peers by region
    /// (`liqoctl ... --cluster-labels topology.liqo.io/region=north`) and select them in
    /// NamespaceOffloading `clusterSelector`s. Liqo never sets it itself; the label it suggests
    /// by default is [`kubernetes::TOPOLOGY_REGION`](super::kubernetes::TOPOLOGY_REGION).
    pub const TOPOLOGY_REGION: &str = "topology.liqo.io/region";

    /// Label on the objects of Liqo's admission webhooks (set to [`TRUE`](super::TRUE)).
    pub const WEBHOOK: &str = "liqo.io/webhook";
    /// Label that exempts an object from Liqo's mutating webhooks (set to [`TRUE`](super::TRUE);
    /// used as a negative object selector).
    pub const WEBHOOK_SKIP: &str = "liqo.io/webhook-skip";
    /// Label on the webhook pods, selected by the webhook Service; see [`WEBHOOK_BACKEND_VALUE`].
    pub const WEBHOOK_BACKEND: &str = "webhook.liqo.io/backend";
    /// Value of [`WEBHOOK_BACKEND`].
    pub const WEBHOOK_BACKEND_VALUE: &str = "liqo-webhook";
    /// Annotation with the name of the Service in front of the webhook server.
    pub const WEBHOOK_SERVICE_NAME: &str = "liqo.io/webhook-service-name";

    /// Annotation set to [`TRUE`](super::TRUE) on the controller manager while Liqo is being
    /// uninstalled.
    pub const UNINSTALLING: &str = "liqo.io/uninstalling";
    /// Annotation set to [`TRUE`](super::TRUE) on resources created at install time.
    pub const PREINSTALLED: &str = "liqo.io/preinstalled";
    /// Annotation marking a ForeignCluster whose peer will never be reachable again, so that its
    /// resources are torn down without waiting for the peer.
    pub const FOREIGN_CLUSTER_PERMANENTLY_UNREACHABLE: &str =
        "liqo.io/foreign-cluster-permanently-unreachable";

    /// Annotation caching which label keys of an object come from a template, so they can be
    /// removed when the template changes.
    pub const TEMPLATE_LABELS: &str = "liqo.io/template-labels";
    /// Annotation caching which annotation keys of an object come from a template.
    pub const TEMPLATE_ANNOTATIONS: &str = "liqo.io/template-annotations";

    /// Value of [`kubernetes::APP_NAME`](super::kubernetes::APP_NAME) on the ConfigMap that
    /// stores the local cluster id.
    pub const CLUSTER_ID_CONFIGMAP_NAME_VALUE: &str = "clusterid-configmap";
    /// Data key of the cluster-id ConfigMap holding the local cluster id.
    pub const CLUSTER_ID_CONFIGMAP_KEY: &str = "CLUSTER_ID";

    /// Value of Liqo's `app.kubernetes.io/managed-by` and `liqo.io/managed-by` labels on
    /// resources managed by Liqo itself (e.g. ClusterRoleBindings, identity Secrets).
    pub const LIQO: &str = "liqo";

    /// Finalizer of the ForeignCluster API-server checker, removed once the checker stopped.
    pub const API_SERVER_CHECKER_FINALIZER: &str = "api-server-checker.liqo.io/finalizer";
}

/// The CRD replicator, which copies NamespaceMaps, ResourceSlices and Renews into the peer's
/// tenant namespace and their status back.
pub mod replication {
    /// Label requesting that an object be replicated to the peer (set to
    /// [`TRUE`](super::TRUE)).
    pub const REPLICATION: &str = "liqo.io/replication";
    /// Label with the id of the cluster an object is replicated to.
    pub const REMOTE_ID: &str = "liqo.io/remoteID";
    /// Label, on a replica, with the id of the cluster the original lives in.
    pub const ORIGIN_ID: &str = "liqo.io/originID";
    /// Label marking an object created in this cluster by a peer's replicator (set to
    /// [`TRUE`](super::TRUE)).
    pub const REPLICATED: &str = "liqo.io/replicated";
    /// Label telling that the local component owning an object is its only writer; the
    /// replicator removes it from replicas.
    pub const OWNERSHIP: &str = "liqo.io/ownership";
    /// Ownership value: the object is owned by the local cluster.
    pub const OWNERSHIP_LOCAL: &str = "Local";
    /// Ownership value: spec owned by the local cluster, status by the remote one (the mode of
    /// every replicated kind).
    pub const OWNERSHIP_SHARED: &str = "Shared";

    /// Finalizer the replicator puts on replicated objects until their replica is deleted.
    pub const RESOURCE_FINALIZER: &str = "crdreplicator.liqo.io/resource";
    /// Finalizer the replicator puts on the kubeconfig Secrets it uses to reach peers.
    pub const OPERATOR_FINALIZER: &str = "crdreplicator.liqo.io/operator";
}

/// Authentication: nonces, identities, tenants and resource slices.
pub mod authentication {
    /// Label on the Secret holding the nonce issued to a consumer.
    pub const NONCE: &str = "liqo.io/nonce";
    /// Label on the Secret holding the nonce signed by the consumer.
    pub const SIGNED_NONCE: &str = "liqo.io/signed-nonce";

    /// Label with the type of an Identity (and of its kubeconfig Secret); see
    /// [`IDENTITY_TYPE_CONTROL_PLANE`] and [`IDENTITY_TYPE_RESOURCE_SLICE`].
    pub const IDENTITY_TYPE: &str = "liqo.io/identity-type";
    /// Identity type of the control-plane identity of a peering (used by the replicator and
    /// the API-server checker).
    pub const IDENTITY_TYPE_CONTROL_PLANE: &str = "ControlPlane";
    /// Identity type of the identity granted for one ResourceSlice (used by its virtual kubelet).
    pub const IDENTITY_TYPE_RESOURCE_SLICE: &str = "ResourceSlice";

    /// Annotation, on a control-plane kubeconfig Secret, with the consumer's tenant namespace in
    /// the provider cluster.
    pub const REMOTE_TENANT_NAMESPACE: &str = "liqo.io/remote-tenant-namespace";
    /// Label with the name of the ResourceSlice an Identity or VirtualNode was created for.
    pub const RESOURCE_SLICE_NAME: &str = "liqo.io/resourceslice-name";
    /// Label with the user that created a ShadowPod, checked against the resource quota.
    pub const CREATOR_USER: &str = "liqo.io/creator-user";
    /// Label on the resources granting peering permissions to a user (value: the user name).
    pub const PEERING_USER_NAME: &str = "liqo.io/peering-user-name";

    /// Annotation on a ResourceSlice asking the consumer to create a VirtualNode once the slice
    /// is accepted (set to [`TRUE`](super::TRUE)).
    pub const CREATE_VIRTUAL_NODE: &str = "liqo.io/create-virtual-node";
    /// Annotation cordoning a ResourceSlice on the provider (set to [`TRUE`](super::TRUE)): its
    /// quota stops admitting new ShadowPods.
    pub const CORDON: &str = "liqo.io/cordon";
    /// Annotation cordoning a whole Tenant on the provider (set to [`TRUE`](super::TRUE)).
    pub const CORDON_TENANT: &str = "liqo.io/cordon-tenant";

    /// Label on the Secret with this cluster's own identity (private key and CSR).
    pub const LOCAL_IDENTITY: &str = "liqo.io/local-identity";
    /// Label on the Secret with the CSR a consumer sent to be signed.
    pub const REMOTE_TENANT_CSR: &str = "liqo.io/remote-tenant-csr";
    /// Label on identity Secrets that already contain a signed certificate.
    pub const CERTIFICATE_AVAILABLE: &str = "liqo.io/certificate-available";
    /// Label with the local cluster id on identity Secrets.
    pub const LOCAL_CLUSTER_ID: &str = "liqo.io/local-cluster-id";
    /// Annotation with the expiration time of the certificate in an identity Secret.
    pub const CERTIFICATE_EXPIRE_TIME: &str = "liqo.io/certificate-expire-time";

    /// Finalizer of the Tenant controller, removed after the tenant's resources are cleaned up.
    pub const TENANT_FINALIZER: &str = "tenant.liqo.io/finalizer";
}

/// Offloading: namespace offloading, virtual nodes and kubelets, shadow pods, pod placement.
pub mod offloading {
    /// Label set to [`TRUE`](super::TRUE) on offloaded namespaces, enabling the pod webhook
    /// that lets their pods be scheduled on virtual nodes.
    pub const SCHEDULING_ENABLED: &str = "liqo.io/scheduling-enabled";
    /// Label set to [`TRUE`](super::TRUE) on local pods offloaded to a remote cluster.
    pub const SHADOW_POD: &str = "liqo.io/shadowPod";
    /// Label set to [`TRUE`](super::TRUE) on offloaded pods whose virtual node is not ready
    /// (the provider is unreachable).
    pub const REMOTE_UNAVAILABLE: &str = "liqo.io/remote-unavailable";

    /// Label with the kind of object another object is materialised from; see
    /// [`MANAGED_BY_SHADOW_POD`] and [`MANAGED_BY_SHADOW_ENDPOINT_SLICE`]. Identity Secrets use
    /// it with value [`core::LIQO`](super::core::LIQO).
    pub const MANAGED_BY: &str = "liqo.io/managed-by";
    /// Value of [`MANAGED_BY`] on provider pods created from a ShadowPod.
    pub const MANAGED_BY_SHADOW_POD: &str = "shadowpod";
    /// Value of [`MANAGED_BY`] on provider EndpointSlices created from a ShadowEndpointSlice.
    pub const MANAGED_BY_SHADOW_ENDPOINT_SLICE: &str = "shadowendpointslice";

    /// Taint key of virtual nodes (value [`TRUE`](super::TRUE), effect
    /// [`VIRTUAL_NODE_TAINT_EFFECT`]); pods allowed to be offloaded get a matching toleration.
    pub const VIRTUAL_NODE_TAINT: &str = "virtual-node.liqo.io/not-allowed";
    /// Effect of the [`VIRTUAL_NODE_TAINT`].
    pub const VIRTUAL_NODE_TAINT_EFFECT: &str = "NoExecute";

    /// Label on the components of the offloading module; see [`COMPONENT_VIRTUAL_KUBELET`].
    pub const COMPONENT: &str = "offloading.liqo.io/component";
    /// Value of [`COMPONENT`] on virtual-kubelet pods.
    pub const COMPONENT_VIRTUAL_KUBELET: &str = "virtual-kubelet";

    /// Label with the name of the local offloaded pod an IP was created for.
    pub const POD_NAME: &str = "offloading.liqo.io/pod-name";
    /// Label with the namespace of the local offloaded pod an IP was created for.
    pub const POD_NAMESPACE: &str = "offloading.liqo.io/pod-namespace";

    /// Annotation on a pod choosing an anti-affinity preset for its remote copy; see the
    /// `ANTI_AFFINITY_PRESET_*` values.
    pub const ANTI_AFFINITY_PRESET: &str = "liqo.io/anti-affinity-preset";
    /// Anti-affinity preset: preferred anti-affinity between replicas.
    pub const ANTI_AFFINITY_PRESET_SOFT: &str = "soft";
    /// Anti-affinity preset: required anti-affinity between replicas.
    pub const ANTI_AFFINITY_PRESET_HARD: &str = "hard";
    /// Anti-affinity preset: propagate the pod's own anti-affinity constraints.
    pub const ANTI_AFFINITY_PRESET_PROPAGATE: &str = "propagate";
    /// Annotation with the comma-separated subset of pod label keys the anti-affinity preset
    /// matches on.
    pub const ANTI_AFFINITY_LABELS: &str = "liqo.io/anti-affinity-labels";

    /// Annotation selecting how an offloaded pod reaches an API server; see
    /// [`API_SERVER_SUPPORT_REMOTE`] and [`API_SERVER_SUPPORT_DISABLED`].
    pub const API_SERVER_SUPPORT: &str = "liqo.io/api-server-support";
    /// The offloaded pod talks to the provider's API server with a remote service account.
    pub const API_SERVER_SUPPORT_REMOTE: &str = "remote";
    /// The offloaded pod gets no API-server access.
    pub const API_SERVER_SUPPORT_DISABLED: &str = "disabled";
    /// Annotation with the provider-side service account of a pod using
    /// [`API_SERVER_SUPPORT_REMOTE`].
    pub const REMOTE_SERVICE_ACCOUNT_NAME: &str = "liqo.io/remote-service-account-name";
    /// Annotation with the RuntimeClass the remote copy of a pod runs with.
    pub const REMOTE_RUNTIME_CLASS_NAME: &str = "liqo.io/remote-runtime-class-name";

    /// Annotation, on a remote namespace, naming the NamespaceMap that manages it.
    pub const MANAGED_BY_NAMESPACE_MAP: &str = "liqo.io/managed-by-namespace-map";
    /// Annotation, on a remote namespace, with the name of the local namespace it mirrors.
    pub const ORIGINAL_NAME: &str = "liqo.io/original-name";
    /// Annotation, on a virtual-kubelet Deployment, with the hash of the VirtualNode's
    /// `offloadingPatch`, to roll the kubelet when the patch changes.
    pub const OFFLOADING_PATCH_HASH: &str = "liqo.io/offloading-patch-hash";

    /// Finalizer of the VirtualNode controller.
    pub const VIRTUAL_NODE_FINALIZER: &str = "virtualnode-controller.liqo.io/finalizer";
    /// Finalizer of the NamespaceMap controller.
    pub const NAMESPACE_MAP_FINALIZER: &str = "namespacemap-controller.liqo.io/finalizer";
    /// Finalizer of the NamespaceOffloading controller.
    pub const NAMESPACE_OFFLOADING_FINALIZER: &str =
        "namespaceoffloading-controller.liqo.io/finalizer";
}

/// Reflection of local objects into remote namespaces by the virtual kubelet.
pub mod reflection {
    /// Annotation excluding an object from reflection under the `DenyList` policy (the default
    /// for Services, Ingresses, ConfigMaps, Secrets and Events).
    pub const SKIP_REFLECTION: &str = "liqo.io/skip-reflection";
    /// Annotation including an object in reflection under the `AllowList` policy.
    pub const ALLOW_REFLECTION: &str = "liqo.io/allow-reflection";
    /// Annotation set to [`TRUE`](super::TRUE) on a Service to keep its node ports in the
    /// remote copy (they are cleared otherwise).
    pub const FORCE_REMOTE_NODE_PORT: &str = "liqo.io/force-remote-node-port";
    /// Annotation set to [`TRUE`](super::TRUE) on a Service to let providers reach each other's
    /// endpoints directly.
    pub const USE_DIRECT_CONNECTIONS: &str = "liqo.io/use-direct-connections";
    /// Annotation, on a ShadowEndpointSlice, carrying the endpoint addresses as seen from each
    /// other provider (direct provider-to-provider connections).
    pub const DIRECT_CONNECTIONS_DATA: &str = "liqo.io/direct-connections-data";

    /// Label, on a reflected object, with the id of the cluster it comes from.
    pub const ORIGIN: &str = "offloading.liqo.io/origin";
    /// Label, on a reflected object, with the id of the cluster it was reflected to.
    pub const DESTINATION: &str = "offloading.liqo.io/destination";
    /// Label, on a reflected object, with the name of the virtual node that reflected it.
    pub const NODE_NAME: &str = "offloading.liqo.io/nodename";

    /// Label, on a Secret holding service-account tokens for an offloaded pod, with the pod name.
    pub const SERVICE_ACCOUNT_FOR_POD_NAME: &str =
        "offloading.liqo.io/service-account-for-pod-name";
    /// Label, on a service-account token Secret, with the service account name.
    pub const SERVICE_ACCOUNT_NAME: &str = "offloading.liqo.io/service-account-name";
    /// Annotation, on a service-account token Secret, with the UID of the pod.
    pub const SERVICE_ACCOUNT_FOR_POD_UID: &str = "offloading.liqo.io/service-account-for-pod-uid";
    /// Annotation, on a service-account token Secret, with the tokens' expiration time.
    pub const SERVICE_ACCOUNT_EXPIRATION: &str = "offloading.liqo.io/service-account-expiration";

    /// Value of [`kubernetes::ENDPOINT_SLICE_MANAGED_BY`](super::kubernetes::ENDPOINT_SLICE_MANAGED_BY)
    /// on EndpointSlices produced by reflection.
    pub const ENDPOINT_SLICE_MANAGED_BY_VALUE: &str = "endpointslice.reflection.liqo.io";
    /// Server-side-apply field manager of reflected objects.
    pub const FIELD_MANAGER: &str = "reflection.liqo.io";
}

/// Networking: gateways, firewall and route configurations, the internal fabric.
pub mod networking {
    /// Label on the components of the networking module; see [`COMPONENT_GATEWAY`].
    pub const COMPONENT: &str = "networking.liqo.io/component";
    /// Value of [`COMPONENT`] on gateway pods.
    pub const COMPONENT_GATEWAY: &str = "gateway";
    /// Label set to [`TRUE`](super::TRUE) on the active replica of a gateway.
    pub const ACTIVE: &str = "networking.liqo.io/active";

    /// Label set to [`TRUE`](super::TRUE) on gateway key Secrets and PublicKeys.
    pub const GATEWAY_RESOURCE: &str = "networking.liqo.io/gateway-resource";
    /// Label set to [`TRUE`](super::TRUE) on the CRDs of gateway templates, so their kinds can
    /// be discovered and watched.
    pub const GATEWAY_TEMPLATE: &str = "networking.liqo.io/gatewaytemplate";
    /// Label with the name of the gateway an object belongs to.
    pub const GATEWAY_NAME: &str = "networking.liqo.io/gateway-name";
    /// Label with the namespace of the gateway an object belongs to.
    pub const GATEWAY_NAMESPACE: &str = "networking.liqo.io/gateway-namespace";
    /// Gateway type of the side that listens (GatewayServer).
    pub const GATEWAY_TYPE_SERVER: &str = "server";
    /// Gateway type of the side that connects (GatewayClient).
    pub const GATEWAY_TYPE_CLIENT: &str = "client";

    /// Label selecting which enforcers apply a FirewallConfiguration; see the
    /// `CATEGORY_*` values.
    pub const FIREWALL_CATEGORY: &str = "networking.liqo.io/firewall-category";
    /// Label narrowing [`FIREWALL_CATEGORY`]; see the `SUBCATEGORY_*` values.
    pub const FIREWALL_SUBCATEGORY: &str = "networking.liqo.io/firewall-subcategory";
    /// Label targeting a FirewallConfiguration at a single gateway (value: the peer cluster id)
    /// or node (value: the node name).
    pub const FIREWALL_UNIQUE: &str = "networking.liqo.io/firewall-unique";
    /// Label selecting which enforcers apply a RouteConfiguration; see the `CATEGORY_*` values.
    pub const ROUTE_CATEGORY: &str = "networking.liqo.io/route-category";
    /// Label narrowing [`ROUTE_CATEGORY`]; see the `SUBCATEGORY_*` values.
    pub const ROUTE_SUBCATEGORY: &str = "networking.liqo.io/route-subcategory";
    /// Label targeting a RouteConfiguration at a single gateway (value: the peer cluster id) or
    /// node (value: the node name).
    pub const ROUTE_UNIQUE: &str = "networking.liqo.io/route-unique";
    /// Category value: enforced by gateways.
    pub const CATEGORY_GATEWAY: &str = "gateway";
    /// Category value: enforced by the fabric on nodes.
    pub const CATEGORY_FABRIC: &str = "fabric";
    /// Subcategory value (gateway category): the gateway side of the internal fabric.
    pub const SUBCATEGORY_FABRIC: &str = "fabric";
    /// Subcategory value (gateway routes): the gateway routes towards one node.
    pub const SUBCATEGORY_FABRIC_NODE: &str = "fabric-node";
    /// Subcategory value (gateway firewall): every gateway.
    pub const SUBCATEGORY_ALL_GATEWAYS: &str = "all-gateways";
    /// Subcategory value (fabric firewall): every node.
    pub const SUBCATEGORY_ALL_NODES: &str = "all-nodes";
    /// Subcategory value (fabric firewall): one node, named by the unique label.
    pub const SUBCATEGORY_SINGLE_NODE: &str = "single-node";

    /// Label with the name of the InternalFabric a Geneve tunnel belongs to.
    pub const INTERNAL_FABRIC_NAME: &str = "networking.liqo.io/internal-fabric-name";
    /// Label with the name of the InternalNode a resource belongs to.
    pub const INTERNAL_NODE_NAME: &str = "networking.liqo.io/internal-node-name";
    /// Label set to [`TRUE`](super::TRUE) on an IP whose remapped address must not be made
    /// reachable from remote clusters.
    pub const HOST_UNREACHABLE: &str = "networking.liqo.io/host-unreachable";
    /// Label set to [`TRUE`](super::TRUE) on the FirewallConfigurations that exempt gateway
    /// Geneve traffic from CNI masquerading.
    pub const GATEWAY_MASQUERADE_BYPASS: &str = "networking.liqo.io/gateway-masquerade-bypass";

    /// Label on the Networks created from a Configuration; see [`CIDR_TYPE_POD`] and
    /// [`CIDR_TYPE_EXTERNAL`].
    pub const CIDR_TYPE: &str = "configuration.liqo.io/cidr-type";
    /// [`CIDR_TYPE`] value: the Network remaps the peer's pod CIDR.
    pub const CIDR_TYPE_POD: &str = "pod";
    /// [`CIDR_TYPE`] value: the Network remaps the peer's external CIDR.
    pub const CIDR_TYPE_EXTERNAL: &str = "external";

    /// Finalizer put on WgGatewayServers/Clients while their ClusterRoleBinding exists.
    pub const CLUSTER_ROLE_BINDING_FINALIZER: &str = "networking.liqo.io/clusterrolebinding";
    /// Finalizer ensuring an InternalFabric's Geneve tunnels are deleted and their ids freed.
    pub const INTERNAL_FABRIC_GENEVE_TUNNEL_FINALIZER: &str =
        "networking.liqo.io/internal-fabric-geneve-tunnel-finalizer";
    /// Legacy finalizer of the InternalFabric controller (only removed, never added).
    pub const INTERNAL_FABRIC_FINALIZER: &str = "internalfabric-controller.liqo.io/finalizer";
    /// Finalizer of the InternalNode route controller.
    pub const INTERNAL_NODES_ROUTE_FINALIZER: &str = "internalnodes-route.liqo.io/finalizer";
    /// Finalizer of the IP-mapping NAT controller.
    pub const IP_MAPPING_NAT_FINALIZER: &str = "ipmapping-nat-controller.liqo.io/finalizer";
    /// Finalizer of the FirewallConfiguration enforcers.
    pub const FIREWALL_CONFIGURATION_FINALIZER: &str =
        "firewallconfigurations-controller.liqo.io/finalizer";
    /// Finalizer of the RouteConfiguration enforcers.
    pub const ROUTE_CONFIGURATION_FINALIZER: &str =
        "routeconfiguration-controller.liqo.io/finalizer";
}

/// IPAM: Networks and IPs.
pub mod ipam {
    /// Label with the type of a Network; see the `NETWORK_TYPE_*` values.
    pub const NETWORK_TYPE: &str = "ipam.liqo.io/network-type";
    /// Network type: the local pod CIDR.
    pub const NETWORK_TYPE_POD_CIDR: &str = "pod-cidr";
    /// Network type: the local service CIDR.
    pub const NETWORK_TYPE_SERVICE_CIDR: &str = "service-cidr";
    /// Network type: the external CIDR, from which IPs for remapped hosts are allocated.
    pub const NETWORK_TYPE_EXTERNAL_CIDR: &str = "external-cidr";
    /// Network type: the internal CIDR of the in-cluster fabric.
    pub const NETWORK_TYPE_INTERNAL_CIDR: &str = "internal-cidr";
    /// Network type: a reserved range never allocated to peers.
    pub const NETWORK_TYPE_RESERVED: &str = "reserved";
    /// Label set to [`TRUE`](super::TRUE) on a Network whose CIDR must be used as is, never
    /// remapped.
    pub const NETWORK_NOT_REMAPPED: &str = "ipam.liqo.io/network-not-remapped";
    /// Label set to [`TRUE`](super::TRUE) on a Network that may overlap others (reference
    /// counted); Networks are exclusive otherwise.
    pub const NETWORK_SHARED: &str = "ipam.liqo.io/network-shared";
    /// Label with the namespace of the Network an object refers to.
    pub const NETWORK_NAMESPACE: &str = "ipam.liqo.io/network-namespace";
    /// Label with the name of the Network an object refers to.
    pub const NETWORK_NAME: &str = "ipam.liqo.io/network-name";

    /// Label with the role of a well-known IP; see [`IP_TYPE_API_SERVER`] and
    /// [`IP_TYPE_API_SERVER_PROXY`].
    pub const IP_TYPE: &str = "ipam.liqo.io/ip-type";
    /// IP type: the address of the local Kubernetes API server, remapped for peers.
    pub const IP_TYPE_API_SERVER: &str = "api-server";
    /// IP type: the address of Liqo's API-server proxy, remapped for peers.
    pub const IP_TYPE_API_SERVER_PROXY: &str = "api-server-proxy";
    /// Label with the name of the EndpointSlice an IP was created from.
    pub const ENDPOINT_SLICE: &str = "ipam.liqo.io/endpointslice";

    /// Finalizer of the Network controller, releasing the CIDR from the IPAM.
    pub const NETWORK_FINALIZER: &str = "network.ipam.liqo.io/finalizer";
    /// Finalizer of the IP controller, releasing the address from the IPAM.
    pub const IP_FINALIZER: &str = "ip.ipam.liqo.io/finalizer";
}

/// Storage: the virtual storage class and its provisioner.
pub mod storage {
    /// Name of Liqo's storage provisioner (the `provisioner` of the virtual StorageClass).
    pub const PROVISIONER: &str = "liqo.io/storage";
    /// Label set to [`TRUE`](super::TRUE) on virtual nodes whose provider offers storage.
    pub const AVAILABLE: &str = "storage.liqo.io/available";
    /// Label, on a real PVC in the storage namespace, with the namespace of its virtual PVC.
    pub const VIRTUAL_PVC_NAMESPACE: &str = "storage.liqo.io/virtual-pvc-namespace";
    /// Label, on a real PVC in the storage namespace, with the name of its virtual PVC.
    pub const VIRTUAL_PVC_NAME: &str = "storage.liqo.io/virtual-pvc-name";
    /// Label marking the namespace where the provisioner creates real PVCs.
    pub const STORAGE_PROVISIONER: &str = "liqo.io/storage-provisioner";
    /// Annotation, on a PVC, with the StorageClass its remote copy uses.
    pub const REMOTE_STORAGE_CLASS: &str = "liqo.io/remote-storage-class";
    /// Annotation, on a PVC, with the comma-separated access modes of its remote copy
    /// (e.g. `ReadWriteOnce,ReadOnlyMany`).
    pub const REMOTE_ACCESS_MODES: &str = "liqo.io/remote-access-modes";
}

/// Kubernetes-defined keys that Liqo sets or relies on.
pub mod kubernetes {
    /// `app.kubernetes.io/name`.
    pub const APP_NAME: &str = "app.kubernetes.io/name";
    /// `app.kubernetes.io/instance`.
    pub const APP_INSTANCE: &str = "app.kubernetes.io/instance";
    /// `app.kubernetes.io/managed-by`.
    pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// `app.kubernetes.io/component`.
    pub const APP_COMPONENT: &str = "app.kubernetes.io/component";
    /// `app.kubernetes.io/part-of`.
    pub const APP_PART_OF: &str = "app.kubernetes.io/part-of";

    /// Region of a node or, as a cluster label, of a whole cluster.
    pub const TOPOLOGY_REGION: &str = "topology.kubernetes.io/region";
    /// The controller that manages an EndpointSlice; see
    /// [`reflection::ENDPOINT_SLICE_MANAGED_BY_VALUE`](super::reflection::ENDPOINT_SLICE_MANAGED_BY_VALUE).
    pub const ENDPOINT_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

    /// Pod Security Admission audit level of a namespace.
    pub const POD_SECURITY_AUDIT: &str = "pod-security.kubernetes.io/audit";
    /// Pod Security Admission enforce level of a namespace.
    pub const POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
    /// Pod Security Admission warn level of a namespace.
    pub const POD_SECURITY_WARN: &str = "pod-security.kubernetes.io/warn";
    /// Pod Security level `privileged` (tenant namespaces use it for all three modes).
    pub const POD_SECURITY_PRIVILEGED: &str = "privileged";
    /// Pod Security level `baseline`.
    pub const POD_SECURITY_BASELINE: &str = "baseline";
    /// Pod Security level `restricted`.
    pub const POD_SECURITY_RESTRICTED: &str = "restricted";
}

/// The `liqo.io/remote-cluster-id` label naming `id`.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let (key, value) = labels::remote_cluster_id(&"rome".parse::<ClusterId>()?);
/// assert_eq!((key, value.as_str()), ("liqo.io/remote-cluster-id", "rome"));
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn remote_cluster_id(id: &ClusterId) -> (&'static str, String) {
    (core::REMOTE_CLUSTER_ID, id.to_string())
}

/// The `liqo.io/type=virtual-node` label of virtual Nodes.
///
/// ```
/// assert_eq!(liqo_core::labels::virtual_node(), ("liqo.io/type", "virtual-node"));
/// ```
pub fn virtual_node() -> (&'static str, &'static str) {
    (core::TYPE, core::TYPE_VIRTUAL_NODE)
}

/// The `liqo.io/remoteID` label naming the cluster an object is replicated to.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let (key, value) = labels::replication_destination(&"rome".parse::<ClusterId>()?);
/// assert_eq!((key, value.as_str()), ("liqo.io/remoteID", "rome"));
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn replication_destination(id: &ClusterId) -> (&'static str, String) {
    (replication::REMOTE_ID, id.to_string())
}

/// The labels that make the CRD replicator copy an object into `destination`'s tenant namespace
/// (`liqo.io/replication=true`, `liqo.io/remoteID=<destination>`), as NamespaceMaps and
/// ResourceSlices carry.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let map = labels::replication_labels(&"rome".parse::<ClusterId>()?);
/// assert_eq!(map["liqo.io/replication"], "true");
/// assert_eq!(map["liqo.io/remoteID"], "rome");
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn replication_labels(destination: &ClusterId) -> BTreeMap<String, String> {
    BTreeMap::from([
        (replication::REPLICATION.to_owned(), TRUE.to_owned()),
        (replication::REMOTE_ID.to_owned(), destination.to_string()),
    ])
}

/// The labels upstream Liqo puts on the tenant namespace of `id`: the remote cluster id, the
/// tenant-namespace marker and the `privileged` Pod Security level for audit, enforce and warn.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let id: ClusterId = "rome".parse()?;
/// let map = labels::tenant_namespace_labels(&id);
/// assert_eq!(map["liqo.io/remote-cluster-id"], "rome");
/// assert_eq!(map["liqo.io/tenant-namespace"], "true");
/// assert!(labels::tenant_namespace_selector(&id).matches(&map));
/// # use kube::core::SelectorExt;
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn tenant_namespace_labels(id: &ClusterId) -> BTreeMap<String, String> {
    let privileged = kubernetes::POD_SECURITY_PRIVILEGED;
    BTreeMap::from([
        (core::REMOTE_CLUSTER_ID.to_owned(), id.to_string()),
        (core::TENANT_NAMESPACE.to_owned(), TRUE.to_owned()),
        (
            kubernetes::POD_SECURITY_AUDIT.to_owned(),
            privileged.to_owned(),
        ),
        (
            kubernetes::POD_SECURITY_ENFORCE.to_owned(),
            privileged.to_owned(),
        ),
        (
            kubernetes::POD_SECURITY_WARN.to_owned(),
            privileged.to_owned(),
        ),
    ])
}

/// Selects the objects labelled with the remote cluster id `id`.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let selector = labels::remote_cluster_selector(&"rome".parse::<ClusterId>()?);
/// assert_eq!(selector.to_string(), "liqo.io/remote-cluster-id=rome");
/// // Ready for `ListParams::default().labels_from(&selector)`.
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn remote_cluster_selector(id: &ClusterId) -> Selector {
    Expression::Equal(core::REMOTE_CLUSTER_ID.to_owned(), id.to_string()).into()
}

/// Selects the tenant namespace of `id`: labelled with its remote cluster id and carrying the
/// tenant-namespace marker (whatever its value, like upstream).
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// let selector = labels::tenant_namespace_selector(&"rome".parse::<ClusterId>()?);
/// assert_eq!(
///     selector.to_string(),
///     "liqo.io/remote-cluster-id=rome,liqo.io/tenant-namespace",
/// );
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn tenant_namespace_selector(id: &ClusterId) -> Selector {
    Selector::from_iter([
        Expression::Equal(core::REMOTE_CLUSTER_ID.to_owned(), id.to_string()),
        Expression::Exists(core::TENANT_NAMESPACE.to_owned()),
    ])
}

/// Selects all virtual Nodes (`liqo.io/type=virtual-node`).
///
/// ```
/// assert_eq!(
///     liqo_core::labels::virtual_node_selector().to_string(),
///     "liqo.io/type=virtual-node",
/// );
/// ```
pub fn virtual_node_selector() -> Selector {
    Expression::Equal(core::TYPE.to_owned(), core::TYPE_VIRTUAL_NODE.to_owned()).into()
}

/// Selects the virtual Nodes standing for the provider `id`.
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_core::labels;
///
/// assert_eq!(
///     labels::virtual_nodes_of(&"rome".parse::<ClusterId>()?).to_string(),
///     "liqo.io/type=virtual-node,liqo.io/remote-cluster-id=rome",
/// );
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn virtual_nodes_of(id: &ClusterId) -> Selector {
    Selector::from_iter([
        Expression::Equal(core::TYPE.to_owned(), core::TYPE_VIRTUAL_NODE.to_owned()),
        Expression::Equal(core::REMOTE_CLUSTER_ID.to_owned(), id.to_string()),
    ])
}

/// Renders equality requirements as a label-selector string (`k1=v1,k2=v2`, in the given
/// order), e.g. for `ListParams::labels` or `kubectl -l`.
///
/// ```
/// use liqo_core::labels::{self, core};
///
/// let selector = labels::selector_string([
///     (core::TYPE, core::TYPE_VIRTUAL_NODE),
///     (core::REMOTE_CLUSTER_ID, "rome"),
/// ]);
/// assert_eq!(selector, "liqo.io/type=virtual-node,liqo.io/remote-cluster-id=rome");
/// assert_eq!(labels::selector_string::<_, &str, &str>([]), "");
/// ```
pub fn selector_string<I, K, V>(pairs: I) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(key.as_ref());
        out.push('=');
        out.push_str(value.as_ref());
    }
    out
}

/// Whether `labels` mark a virtual Node (`liqo.io/type=virtual-node`).
///
/// ```
/// use std::collections::BTreeMap;
/// use liqo_core::labels;
///
/// let mut node_labels = BTreeMap::new();
/// assert!(!labels::is_virtual_node(&node_labels));
/// node_labels.insert("liqo.io/type".to_owned(), "virtual-node".to_owned());
/// assert!(labels::is_virtual_node(&node_labels));
/// ```
pub fn is_virtual_node(labels: &BTreeMap<String, String>) -> bool {
    labels.get(core::TYPE).map(String::as_str) == Some(core::TYPE_VIRTUAL_NODE)
}

/// Reads the remote cluster id from an object's `labels`: `Ok(None)` if the label is absent.
///
/// # Errors
///
/// [`Error::InvalidClusterId`](crate::Error::InvalidClusterId) if the label holds an invalid id.
///
/// ```
/// use std::collections::BTreeMap;
/// use liqo_core::labels;
///
/// let mut map = BTreeMap::new();
/// assert_eq!(labels::remote_cluster_id_from(&map)?, None);
/// map.insert("liqo.io/remote-cluster-id".to_owned(), "rome".to_owned());
/// assert_eq!(labels::remote_cluster_id_from(&map)?.unwrap(), "rome");
/// map.insert("liqo.io/remote-cluster-id".to_owned(), "Rome".to_owned());
/// assert!(labels::remote_cluster_id_from(&map).is_err());
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn remote_cluster_id_from(labels: &BTreeMap<String, String>) -> Result<Option<ClusterId>> {
    labels
        .get(core::REMOTE_CLUSTER_ID)
        .map(|id| ClusterId::new(id.as_str()))
        .transpose()
}

/// A label name (the part after the optional prefix, or a value): at most 63 characters,
/// alphanumerics, `-`, `_`, `.`, starting and ending with an alphanumeric.
fn check_label_name(what: &str, s: &str) -> std::result::Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{what} \"{s}\" is longer than 63 characters"));
    }
    let ok_inner = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ok_ends = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(ok_inner && ok_ends) {
        return Err(format!(
            "{what} \"{s}\" must be alphanumerics, '-', '_' or '.', starting and ending with an \
             alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label key as the API server does: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 characters.
///
/// ```
/// use liqo_core::labels::validate_label_key;
///
/// assert!(validate_label_key("topology.liqo.io/region").is_ok());
/// assert!(validate_label_key("Bad Key").is_err());
/// assert!(validate_label_key("UPPER.case/x").is_err());
/// ```
///
/// # Errors
///
/// [`Error::InvalidLabel`](crate::Error::InvalidLabel) saying what is wrong.
pub fn validate_label_key(key: &str) -> crate::Result<()> {
    let invalid = |reason: String| crate::Error::InvalidLabel {
        text: key.to_owned(),
        reason,
    };
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if name.is_empty() {
        return Err(invalid("empty label key".into()));
    }
    check_label_name("label key", name).map_err(invalid)?;
    if let Some(p) = prefix {
        let valid =
            !p.is_empty() && p.len() <= 253 && p.split('.').all(crate::ids::is_dns1123_label);
        if !valid {
            return Err(invalid(format!(
                "label key prefix \"{p}\" must be a lowercase DNS subdomain (e.g. topology.liqo.io)"
            )));
        }
    }
    Ok(())
}

/// Checks a label value (empty, or a label name).
///
/// # Errors
///
/// [`Error::InvalidLabel`](crate::Error::InvalidLabel) saying what is wrong.
pub fn validate_label_value(value: &str) -> crate::Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    check_label_name("label value", value).map_err(|reason| crate::Error::InvalidLabel {
        text: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use kube::core::SelectorExt;

    use super::*;

    fn id(s: &str) -> ClusterId {
        ClusterId::new(s).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn upstream_key_spellings() {
        assert_eq!(core::REMOTE_CLUSTER_ID, "liqo.io/remote-cluster-id");
        assert_eq!(core::TYPE, "liqo.io/type");
        assert_eq!(core::TYPE_VIRTUAL_NODE, "virtual-node");
        assert_eq!(core::TENANT_NAMESPACE, "liqo.io/tenant-namespace");
        assert_eq!(replication::REPLICATION, "liqo.io/replication");
        assert_eq!(replication::REMOTE_ID, "liqo.io/remoteID");
        assert_eq!(offloading::MANAGED_BY, "liqo.io/managed-by");
        assert_eq!(offloading::SHADOW_POD, "liqo.io/shadowPod");
        assert_eq!(
            offloading::VIRTUAL_NODE_TAINT,
            "virtual-node.liqo.io/not-allowed"
        );
        assert_eq!(offloading::SCHEDULING_ENABLED, "liqo.io/scheduling-enabled");
        assert_eq!(ipam::NETWORK_TYPE, "ipam.liqo.io/network-type");
        assert_eq!(
            networking::GATEWAY_RESOURCE,
            "networking.liqo.io/gateway-resource"
        );
        assert_eq!(
            reflection::FORCE_REMOTE_NODE_PORT,
            "liqo.io/force-remote-node-port"
        );
        assert_eq!(authentication::TENANT_FINALIZER, "tenant.liqo.io/finalizer");
    }

    #[test]
    fn pair_helpers() {
        let peer = id("rome");
        assert_eq!(
            remote_cluster_id(&peer),
            ("liqo.io/remote-cluster-id", "rome".to_owned())
        );
        assert_eq!(virtual_node(), ("liqo.io/type", "virtual-node"));
        assert_eq!(
            replication_destination(&peer),
            ("liqo.io/remoteID", "rome".to_owned())
        );
    }

    #[test]
    fn label_maps() {
        let peer = id("rome");
        assert_eq!(
            replication_labels(&peer),
            map(&[
                ("liqo.io/remoteID", "rome"),
                ("liqo.io/replication", "true")
            ])
        );
        let tenant = tenant_namespace_labels(&peer);
        assert_eq!(tenant.len(), 5);
        assert_eq!(tenant["pod-security.kubernetes.io/enforce"], "privileged");
        assert_eq!(remote_cluster_id_from(&tenant).unwrap(), Some(peer));
    }

    #[test]
    fn selectors_match_what_they_should() {
        let rome = id("rome");
        let milan = id("milan");

        let ns = tenant_namespace_labels(&rome);
        assert!(tenant_namespace_selector(&rome).matches(&ns));
        assert!(!tenant_namespace_selector(&milan).matches(&ns));
        // Upstream selects by presence of the marker, whatever its value.
        let legacy = map(&[
            ("liqo.io/remote-cluster-id", "rome"),
            ("liqo.io/tenant-namespace", ""),
        ]);
        assert!(tenant_namespace_selector(&rome).matches(&legacy));
        let not_tenant = map(&[("liqo.io/remote-cluster-id", "rome")]);
        assert!(!tenant_namespace_selector(&rome).matches(&not_tenant));
        assert!(remote_cluster_selector(&rome).matches(&not_tenant));

        let node = map(&[
            ("liqo.io/type", "virtual-node"),
            ("liqo.io/remote-cluster-id", "rome"),
        ]);
        assert!(is_virtual_node(&node));
        assert!(virtual_node_selector().matches(&node));
        assert!(virtual_nodes_of(&rome).matches(&node));
        assert!(!virtual_nodes_of(&milan).matches(&node));
        assert!(!virtual_node_selector().matches(&not_tenant));
    }

    #[test]
    fn selector_strings() {
        assert_eq!(
            remote_cluster_selector(&id("rome")).to_string(),
            "liqo.io/remote-cluster-id=rome"
        );
        assert_eq!(selector_string([("a", "1")]), "a=1");
        assert_eq!(
            selector_string(vec![
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned())
            ]),
            "b=2,a=1"
        );
        let empty: [(&str, &str); 0] = [];
        assert_eq!(selector_string(empty), "");
    }

    #[test]
    fn reads_remote_cluster_id() {
        assert_eq!(remote_cluster_id_from(&BTreeMap::new()).unwrap(), None);
        assert!(remote_cluster_id_from(&map(&[("liqo.io/remote-cluster-id", "")])).is_err());
    }
}
