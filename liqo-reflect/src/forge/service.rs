//! The Service forge: the remote Service keeps what describes the service (type, selector,
//! ports, policies) and drops what the remote cluster allocates itself (cluster IPs, node
//! ports, health-check port, load-balancer IP).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use liqo_core::labels::{TRUE, reflection::FORCE_REMOTE_NODE_PORT};

use super::{Forge, ForgeContext, remote_metadata};

/// Value of `spec.clusterIP` of a headless Service.
pub const CLUSTER_IP_NONE: &str = "None";

/// Name of the Service that fronts the Kubernetes API server.
pub const KUBERNETES_SERVICE: &str = "kubernetes";

/// Namespace of [`KUBERNETES_SERVICE`].
pub const KUBERNETES_SERVICE_NAMESPACE: &str = "default";

/// Forge of Services.
///
/// The remote Service has the local name, labels and annotations (minus
/// [`NOT_REFLECTED_ANNOTATIONS`](super::NOT_REFLECTED_ANNOTATIONS)) and, from the local spec:
///
/// - verbatim: `type`, `selector`, `externalName`, `allocateLoadBalancerNodePorts`,
///   `externalTrafficPolicy`, `internalTrafficPolicy`, `ipFamilyPolicy`,
///   `loadBalancerSourceRanges`, `publishNotReadyAddresses`, `sessionAffinity` and
///   `sessionAffinityConfig`;
/// - `ports` with their name, protocol, appProtocol, port and targetPort; their `nodePort` is
///   left for the remote cluster to allocate, unless the local Service is annotated
///   [`FORCE_REMOTE_NODE_PORT`]` = "true"`, in which case it is copied;
/// - `clusterIP` and `clusterIPs` only for a headless Service ([`CLUSTER_IP_NONE`]); any other
///   cluster IP belongs to the local service CIDR and is left for the remote cluster to allocate.
///
/// Everything else is dropped: `loadBalancerIP`, `loadBalancerClass`, `healthCheckNodePort`,
/// `externalIPs`, `ipFamilies`, `trafficDistribution` and the status. The API server's own
/// Service ([`KUBERNETES_SERVICE`] in [`KUBERNETES_SERVICE_NAMESPACE`]) is never reflected.
///
/// ```
/// use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
/// use liqo_reflect::forge::{Forge, ForgeContext, ServiceForge};
///
/// let ctx = ForgeContext {
///     local_cluster: "rome".parse()?,
///     remote_cluster: "milan".parse()?,
///     local_namespace: "demo".into(),
///     remote_namespace: "demo-rome".into(),
/// };
/// let mut local = Service::default();
/// local.metadata.name = Some("web".into());
/// local.spec = Some(ServiceSpec {
///     type_: Some("NodePort".into()),
///     cluster_ip: Some("10.96.12.7".into()),
///     ports: Some(vec![ServicePort { port: 80, node_port: Some(30080), ..Default::default() }]),
///     ..Default::default()
/// });
///
/// let remote = ServiceForge.remote(&local, &ctx).expect("web is reflected");
/// let spec = remote.spec.expect("the spec is forged");
/// assert_eq!(spec.type_.as_deref(), Some("NodePort"));
/// assert_eq!(spec.cluster_ip, None);
/// assert_eq!(spec.ports.expect("ports are kept")[0].node_port, None);
/// # Ok::<(), liqo_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceForge;

impl Forge<Service> for ServiceForge {
    /// A LoadBalancer Service shows the addresses its twin's load balancer got remotely.
    fn local_status(
        &self,
        local: &Service,
        remote: &Service,
        _ctx: &ForgeContext,
    ) -> Option<serde_json::Value> {
        if local.spec.as_ref()?.type_.as_deref() != Some("LoadBalancer") {
            return None;
        }
        let balancer = remote.status.as_ref()?.load_balancer.as_ref()?;
        if balancer.ingress.as_ref().is_none_or(Vec::is_empty) {
            return None;
        }
        Some(serde_json::json!({ "loadBalancer": balancer }))
    }

