//! EndpointSlices, reflected as ShadowEndpointSlices and materialized back as EndpointSlices
//! by the provider (upstream's design).

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use liqo_core::runtime::retrying;
use liqo_core::{
    api::offloading::v1beta1::{
        EndpointSliceTemplate, ShadowEndpointSlice, ShadowEndpointSliceSpec,
    },
    ids::ClusterId,
    labels::{self, reflection::ENDPOINT_SLICE_MANAGED_BY_VALUE},
};
use liqo_ipam::remap::RemoteCidrs;

use super::{Forge, ForgeContext, remote_metadata};

/// Label with the controller that manages an EndpointSlice.
pub const ENDPOINT_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Label with the Service an EndpointSlice belongs to.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Which nodes of the local cluster stand for the destination cluster (its virtual nodes):
/// endpoints there are pods already running in the destination, which it knows natively.
#[derive(Clone)]
pub struct RemoteNodes(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for RemoteNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteNodes(..)")
    }
}

impl RemoteNodes {
    /// From a predicate on node names.
    pub fn from_fn(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Watches the local virtual nodes of `remote` (labels `liqo.io/type=virtual-node` and
    /// `liqo.io/remote-cluster-id=<remote>`) in a background task, for as long as the returned
    /// value is used.
    pub async fn watch(local: Client, remote: &ClusterId) -> Self {
        let selector = format!(
            "{}={},{}={}",
            labels::core::TYPE,
            labels::core::TYPE_VIRTUAL_NODE,
            labels::core::REMOTE_CLUSTER_ID,
            remote
        );
        let (store, writer) = reflector::store::<Node>();
        let stream = reflector::reflector(
            writer,
            retrying(watcher(
                Api::<Node>::all(local),
                watcher::Config::default().labels(&selector),
            )),
        );
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream.touched_objects());
            while futures::StreamExt::next(&mut stream).await.is_some() {}
        });
        Self::from_fn(move |name| store.get(&reflector::ObjectRef::new(name)).is_some())
    }

    fn contains(&self, node: &str) -> bool {
        (self.0)(node)
    }
}

/// Reflects a local EndpointSlice as a ShadowEndpointSlice with the endpoints the destination
/// lacks: endpoints on the destination's virtual nodes are left out (it has those pods), and
/// addresses are translated into how the destination sees them (`RemoteCidrs`: real local
/// CIDR -> the CIDR the peer remapped it to); addresses outside every mapping are kept.
/// Node names are cleared and target references become `Remote<Kind>`, as upstream.
#[derive(Debug, Clone)]
pub struct EndpointSliceForge {
    translator: RemoteCidrs,
    remote_nodes: RemoteNodes,
}

impl EndpointSliceForge {
    /// A forge translating with `translator` and skipping endpoints on `remote_nodes`.
    pub fn new(translator: RemoteCidrs, remote_nodes: RemoteNodes) -> Self {
        Self {
            translator,
            remote_nodes,
        }
    }
}

impl Forge<EndpointSlice, ShadowEndpointSlice> for EndpointSliceForge {
    fn remote(&self, local: &EndpointSlice, ctx: &ForgeContext) -> Option<ShadowEndpointSlice> {
        let labels = local.metadata.labels.clone().unwrap_or_default();
        // Never reflect back what a reflection materialized, nor the API server's own slice.
        if labels.get(ENDPOINT_SLICE_MANAGED_BY).map(String::as_str)
            == Some(ENDPOINT_SLICE_MANAGED_BY_VALUE)
            || (ctx.local_namespace == "default"
                && labels.get(SERVICE_NAME).map(String::as_str) == Some("kubernetes"))
        {
            return None;
        }
        let endpoints = local
            .endpoints
            .iter()
            .flatten()
            .filter(|e| {
                !e.node_name
                    .as_deref()
                    .is_some_and(|n| self.remote_nodes.contains(n))
            })
            .map(|e| {
                let mut e = e.clone();
                e.addresses = e.addresses.iter().map(|a| self.translate(a)).collect();
                e.node_name = None;
                e.hostname = None;
                if let Some(target) = e.target_ref.as_mut() {
                    target.kind = target.kind.as_ref().map(|k| format!("Remote{k}"));
                    target.namespace = Some(ctx.remote_namespace.clone());
                    target.uid = None;
                    target.resource_version = None;
                }
                e
            })
            .collect();
        let mut metadata = remote_metadata(&local.metadata);
        if let Some(labels) = metadata.labels.as_mut() {
            labels.remove(ENDPOINT_SLICE_MANAGED_BY);
        }
        Some(ShadowEndpointSlice {
            metadata,
            spec: ShadowEndpointSliceSpec {
                template: Some(EndpointSliceTemplate {
                    endpoints,
                    ports: local.ports.clone().unwrap_or_default(),
                    address_type: Some(local.address_type.clone()),
                }),
            },
        })
    }
}

impl EndpointSliceForge {
    fn translate(&self, address: &str) -> String {
        address
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| self.translator.to_remapped(ip))
            .map_or_else(|| address.to_owned(), |ip| ip.to_string())
    }
}

/// The provider side: turns each ShadowEndpointSlice into an EndpointSlice of the same name
/// and content, labelled as managed by the reflection so that the cluster's own EndpointSlice
/// controller leaves it alone. Run it in the provider with the provider's client on both sides
/// of [`Clusters`](crate::Clusters) and the same namespace on both sides of each pair.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShadowEndpointSliceForge;

