//! The Ingress forge: the remote Ingress routes the same hosts and paths to the same backends,
//! but leaves the choice of the ingress controller to the remote cluster.

use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};

use super::{Forge, ForgeContext, remote_metadata};

/// Legacy annotation selecting the ingress controller of an Ingress
/// (`kubernetes.io/ingress.class`), superseded by `spec.ingressClassName`. It names a class of
/// the local cluster, so it is not reflected.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Forge of Ingresses.
///
/// The remote Ingress has the local name, labels and annotations (minus
/// [`NOT_REFLECTED_ANNOTATIONS`](super::NOT_REFLECTED_ANNOTATIONS) and
/// [`INGRESS_CLASS_ANNOTATION`]) and the local `defaultBackend`, `rules` and `tls` verbatim.
/// `ingressClassName` is cleared, so the remote cluster's default ingress class serves it; the
/// status is not forged.
///
/// ```
/// use k8s_openapi::api::networking::v1::{Ingress, IngressSpec, IngressTLS};
/// use liqo_reflect::forge::{Forge, ForgeContext, IngressForge};
///
/// let ctx = ForgeContext {
///     local_cluster: "rome".parse()?,
///     remote_cluster: "milan".parse()?,
///     local_namespace: "demo".into(),
///     remote_namespace: "demo-rome".into(),
/// };
/// let mut local = Ingress::default();
/// local.metadata.name = Some("web".into());
/// local.spec = Some(IngressSpec {
///     ingress_class_name: Some("nginx".into()),
///     tls: Some(vec![IngressTLS {
///         hosts: Some(vec!["shop.example.com".into()]),
///         secret_name: Some("shop-tls".into()),
///     }]),
///     ..Default::default()
/// });
///
/// let remote = IngressForge.remote(&local, &ctx).expect("ingresses are always reflected");
/// let spec = remote.spec.expect("the spec is forged");
/// assert_eq!(spec.ingress_class_name, None);
/// assert_eq!(spec.tls, local.spec.and_then(|spec| spec.tls));
/// # Ok::<(), liqo_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct IngressForge;

impl Forge<Ingress> for IngressForge {
    /// The addresses the remote ingress controller published show on the local Ingress.
    fn local_status(
        &self,
        _local: &Ingress,
        remote: &Ingress,
        _ctx: &ForgeContext,
    ) -> Option<serde_json::Value> {
        let balancer = remote.status.as_ref()?.load_balancer.as_ref()?;
        if balancer.ingress.as_ref().is_none_or(Vec::is_empty) {
            return None;
        }
        Some(serde_json::json!({ "loadBalancer": balancer }))
    }