    fn remote(&self, local: &Service, ctx: &ForgeContext) -> Option<Service> {
        if ctx.local_namespace == KUBERNETES_SERVICE_NAMESPACE
            && local.metadata.name.as_deref() == Some(KUBERNETES_SERVICE)
        {
            return None;
        }

        let force_node_port = local
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(FORCE_REMOTE_NODE_PORT))
            .is_some_and(|value| value == TRUE);

        Some(Service {
            metadata: remote_metadata(&local.metadata),
            spec: local
                .spec
                .as_ref()
                .map(|spec| remote_spec(spec, force_node_port)),
            status: None,
        })
    }
}

/// The remote spec for the local `spec`; see [`ServiceForge`].
fn remote_spec(local: &ServiceSpec, force_node_port: bool) -> ServiceSpec {
    let headless = local.cluster_ip.as_deref() == Some(CLUSTER_IP_NONE);
    ServiceSpec {
        type_: local.type_.clone(),
        selector: local.selector.clone(),
        ports: local.ports.as_ref().map(|ports| {
            ports
                .iter()
                .map(|port| remote_port(port, force_node_port))
                .collect()
        }),
        external_name: local.external_name.clone(),
        allocate_load_balancer_node_ports: local.allocate_load_balancer_node_ports,
        external_traffic_policy: local.external_traffic_policy.clone(),
        internal_traffic_policy: local.internal_traffic_policy.clone(),
        ip_family_policy: local.ip_family_policy.clone(),
        load_balancer_source_ranges: local.load_balancer_source_ranges.clone(),
        publish_not_ready_addresses: local.publish_not_ready_addresses,
        session_affinity: local.session_affinity.clone(),
        session_affinity_config: local.session_affinity_config.clone(),
        cluster_ip: headless.then(|| CLUSTER_IP_NONE.to_owned()),
        cluster_ips: headless.then(|| vec![CLUSTER_IP_NONE.to_owned()]),
        ..ServiceSpec::default()
    }
}