impl Forge<ShadowEndpointSlice, EndpointSlice> for ShadowEndpointSliceForge {
    fn remote(&self, shadow: &ShadowEndpointSlice, _ctx: &ForgeContext) -> Option<EndpointSlice> {
        Some(materialize(shadow))
    }
}

/// The EndpointSlice a ShadowEndpointSlice stands for (what [`ShadowEndpointSliceForge`] and
/// the provider's
/// [`shadow_endpointslice`](crate::offloading::shadow_endpointslice) controller produce): same
/// name, labels and annotations, the template's endpoints, ports and address type (IPv4 when
/// unset), labelled as managed by the reflection so that the cluster's EndpointSlice controller
/// leaves it alone. Namespace and owner are left to the caller.
pub fn materialize(shadow: &ShadowEndpointSlice) -> EndpointSlice {
    let template = shadow.spec.template.clone().unwrap_or_default();
    let mut metadata = remote_metadata(&shadow.metadata);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(
        ENDPOINT_SLICE_MANAGED_BY.to_owned(),
        ENDPOINT_SLICE_MANAGED_BY_VALUE.to_owned(),
    );
    labels.insert(
        labels::offloading::MANAGED_BY.to_owned(),
        labels::offloading::MANAGED_BY_SHADOW_ENDPOINT_SLICE.to_owned(),
    );
    EndpointSlice {
        metadata,
        address_type: template.address_type.unwrap_or_else(|| "IPv4".to_owned()),
        endpoints: Some(template.endpoints).filter(|e| !e.is_empty()),
        ports: Some(template.ports).filter(|p| !p.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_ipam::remap::Mapping;
    use serde_json::json;

    fn ctx() -> ForgeContext {
        ForgeContext {
            local_cluster: "rome".parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: "demo".into(),
            remote_namespace: "demo-rome".into(),
        }
    }

    fn forge() -> EndpointSliceForge {
        let mapping = Mapping::new(
            "10.100.0.0/16".parse().unwrap(),
            "10.222.0.0/16".parse().unwrap(),
        )
        .unwrap();
        EndpointSliceForge::new(
            RemoteCidrs {
                pod: vec![mapping],
                external: vec![],
            },
            RemoteNodes::from_fn(|n| n == "milan-vnode"),
        )
    }

    fn slice(labels: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "demo", "labels": labels, "uid": "u1", "resourceVersion": "9"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.100.0.5"], "nodeName": "rome-node-0", "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "demo", "uid": "p1"}},
                {"addresses": ["10.250.0.7"], "nodeName": "milan-vnode", "conditions": {"ready": true}},
                {"addresses": ["192.0.2.10"], "conditions": {"ready": false}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn endpoints_the_destination_has_are_left_out_and_addresses_remapped() {
        let local = slice(
            json!({"kubernetes.io/service-name": "web", ENDPOINT_SLICE_MANAGED_BY: "endpointslice-controller.k8s.io"}),
        );
        let shadow = forge().remote(&local, &ctx()).unwrap();
        let template = shadow.spec.template.unwrap();
        assert_eq!(
            template.endpoints.len(),
            2,
            "the endpoint on milan's virtual node is left out"
        );
        assert_eq!(
            template.endpoints[0].addresses,
            ["10.222.0.5"],
            "pod CIDR remapped"
        );
        assert_eq!(
            template.endpoints[1].addresses,
            ["192.0.2.10"],
            "unmapped address kept"
        );
        assert_eq!(template.endpoints[0].node_name, None);
        let target = template.endpoints[0].target_ref.as_ref().unwrap();
        assert_eq!(target.kind.as_deref(), Some("RemotePod"));
        assert_eq!(target.namespace.as_deref(), Some("demo-rome"));
        assert_eq!(target.uid, None);
        assert_eq!(template.ports[0].port, Some(8080));
        assert_eq!(template.address_type.as_deref(), Some("IPv4"));
        let labels = shadow.metadata.labels.unwrap();
        assert_eq!(labels[SERVICE_NAME], "web");
        assert!(!labels.contains_key(ENDPOINT_SLICE_MANAGED_BY));
        assert_eq!(shadow.metadata.uid, None);
    }

    #[test]
    fn materialized_slices_are_not_reflected_back() {
        let local = slice(json!({ENDPOINT_SLICE_MANAGED_BY: ENDPOINT_SLICE_MANAGED_BY_VALUE}));
        assert!(forge().remote(&local, &ctx()).is_none());
    }

    #[test]
    fn shadows_materialize_as_reflection_managed_slices() {
        let local = slice(json!({"kubernetes.io/service-name": "web"}));
        let shadow = forge().remote(&local, &ctx()).unwrap();
        let slice = ShadowEndpointSliceForge.remote(&shadow, &ctx()).unwrap();
        let labels = slice.metadata.labels.unwrap();
        assert_eq!(
            labels[ENDPOINT_SLICE_MANAGED_BY],
            ENDPOINT_SLICE_MANAGED_BY_VALUE
        );
        assert_eq!(labels[SERVICE_NAME], "web");
        assert_eq!(labels["liqo.io/managed-by"], "shadowendpointslice");
        assert_eq!(slice.endpoints.unwrap().len(), 2);
        assert_eq!(slice.address_type, "IPv4");
    }
}