    fn remote(&self, local: &Ingress, _ctx: &ForgeContext) -> Option<Ingress> {
        let mut metadata = remote_metadata(&local.metadata);
        if let Some(annotations) = metadata.annotations.as_mut() {
            annotations.remove(INGRESS_CLASS_ANNOTATION);
        }
        metadata.annotations = metadata
            .annotations
            .filter(|annotations| !annotations.is_empty());

        Some(Ingress {
            metadata,
            spec: local.spec.as_ref().map(|spec| IngressSpec {
                default_backend: spec.default_backend.clone(),
                rules: spec.rules.clone(),
                tls: spec.tls.clone(),
                ingress_class_name: None,
            }),
            status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::TypedLocalObjectReference;
    use k8s_openapi::api::networking::v1::{
        HTTPIngressPath, HTTPIngressRuleValue, IngressBackend, IngressLoadBalancerIngress,
        IngressLoadBalancerStatus, IngressRule, IngressServiceBackend, IngressStatus, IngressTLS,
        ServiceBackendPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn ctx() -> ForgeContext {
        ForgeContext {
            local_cluster: "rome".parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: "shop".into(),
            remote_namespace: "shop-rome".into(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn service_backend(name: &str, port: ServiceBackendPort) -> IngressBackend {
        IngressBackend {
            service: Some(IngressServiceBackend {
                name: name.into(),
                port: Some(port),
            }),
            resource: None,
        }
    }

    fn number(number: i32) -> ServiceBackendPort {
        ServiceBackendPort {
            number: Some(number),
            name: None,
        }
    }

    fn path(path: &str, path_type: &str, backend: IngressBackend) -> HTTPIngressPath {
        HTTPIngressPath {
            path: Some(path.into()),
            path_type: path_type.into(),
            backend,
        }
    }

    fn local_spec() -> IngressSpec {
        IngressSpec {
            ingress_class_name: Some("nginx".into()),
            default_backend: Some(service_backend("fallback", number(80))),
            rules: Some(vec![
                IngressRule {
                    host: Some("shop.example.com".into()),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![
                            path("/", "Prefix", service_backend("storefront", number(80))),
                            path(
                                "/api",
                                "Prefix",
                                service_backend(
                                    "api",
                                    ServiceBackendPort {
                                        name: Some("http".into()),
                                        number: None,
                                    },
                                ),
                            ),
                            path(
                                "/static/logo.png",
                                "Exact",
                                IngressBackend {
                                    service: None,
                                    resource: Some(TypedLocalObjectReference {
                                        api_group: Some("storage.example.com".into()),
                                        kind: "Bucket".into(),
                                        name: "assets".into(),
                                    }),
                                },
                            ),
                        ],
                    }),
                },
                IngressRule {
                    host: Some("*.shop.example.com".into()),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![path(
                            "/",
                            "ImplementationSpecific",
                            service_backend("tenant-router", number(8080)),
                        )],
                    }),
                },
            ]),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec!["shop.example.com".into(), "*.shop.example.com".into()]),
                secret_name: Some("shop-tls".into()),
            }]),
        }
    }

    fn local_ingress() -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                name: Some("shop".into()),
                namespace: Some("shop".into()),
                uid: Some("c0ff".into()),
                resource_version: Some("1234".into()),
                generation: Some(2),
                labels: Some(map(&[("app", "storefront")])),
                annotations: Some(map(&[
                    ("kubernetes.io/ingress.class", "nginx"),
                    ("nginx.ingress.kubernetes.io/rewrite-target", "/"),
                    ("liqo.io/skip-reflection", "false"),
                    ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ])),
                ..ObjectMeta::default()
            },
            spec: Some(local_spec()),
            status: Some(IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(vec![IngressLoadBalancerIngress {
                        ip: Some("203.0.113.9".into()),
                        ..IngressLoadBalancerIngress::default()
                    }]),
                }),
            }),
        }
    }

    #[test]
    fn copies_routing_and_clears_the_class() {
        let local = local_ingress();
        let remote = IngressForge.remote(&local, &ctx()).unwrap();

        assert_eq!(
            remote.metadata,
            ObjectMeta {
                name: Some("shop".into()),
                labels: Some(map(&[("app", "storefront")])),
                annotations: Some(map(&[("nginx.ingress.kubernetes.io/rewrite-target", "/")])),
                ..ObjectMeta::default()
            }
        );
        assert_eq!(remote.status, None);

        let spec = remote.spec.unwrap();
        let expected = local_spec();
        assert_eq!(spec.ingress_class_name, None);
        assert_eq!(spec.default_backend, expected.default_backend);
        assert_eq!(spec.rules, expected.rules);
        assert_eq!(spec.tls, expected.tls);
    }

    #[test]
    fn ingress_without_class_stays_without() {
        let mut local = local_ingress();
        local.metadata.annotations = None;
        if let Some(spec) = local.spec.as_mut() {
            spec.ingress_class_name = None;
        }
        let remote = IngressForge.remote(&local, &ctx()).unwrap();
        assert_eq!(remote.metadata.annotations, None);
        assert_eq!(
            remote.spec,
            Some(IngressSpec {
                ingress_class_name: None,
                ..local_spec()
            })
        );
    }

    #[test]
    fn class_annotation_alone_leaves_no_annotations() {
        let mut local = local_ingress();
        local.metadata.annotations = Some(map(&[("kubernetes.io/ingress.class", "traefik")]));
        let remote = IngressForge.remote(&local, &ctx()).unwrap();
        assert_eq!(remote.metadata.annotations, None);
    }

    #[test]
    fn ingress_without_spec_yields_no_spec() {
        let mut local = Ingress::default();
        local.metadata.name = Some("bare".into());
        let remote = IngressForge.remote(&local, &ctx()).unwrap();
        assert_eq!(remote.metadata.name.as_deref(), Some("bare"));
        assert_eq!(remote.spec, None);
    }

    #[test]
    fn names_are_not_mapped() {
        assert_eq!(IngressForge.remote_name("shop", &ctx()), "shop");
        assert_eq!(IngressForge.local_name("shop", &ctx()), "shop");
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_load_balancer_addresses_flow_back() {
        let ctx = ForgeContext {
            local_cluster: "rome".parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: "demo".into(),
            remote_namespace: "demo-rome".into(),
        };
        let local: Ingress =
            serde_json::from_value(json!({"metadata": {"name": "front"}})).unwrap();
        let pending = local.clone();
        assert_eq!(IngressForge.local_status(&local, &pending, &ctx), None);
        let served: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "front"},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        }))
        .unwrap();
        assert_eq!(
            IngressForge.local_status(&local, &served, &ctx),
            Some(json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}))
        );
    }
}