/// The remote port for the local `port`: everything but the node port, unless forced.
fn remote_port(local: &ServicePort, force_node_port: bool) -> ServicePort {
    ServicePort {
        node_port: if force_node_port {
            local.node_port
        } else {
            None
        },
        ..local.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, ServiceStatus,
        SessionAffinityConfig,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;

    fn ctx(namespace: &str) -> ForgeContext {
        ForgeContext {
            local_cluster: "rome".parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: namespace.into(),
            remote_namespace: format!("{namespace}-rome"),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn http_port(node_port: Option<i32>) -> ServicePort {
        ServicePort {
            name: Some("http".into()),
            protocol: Some("TCP".into()),
            app_protocol: Some("kubernetes.io/h2c".into()),
            port: 80,
            target_port: Some(IntOrString::String("web".into())),
            node_port,
        }
    }

    fn metrics_port(node_port: Option<i32>) -> ServicePort {
        ServicePort {
            name: Some("metrics".into()),
            protocol: Some("TCP".into()),
            app_protocol: None,
            port: 9090,
            target_port: Some(IntOrString::Int(9090)),
            node_port,
        }
    }

    /// A LoadBalancer Service as the local API server returns it: every allocated field set.
    fn local_load_balancer() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("storefront".into()),
                namespace: Some("shop".into()),
                uid: Some("b3e1".into()),
                resource_version: Some("99".into()),
                labels: Some(map(&[("app", "storefront")])),
                annotations: Some(map(&[
                    ("example.com/team", "web"),
                    ("liqo.io/allow-reflection", "true"),
                    ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ])),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                selector: Some(map(&[("app", "storefront")])),
                ports: Some(vec![http_port(Some(31080)), metrics_port(Some(31090))]),
                cluster_ip: Some("10.96.44.10".into()),
                cluster_ips: Some(vec!["10.96.44.10".into(), "fd00:10:96::2c0a".into()]),
                ip_families: Some(vec!["IPv4".into(), "IPv6".into()]),
                ip_family_policy: Some("PreferDualStack".into()),
                allocate_load_balancer_node_ports: Some(true),
                external_traffic_policy: Some("Local".into()),
                internal_traffic_policy: Some("Cluster".into()),
                health_check_node_port: Some(32456),
                load_balancer_ip: Some("203.0.113.7".into()),
                load_balancer_class: Some("example.com/lb".into()),
                load_balancer_source_ranges: Some(vec!["198.51.100.0/24".into()]),
                external_ips: Some(vec!["192.0.2.10".into()]),
                publish_not_ready_addresses: Some(true),
                session_affinity: Some("ClientIP".into()),
                session_affinity_config: Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(600),
                    }),
                }),
                traffic_distribution: Some("PreferClose".into()),
                external_name: None,
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        ip: Some("203.0.113.7".into()),
                        ..LoadBalancerIngress::default()
                    }]),
                }),
                conditions: None,
            }),
        }
    }

    #[test]
    fn load_balancer_keeps_its_description_and_drops_allocations() {
        let local = local_load_balancer();
        let remote = ServiceForge.remote(&local, &ctx("shop")).unwrap();

        assert_eq!(
            remote.metadata,
            ObjectMeta {
                name: Some("storefront".into()),
                labels: Some(map(&[("app", "storefront")])),
                annotations: Some(map(&[("example.com/team", "web")])),
                ..ObjectMeta::default()
            }
        );
        assert_eq!(remote.status, None);

        let spec = remote.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.selector, Some(map(&[("app", "storefront")])));
        assert_eq!(spec.ports, Some(vec![http_port(None), metrics_port(None)]));
        assert_eq!(spec.external_name, None);
        assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.ip_family_policy.as_deref(), Some("PreferDualStack"));
        assert_eq!(
            spec.load_balancer_source_ranges,
            Some(vec!["198.51.100.0/24".to_owned()])
        );
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
        assert_eq!(
            spec.session_affinity_config,
            local.spec.as_ref().unwrap().session_affinity_config
        );

        // Allocated by (or specific to) the local cluster: never copied.
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.cluster_ips, None);
        assert_eq!(spec.ip_families, None);
        assert_eq!(spec.health_check_node_port, None);
        assert_eq!(spec.load_balancer_ip, None);
        assert_eq!(spec.load_balancer_class, None);
        assert_eq!(spec.external_ips, None);
        assert_eq!(spec.traffic_distribution, None);
    }

    #[test]
    fn node_ports_are_kept_when_forced() {
        let mut local = local_load_balancer();
        local
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(FORCE_REMOTE_NODE_PORT.into(), "true".into());
        let remote = ServiceForge.remote(&local, &ctx("shop")).unwrap();

        let spec = remote.spec.unwrap();
        assert_eq!(
            spec.ports,
            Some(vec![http_port(Some(31080)), metrics_port(Some(31090))])
        );
        // The annotation itself is reflected: it is not a reflection-control annotation.
        assert_eq!(
            remote
                .metadata
                .annotations
                .unwrap()
                .get(FORCE_REMOTE_NODE_PORT)
                .map(String::as_str),
            Some("true")
        );
        // Forcing node ports does not bring back the health-check port.
        assert_eq!(spec.health_check_node_port, None);
    }

    #[test]
    fn node_ports_are_cleared_unless_the_annotation_is_exactly_true() {
        for value in ["false", "True", "yes", ""] {
            let mut local = local_load_balancer();
            local
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(FORCE_REMOTE_NODE_PORT.into(), value.into());
            let spec = ServiceForge
                .remote(&local, &ctx("shop"))
                .unwrap()
                .spec
                .unwrap();
            assert_eq!(
                spec.ports,
                Some(vec![http_port(None), metrics_port(None)]),
                "annotation value {value:?}"
            );
        }
    }

    #[test]
    fn node_port_service_without_node_ports_stays_without() {
        let mut local = local_load_balancer();
        local.metadata.annotations = Some(map(&[(FORCE_REMOTE_NODE_PORT, "true")]));
        let spec = local.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports = Some(vec![metrics_port(None)]);
        let spec = ServiceForge
            .remote(&local, &ctx("shop"))
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports, Some(vec![metrics_port(None)]));
    }

    #[test]
    fn cluster_ip_service_drops_its_cluster_ip() {
        let local = Service {
            metadata: ObjectMeta {
                name: Some("cart".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(map(&[("app", "cart")])),
                ports: Some(vec![metrics_port(None)]),
                cluster_ip: Some("10.96.3.4".into()),
                cluster_ips: Some(vec!["10.96.3.4".into()]),
                ip_families: Some(vec!["IPv4".into()]),
                ip_family_policy: Some("SingleStack".into()),
                internal_traffic_policy: Some("Cluster".into()),
                session_affinity: Some("None".into()),
                ..ServiceSpec::default()
            }),
            status: Some(ServiceStatus::default()),
        };
        let remote = ServiceForge.remote(&local, &ctx("shop")).unwrap();

        assert_eq!(remote.metadata.labels, None);
        assert_eq!(remote.metadata.annotations, None);
        assert_eq!(remote.status, None);
        assert_eq!(
            remote.spec,
            Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(map(&[("app", "cart")])),
                ports: Some(vec![metrics_port(None)]),
                ip_family_policy: Some("SingleStack".into()),
                internal_traffic_policy: Some("Cluster".into()),
                session_affinity: Some("None".into()),
                ..ServiceSpec::default()
            })
        );
    }

    #[test]
    fn headless_service_stays_headless() {
        let local = Service {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(map(&[("app", "db")])),
                ports: Some(vec![metrics_port(None)]),
                cluster_ip: Some("None".into()),
                cluster_ips: Some(vec!["None".into()]),
                publish_not_ready_addresses: Some(true),
                ..ServiceSpec::default()
            }),
            status: None,
        };
        let spec = ServiceForge
            .remote(&local, &ctx("shop"))
            .unwrap()
            .spec
            .unwrap();

        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.cluster_ips, Some(vec!["None".to_owned()]));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector, Some(map(&[("app", "db")])));
    }

    #[test]
    fn external_name_service_keeps_its_target() {
        let local = Service {
            metadata: ObjectMeta {
                name: Some("payments".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some("payments.example.com".into()),
                ..ServiceSpec::default()
            }),
            status: None,
        };
        let spec = ServiceForge
            .remote(&local, &ctx("shop"))
            .unwrap()
            .spec
            .unwrap();

        assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
        assert_eq!(spec.external_name.as_deref(), Some("payments.example.com"));
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.ports, None);
    }

    #[test]
    fn service_without_spec_yields_no_spec() {
        let mut local = Service::default();
        local.metadata.name = Some("bare".into());
        let remote = ServiceForge.remote(&local, &ctx("shop")).unwrap();
        assert_eq!(remote.spec, None);
    }

    #[test]
    fn the_kubernetes_service_is_never_reflected() {
        let mut local = local_load_balancer();
        local.metadata.name = Some("kubernetes".into());
        local.metadata.namespace = Some("default".into());
        assert_eq!(ServiceForge.remote(&local, &ctx("default")), None);

        // Only that one: a `kubernetes` Service elsewhere, or another Service in `default`, is
        // reflected.
        local.metadata.namespace = Some("shop".into());
        assert!(ServiceForge.remote(&local, &ctx("shop")).is_some());
        local.metadata.name = Some("storefront".into());
        local.metadata.namespace = Some("default".into());
        assert!(ServiceForge.remote(&local, &ctx("default")).is_some());
    }

    #[test]
    fn names_are_not_mapped() {
        let ctx = ctx("shop");
        assert_eq!(ServiceForge.remote_name("storefront", &ctx), "storefront");
        assert_eq!(ServiceForge.local_name("storefront", &ctx), "storefront");
    }
}
