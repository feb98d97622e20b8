//! Pure builders of every object of the peering flow, with upstream Liqo's names, labels and
//! annotations (section 3.2 of the anatomy: B authentication, C resource negotiation, A the
//! networking contract).
//!
//! ```
//! use liqo_auth::forge;
//! use liqo_core::ids::ClusterId;
//!
//! let rome = ClusterId::new("rome")?;
//! let ns = forge::tenant_namespace(&rome);
//! assert_eq!(ns.metadata.name.as_deref(), Some("liqo-tenant-rome"));
//! let nonce = forge::nonce_secret(&rome);
//! assert_eq!(nonce.metadata.namespace.as_deref(), Some("liqo-tenant-rome"));
//! # Ok::<(), liqo_core::Error>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    LocalObjectReference, Namespace, ObjectReference, ResourceQuotaSpec, Secret,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use liqo_core::api::authentication::v1beta1::{
    AuthParams, Identity, IdentitySpec, IdentityType, RESOURCE_SLICE_CLASS_DEFAULT, Renew,
    RenewSpec, ResourceSlice, ResourceSliceSpec, Tenant, TenantSpec,
};
use liqo_core::api::core::v1beta1::{ForeignCluster, ForeignClusterSpec};
use liqo_core::api::networking::v1beta1::{
    Cidr, ClusterConfig, ClusterConfigCidr, Configuration, ConfigurationSpec, Endpoint,
    EndpointStatus, GatewayClient, GatewayClientSpec, GatewayServer, GatewayServerSpec,
    PublicKey as GatewayPublicKey, PublicKeySpec, ServiceType,
};
use liqo_core::api::offloading::v1beta1::{
    LimitsEnforcement, Quota, QuotaSpec, VirtualNode, VirtualNodeSpec,
};
use liqo_core::ids::ClusterId;
use liqo_core::labels::{
    self, TRUE, authentication as auth_keys, core as core_keys, kubernetes as k8s_keys,
    networking as net_keys, replication as repl_keys,
};

use crate::names;

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: (!labels.is_empty()).then_some(labels),
        ..Default::default()
    }
}

fn remote_label(id: &ClusterId) -> BTreeMap<String, String> {
    let (k, v) = labels::remote_cluster_id(id);
    BTreeMap::from([(k.to_owned(), v)])
}

/// The tenant namespace `liqo-tenant-<peer>` with its labels (remote cluster id, tenant
/// namespace, pod security `privileged`).
pub fn tenant_namespace(peer: &ClusterId) -> Namespace {
    let mut labels = labels::tenant_namespace_labels(peer);
    for key in [
        k8s_keys::POD_SECURITY_AUDIT,
        k8s_keys::POD_SECURITY_ENFORCE,
        k8s_keys::POD_SECURITY_WARN,
    ] {
        labels.insert(key.to_owned(), k8s_keys::POD_SECURITY_PRIVILEGED.to_owned());
    }
    Namespace {
        metadata: meta(&peer.tenant_namespace(), None, labels),
        ..Default::default()
    }
}

/// Secret `liqo-nonce` in `liqo-tenant-<consumer>` (on the provider); the nonce controller
/// fills `data.nonce`.
pub fn nonce_secret(consumer: &ClusterId) -> Secret {
    let mut labels = remote_label(consumer);
    labels.insert(auth_keys::NONCE.to_owned(), TRUE.to_owned());
    Secret {
        metadata: meta(
            names::NONCE_SECRET,
            Some(&consumer.tenant_namespace()),
            labels,
        ),
        ..Default::default()
    }
}

/// Secret `liqo-signed-nonce` in `liqo-tenant-<provider>` (on the consumer) with the nonce to
/// sign; the nonce-signer controller fills `data.signedNonce`.
pub fn signed_nonce_secret(provider: &ClusterId, nonce: &crate::Nonce) -> Secret {
    let mut labels = remote_label(provider);
    labels.insert(auth_keys::SIGNED_NONCE.to_owned(), TRUE.to_owned());
    Secret {
        metadata: meta(
            names::SIGNED_NONCE_SECRET,
            Some(&provider.tenant_namespace()),
            labels,
        ),
        data: Some(BTreeMap::from([(
            crate::crypto::NONCE_FIELD.to_owned(),
            ByteString(nonce.as_base64().as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// `Tenant <consumer>` in `liqo-tenant-<consumer>` (created on the provider).
pub fn tenant(
    consumer: &ClusterId,
    public_key_pem: &str,
    csr_pem: &str,
    signature: &crate::Signature,
    proxy_url: Option<String>,
) -> Tenant {
    let mut t = Tenant::new(
        consumer.as_str(),
        TenantSpec {
            cluster_id: Some(consumer.to_string()),
            public_key: Some(ByteString(public_key_pem.as_bytes().to_vec())),
            csr: Some(ByteString(csr_pem.as_bytes().to_vec())),
            signature: Some(ByteString(signature.as_bytes().to_vec())),
            proxy_url,
            ..Default::default()
        },
    );
    t.metadata.namespace = Some(consumer.tenant_namespace());
    t.metadata.labels = Some(remote_label(consumer));
    t
}

/// An Identity (on the consumer) in `liqo-tenant-<provider>`: `controlplane-<provider>` or
/// `resourceslice-<slice>`, with `spec.namespace` = the consumer's tenant namespace on the
/// provider.
pub fn identity(
    name: &str,
    type_: IdentityType,
    provider: &ClusterId,
    auth_params: AuthParams,
    remote_tenant_namespace: &str,
) -> Identity {
    let mut id = Identity::new(
        name,
        IdentitySpec {
            cluster_id: Some(provider.to_string()),
            type_: Some(type_),
            auth_params: Some(auth_params),
            namespace: Some(remote_tenant_namespace.to_owned()),
        },
    );
    id.metadata.namespace = Some(provider.tenant_namespace());
    id.metadata.labels = Some(remote_label(provider));
    id
}

/// The label value of [`auth_keys::IDENTITY_TYPE`] for an identity type.
pub fn identity_type_label(type_: IdentityType) -> &'static str {
    match type_ {
        IdentityType::ControlPlane => auth_keys::IDENTITY_TYPE_CONTROL_PLANE,
        IdentityType::ResourceSlice => auth_keys::IDENTITY_TYPE_RESOURCE_SLICE,
    }
}

/// An owner reference to `obj` (controller, blocking deletion).
pub fn owner_reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> Option<OwnerReference> {
    obj.controller_owner_ref(&())
}

/// Secret `kubeconfig-<identity>` next to its Identity: labels remote cluster id and identity
/// type, annotation `liqo.io/remote-tenant-namespace`, data `kubeconfig`; owned by the Identity.
pub fn kubeconfig_secret(
    identity: &Identity,
    provider: &ClusterId,
    kubeconfig_yaml: &str,
) -> Secret {
    let name = names::kubeconfig_secret(&identity.metadata.name.clone().unwrap_or_default());
    let mut labels = remote_label(provider);
    if let Some(t) = identity.spec.type_ {
        labels.insert(
            auth_keys::IDENTITY_TYPE.to_owned(),
            identity_type_label(t).to_owned(),
        );
    }
    labels.insert(
        k8s_keys::APP_MANAGED_BY.to_owned(),
        core_keys::LIQO.to_owned(),
    );
    let mut m = meta(&name, identity.metadata.namespace.as_deref(), labels);
    if let Some(ns) = &identity.spec.namespace {
        m.annotations = Some(BTreeMap::from([(
            auth_keys::REMOTE_TENANT_NAMESPACE.to_owned(),
            ns.clone(),
        )]));
    }
    m.owner_references = owner_reference(identity).map(|o| vec![o]);
    Secret {
        metadata: m,
        data: Some(BTreeMap::from([(
            names::KUBECONFIG_KEY.to_owned(),
            ByteString(kubeconfig_yaml.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// `ResourceSlice <name>` in `liqo-tenant-<provider>` (on the consumer), replicated to the
/// provider: labels `liqo.io/replication=true`, `liqo.io/remoteID`, `liqo.io/remote-cluster-id`,
/// annotation `liqo.io/create-virtual-node=true`, class `default` unless given.
pub fn resource_slice(
    name: &str,
    provider: &ClusterId,
    resources: BTreeMap<String, Quantity>,
    class: Option<&str>,
) -> ResourceSlice {
    let mut rs = ResourceSlice::new(
        name,
        ResourceSliceSpec {
            provider_cluster_id: Some(provider.to_string()),
            resources,
            class: Some(class.unwrap_or(RESOURCE_SLICE_CLASS_DEFAULT).to_owned()),
            ..Default::default()
        },
    );
    let mut labels = labels::replication_labels(provider);
    labels.extend(remote_label(provider));
    rs.metadata.namespace = Some(provider.tenant_namespace());
    rs.metadata.labels = Some(labels);
    rs.metadata.annotations = Some(BTreeMap::from([(
        auth_keys::CREATE_VIRTUAL_NODE.to_owned(),
        TRUE.to_owned(),
    )]));
    rs
}

/// `Quota <user>` (on the provider) next to the replicated slice, owned by it.
pub fn quota(
    slice: &ResourceSlice,
    user: &str,
    resources: BTreeMap<String, Quantity>,
    enforcement: LimitsEnforcement,
) -> Quota {
    let mut q = Quota::new(
        user,
        QuotaSpec {
            user: user.to_owned(),
            limits_enforcement: Some(enforcement),
            resources,
            cordoned: None,
        },
    );
    q.metadata.namespace = slice.metadata.namespace.clone();
    q.metadata.owner_references = owner_reference(slice).map(|o| vec![o]);
    if let Some(consumer) = slice
        .spec
        .consumer_cluster_id
        .as_deref()
        .and_then(|c| ClusterId::new(c).ok())
    {
        q.metadata.labels = Some(remote_label(&consumer));
    }
    q
}

/// Whether a label key belongs to Kubernetes or Liqo themselves (`kubernetes.io/...`,
/// `node-role.kubernetes.io/...`, `k8s.io/...`, `liqo.io/...`, `type`), which a provider may
/// not set on a consumer's virtual node; `topology.kubernetes.io/*` (region, zone) and other
/// subdomains of liqo.io (`topology.liqo.io/region`) are the cluster labels providers publish.
pub fn is_reserved_node_label(key: &str) -> bool {
    let Some((prefix, _)) = key.split_once('/') else {
        return key == "type";
    };
    if prefix == "topology.kubernetes.io" {
        return false;
    }
    prefix == "kubernetes.io"
        || prefix.ends_with(".kubernetes.io")
        || prefix == "k8s.io"
        || prefix.ends_with(".k8s.io")
        || prefix == "liqo.io"
}

/// The labels a provider published for its virtual node (`status.nodeLabels`), without the
/// reserved ones ([`is_reserved_node_label`]): a provider cannot make the node claim to be
/// another cluster, a physical node or a control-plane node.
///
/// ```
/// use std::collections::BTreeMap;
/// let published = BTreeMap::from([
///     ("topology.liqo.io/region".to_owned(), "south".to_owned()),
///     ("topology.kubernetes.io/zone".to_owned(), "z1".to_owned()),
///     ("liqo.io/remote-cluster-id".to_owned(), "rome".to_owned()),
///     ("node-role.kubernetes.io/control-plane".to_owned(), "".to_owned()),
///     ("kubernetes.io/hostname".to_owned(), "master".to_owned()),
/// ]);
/// let kept = liqo_auth::forge::provider_node_labels(&published);
/// assert_eq!(kept.len(), 2);
/// ```
pub fn provider_node_labels(published: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    published
        .iter()
        .filter(|(k, _)| !is_reserved_node_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `VirtualNode <slice>` (on the consumer) next to its slice, owned by it: cluster id,
/// kubeconfig Secret of the slice's identity, quota = granted resources.
pub fn virtual_node(
    slice: &ResourceSlice,
    provider: &ClusterId,
    kubeconfig_secret: &str,
    granted: BTreeMap<String, Quantity>,
) -> VirtualNode {
    let name = slice.metadata.name.clone().unwrap_or_default();
    let mut vn = VirtualNode::new(
        &name,
        VirtualNodeSpec {
            cluster_id: Some(provider.to_string()),
            create_node: Some(true),
            kubeconfig_secret_ref: Some(LocalObjectReference {
                name: kubeconfig_secret.to_owned(),
            }),
            resource_quota: Some(ResourceQuotaSpec {
                hard: Some(granted),
                ..Default::default()
            }),
            labels: slice
                .status
                .as_ref()
                .map(|s| provider_node_labels(&s.node_labels))
                .unwrap_or_default(),
            ..Default::default()
        },
    );
    let mut labels = remote_label(provider);
    labels.insert(auth_keys::RESOURCE_SLICE_NAME.to_owned(), name);
    vn.metadata.namespace = slice.metadata.namespace.clone();
    vn.metadata.labels = Some(labels);
    vn.metadata.owner_references = owner_reference(slice).map(|o| vec![o]);
    vn
}

/// `Renew <identity>` (on the consumer, replicated) asking for a fresh certificate.
pub fn renew(
    identity: &Identity,
    consumer: &ClusterId,
    provider: &ClusterId,
    public_key_pem: &str,
    csr_pem: &str,
) -> Renew {
    let mut r = Renew::new(
        &identity.metadata.name.clone().unwrap_or_default(),
        RenewSpec {
            consumer_cluster_id: Some(consumer.to_string()),
            public_key: Some(ByteString(public_key_pem.as_bytes().to_vec())),
            csr: Some(ByteString(csr_pem.as_bytes().to_vec())),
            identity_type: identity.spec.type_,
            resource_slice_ref: None,
        },
    );
    let mut labels = labels::replication_labels(provider);
    labels.extend(remote_label(provider));
    r.metadata.namespace = identity.metadata.namespace.clone();
    r.metadata.labels = Some(labels);
    r.metadata.owner_references = owner_reference(identity).map(|o| vec![o]);
    r
}

/// `ForeignCluster <peer>` (cluster scoped) with its label.
pub fn foreign_cluster(peer: &ClusterId) -> ForeignCluster {
    let mut fc = ForeignCluster::new(
        peer.as_str(),
        ForeignClusterSpec {
            cluster_id: peer.to_string(),
        },
    );
    fc.metadata.labels = Some(remote_label(peer));
    fc
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

const ALL_VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// Read-only verbs.
const READ_VERBS: &[&str] = &["get", "list", "watch"];

/// ClusterRole `liqo-remote-controlplane` (Appendix B): what a consumer's control-plane
/// identity may do in its tenant namespace on the provider. It writes the specs of its
/// ResourceSlices, NamespaceMaps and Renews; their status is the provider's answer (the
/// resources granted, the namespaces created, the renewed certificate), so it may only read
/// it: a consumer that could write `resourceslices/status` would grant itself resources.
pub fn remote_controlplane_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(
            names::REMOTE_CONTROLPLANE_CLUSTER_ROLE,
            None,
            BTreeMap::from([(
                k8s_keys::APP_NAME.to_owned(),
                "remote-controlplane".to_owned(),
            )]),
        ),
        rules: Some(vec![
            rule(
                &["authentication.liqo.io"],
                &["renews", "resourceslices"],
                ALL_VERBS,
            ),
            rule(
                &["authentication.liqo.io"],
                &["renews/status", "resourceslices/status"],
                READ_VERBS,
            ),
            rule(&["offloading.liqo.io"], &["namespacemaps"], ALL_VERBS),
            rule(
                &["offloading.liqo.io"],
                &["namespacemaps/status"],
                READ_VERBS,
            ),
        ]),
        ..Default::default()
    }
}

/// ClusterRole `liqo-peering-user-tenant-ns` (bound in the tenant namespace of a peering user's
/// consumer) and Role `liqo-peering-user-liqo-ns` (in the Liqo namespace): what `liqoctl peer`
/// needs on the provider. No Secret at all: the few a peering user must read are named in its
/// own Role ([`peering_user_secrets_role`]); in the Liqo namespace (where the cluster's private
/// key is) only ConfigMaps and the IPAM objects.
pub fn peering_user_roles() -> (ClusterRole, Role) {
    let cr = ClusterRole {
        metadata: meta(
            names::PEERING_USER_TENANT_CLUSTER_ROLE,
            None,
            BTreeMap::new(),
        ),
        rules: Some(vec![
            rule(&[""], &["namespaces", "services"], &["get"]),
            rule(&["apps"], &["deployments"], &["get"]),
            rule(
                &["authentication.liqo.io"],
                &["tenants"],
                &["create", "delete", "get", "list", "update", "patch"],
            ),
            rule(
                &["authentication.liqo.io"],
                &["resourceslices"],
                &["get", "list"],
            ),
            rule(
                &["networking.liqo.io", "ipam.liqo.io"],
                &[
                    "configurations",
                    "gatewayclients",
                    "gatewayservers",
                    "publickeies",
                    "ips",
                ],
                &["create", "delete", "get", "list", "update", "patch"],
            ),
            rule(&["networking.liqo.io"], &["connections"], &["get", "list"]),
        ]),
        ..Default::default()
    };
    let role = Role {
        metadata: meta(
            names::PEERING_USER_LIQO_ROLE,
            Some(names::LIQO_NAMESPACE),
            BTreeMap::new(),
        ),
        rules: Some(vec![
            rule(&[""], &["configmaps"], &["get", "list"]),
            rule(&["ipam.liqo.io"], &["ips", "networks"], &["get", "list"]),
        ]),
    };
    (cr, role)
}

/// Role `liqo-peering-user-secrets` in `liqo-tenant-<consumer>` (on the provider): the only
/// Secrets a peering user reads, by name: the nonce it must sign (written by the provider,
/// never by the user: it may not create or change Secrets) and the key Secret of the gateway
/// serving its consumer (for the gateway's public key).
pub fn peering_user_secrets_role(consumer: &ClusterId) -> Role {
    let mut r = rule(&[""], &["secrets"], &["get"]);
    r.resource_names = Some(vec![
        names::NONCE_SECRET.to_owned(),
        format!("{consumer}-gw-keys"),
    ]);
    Role {
        metadata: meta(
            names::PEERING_USER_SECRETS_ROLE,
            Some(&consumer.tenant_namespace()),
            BTreeMap::new(),
        ),
        rules: Some(vec![r]),
    }
}

/// RoleBinding `name` in `namespace` binding `cluster_role` (or a Role when `role_kind` is
/// `"Role"`) to the user `user`.
pub fn role_binding(
    name: &str,
    namespace: &str,
    role_kind: &str,
    role: &str,
    user: &str,
    labels: BTreeMap<String, String>,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, Some(namespace), labels),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: role_kind.into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            name: user.into(),
            namespace: None,
        }]),
    }
}

// ----- Networking contract -----

/// `Configuration <peer>` in `liqo-tenant-<peer>`: the peer's pod and external CIDRs.
pub fn configuration(peer: &ClusterId, pod_cidr: &str, external_cidr: &str) -> Configuration {
    let mut c = Configuration::new(
        peer.as_str(),
        ConfigurationSpec {
            local: None,
            remote: Some(ClusterConfig {
                cidr: Some(ClusterConfigCidr {
                    pod: vec![Cidr(pod_cidr.to_owned())],
                    external: vec![Cidr(external_cidr.to_owned())],
                }),
            }),
        },
    );
    c.metadata.namespace = Some(peer.tenant_namespace());
    c.metadata.labels = Some(remote_label(peer));
    c
}

/// WireGuard defaults of gateways (port 51840, MTU 1340).
pub const GATEWAY_PORT: i32 = 51840;
/// Default MTU of the tunnel.
pub const GATEWAY_MTU: i32 = 1340;

fn template_ref(kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("networking.liqo.io/v1beta1".into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace: Some(names::LIQO_NAMESPACE.into()),
        ..Default::default()
    }
}

/// `GatewayServer <consumer>` in `liqo-tenant-<consumer>` (on the provider): MTU 1340,
/// endpoint port 51840, NodePort service.
pub fn gateway_server(consumer: &ClusterId) -> GatewayServer {
    let mut g = GatewayServer::new(
        consumer.as_str(),
        GatewayServerSpec {
            server_template_ref: Some(template_ref("WgGatewayServerTemplate", "wireguard-server")),
            mtu: Some(GATEWAY_MTU),
            endpoint: Some(Endpoint {
                port: Some(GATEWAY_PORT),
                service_type: ServiceType::NodePort,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    g.metadata.namespace = Some(consumer.tenant_namespace());
    g.metadata.labels = Some(remote_label(consumer));
    g
}

/// `GatewayClient <provider>` in `liqo-tenant-<provider>` (on the consumer), with the endpoint
/// copied from the server's status.
pub fn gateway_client(provider: &ClusterId, endpoint: EndpointStatus) -> GatewayClient {
    let mut g = GatewayClient::new(
        provider.as_str(),
        GatewayClientSpec {
            client_template_ref: Some(template_ref("WgGatewayClientTemplate", "wireguard-client")),
            mtu: Some(GATEWAY_MTU),
            endpoint: Some(endpoint),
            secret_ref: None,
        },
    );
    g.metadata.namespace = Some(provider.tenant_namespace());
    g.metadata.labels = Some(remote_label(provider));
    g
}

/// `PublicKey <peer>` in `liqo-tenant-<peer>` with the raw (32-byte) key of the peer's gateway.
pub fn gateway_public_key(peer: &ClusterId, key: &[u8]) -> GatewayPublicKey {
    let mut p = GatewayPublicKey::new(
        peer.as_str(),
        PublicKeySpec {
            public_key: Some(ByteString(key.to_vec())),
        },
    );
    let mut labels = remote_label(peer);
    labels.insert(net_keys::GATEWAY_RESOURCE.to_owned(), TRUE.to_owned());
    p.metadata.namespace = Some(peer.tenant_namespace());
    p.metadata.labels = Some(labels);
    p
}

/// Whether an object's labels mark it as a replica made by a peer's replicator.
pub fn is_replica(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(repl_keys::REPLICATED))
        .is_some_and(|v| v == TRUE)
}

/// Object reference of a namespaced resource (for events).
pub fn object_ref<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    obj.object_ref(&())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClusterId {
        ClusterId::new(s).unwrap()
    }

    #[test]
    fn tenant_namespace_has_upstream_labels() {
        let ns = tenant_namespace(&id("milan"));
        let l = ns.metadata.labels.unwrap();
        assert_eq!(l["liqo.io/remote-cluster-id"], "milan");
        assert_eq!(l["liqo.io/tenant-namespace"], "true");
        assert_eq!(l["pod-security.kubernetes.io/enforce"], "privileged");
    }

    #[test]
    fn resource_slice_is_replicated_and_creates_a_virtual_node() {
        let rs = resource_slice("milan", &id("milan"), BTreeMap::new(), None);
        let l = rs.metadata.labels.clone().unwrap();
        assert_eq!(l["liqo.io/replication"], "true");
        assert_eq!(l["liqo.io/remoteID"], "milan");
        assert_eq!(l["liqo.io/remote-cluster-id"], "milan");
        assert_eq!(rs.metadata.namespace.as_deref(), Some("liqo-tenant-milan"));
        assert_eq!(rs.spec.class.as_deref(), Some("default"));
        assert_eq!(
            rs.metadata.annotations.unwrap()["liqo.io/create-virtual-node"],
            "true"
        );
    }

    #[test]
    fn kubeconfig_secret_carries_labels_and_annotation() {
        let mut ident = identity(
            "controlplane-milan",
            IdentityType::ControlPlane,
            &id("milan"),
            AuthParams::default(),
            "liqo-tenant-rome",
        );
        ident.metadata.uid = Some("u".into());
        let s = kubeconfig_secret(&ident, &id("milan"), "yaml");
        assert_eq!(
            s.metadata.name.as_deref(),
            Some("kubeconfig-controlplane-milan")
        );
        let l = s.metadata.labels.as_ref().unwrap();
        assert_eq!(l["liqo.io/identity-type"], "ControlPlane");
        assert_eq!(
            s.metadata.annotations.as_ref().unwrap()["liqo.io/remote-tenant-namespace"],
            "liqo-tenant-rome"
        );
        assert_eq!(s.metadata.owner_references.unwrap()[0].kind, "Identity");
    }

    #[test]
    fn networking_contract() {
        let c = configuration(&id("milan"), "10.101.0.0/16", "10.70.0.0/16");
        assert_eq!(c.metadata.namespace.as_deref(), Some("liqo-tenant-milan"));
        let cidr = c.spec.remote.unwrap().cidr.unwrap();
        assert_eq!(cidr.pod[0].0, "10.101.0.0/16");
        let s = gateway_server(&id("rome"));
        assert_eq!(s.spec.mtu, Some(1340));
        let ep = s.spec.endpoint.unwrap();
        assert_eq!(
            (ep.port, ep.service_type),
            (Some(51840), ServiceType::NodePort)
        );
        let pk = gateway_public_key(&id("rome"), &[7; 32]);
        let l = pk.metadata.labels.unwrap();
        assert_eq!(l["networking.liqo.io/gateway-resource"], "true");
        assert_eq!(pk.spec.public_key.unwrap().0.len(), 32);
    }

    #[test]
    fn remote_controlplane_role_is_least_privilege() {
        let r = remote_controlplane_cluster_role();
        let resources: Vec<String> = r
            .rules
            .unwrap()
            .into_iter()
            .flat_map(|r| r.resources.unwrap_or_default())
            .collect();
        assert!(resources.contains(&"resourceslices".to_owned()));
        assert!(!resources.iter().any(|r| r == "secrets" || r == "*"));
    }
}
