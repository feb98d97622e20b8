//! Checks of the generated CRDs against upstream Liqo's names, scopes and subresources.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use super::crds;

/// One expected CRD: group, version, kind, plural, cluster-scoped, status subresource, short
/// names.
struct Expected {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    cluster_scoped: bool,
    status: bool,
    short_names: &'static [&'static str],
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    status: bool,
    short_names: &'static [&'static str],
) -> Expected {
    Expected {
        group,
        version,
        kind,
        plural,
        cluster_scoped: false,
        status,
        short_names,
    }
}

const CORE: &str = "core.liqo.io";
const AUTH: &str = "authentication.liqo.io";
const OFF: &str = "offloading.liqo.io";
const NET: &str = "networking.liqo.io";
const IPAM: &str = "ipam.liqo.io";
const B1: &str = "v1beta1";
const A1: &str = "v1alpha1";

/// Upstream Liqo's CRDs, as listed by its `deployments/liqo/charts/liqo-crds/crds/`.
const EXPECTED: &[Expected] = &[
    Expected {
        cluster_scoped: true,
        ..kind(CORE, B1, "ForeignCluster", "foreignclusters", true, &["fc"])
    },
    kind(AUTH, B1, "Tenant", "tenants", true, &["tn"]),
    kind(AUTH, B1, "Identity", "identities", true, &["id"]),
    kind(
        AUTH,
        B1,
        "ResourceSlice",
        "resourceslices",
        true,
        &["rslice"],
    ),
    kind(AUTH, B1, "Renew", "renews", true, &[]),
    kind(
        OFF,
        B1,
        "VirtualNode",
        "virtualnodes",
        true,
        &["vn", "vnode", "virno", "vno"],
    ),
    kind(
        OFF,
        B1,
        "VkOptionsTemplate",
        "vkoptionstemplates",
        false,
        &["vkot", "vkopt"],
    ),
    kind(
        OFF,
        B1,
        "NamespaceOffloading",
        "namespaceoffloadings",
        true,
        &["nso", "nsof", "nsoff", "nsoffloading"],
    ),
    kind(
        OFF,
        B1,
        "NamespaceMap",
        "namespacemaps",
        true,
        &["nm", "nsmap"],
    ),
    kind(OFF, B1, "ShadowPod", "shadowpods", true, &["shp", "shpod"]),
    kind(
        OFF,
        B1,
        "ShadowEndpointSlice",
        "shadowendpointslices",
        false,
        &["shes", "sheps", "seps"],
    ),
    kind(OFF, B1, "Quota", "quotas", false, &["qt"]),
    kind(NET, B1, "Configuration", "configurations", true, &["conf"]),
    kind(
        NET,
        B1,
        "GatewayServer",
        "gatewayservers",
        true,
        &["gws", "gwserver"],
    ),
    kind(
        NET,
        B1,
        "GatewayClient",
        "gatewayclients",
        true,
        &["gwc", "gwclient"],
    ),
    kind(
        NET,
        B1,
        "WgGatewayServer",
        "wggatewayservers",
        true,
        &["wgs", "wggs"],
    ),
    kind(
        NET,
        B1,
        "WgGatewayClient",
        "wggatewayclients",
        true,
        &["wgc", "wggc"],
    ),
    kind(
        NET,
        B1,
        "WgGatewayServerTemplate",
        "wggatewayservertemplates",
        false,
        &["wggst", "wgst"],
    ),
    kind(
        NET,
        B1,
        "WgGatewayClientTemplate",
        "wggatewayclienttemplates",
        false,
        &["wggct", "wgct"],
    ),
    kind(
        NET,
        B1,
        "PublicKey",
        "publickeies",
        false,
        &["pk", "pkies", "pkey"],
    ),
    kind(NET, B1, "Connection", "connections", true, &["conn"]),
    kind(
        NET,
        B1,
        "InternalFabric",
        "internalfabrics",
        false,
        &["if", "ifabric"],
    ),
    Expected {
        cluster_scoped: true,
        ..kind(
            NET,
            B1,
            "InternalNode",
            "internalnodes",
            true,
            &["in", "inode"],
        )
    },
    kind(NET, B1, "GeneveTunnel", "genevetunnels", false, &["gvtn"]),
    kind(
        NET,
        B1,
        "RouteConfiguration",
        "routeconfigurations",
        true,
        &["rcnf", "rcnfg", "rcfg", "routecfg"],
    ),
    kind(
        NET,
        B1,
        "FirewallConfiguration",
        "firewallconfigurations",
        true,
        &["fw", "fwconfig", "fwcfg"],
    ),
    kind(IPAM, A1, "Network", "networks", true, &["net"]),
    kind(IPAM, A1, "IP", "ips", true, &[]),
];

fn find<'a>(crds: &'a [CustomResourceDefinition], kind: &str) -> &'a CustomResourceDefinition {
    let found: Vec<_> = crds
        .iter()
        .filter(|crd| crd.spec.names.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "kind {kind} must appear exactly once");
    found[0]
}

#[test]
fn every_kind_exactly_once() {
    let crds = crds();
    assert_eq!(crds.len(), EXPECTED.len());
    let kinds: BTreeSet<_> = crds.iter().map(|crd| crd.spec.names.kind.clone()).collect();
    assert_eq!(kinds.len(), crds.len(), "duplicate kinds");
    for expected in EXPECTED {
        find(&crds, expected.kind);
    }
}

#[test]
fn names_scope_and_subresources_match_upstream() {
    let crds = crds();
    for e in EXPECTED {
        let crd = find(&crds, e.kind);
        let name = format!("{}.{}", e.plural, e.group);
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(name.as_str()),
            "{}",
            e.kind
        );
        assert_eq!(crd.spec.group, e.group, "{}", e.kind);
        assert_eq!(crd.spec.names.plural, e.plural, "{}", e.kind);
        assert_eq!(
            crd.spec.names.singular.as_deref(),
            Some(e.kind.to_lowercase().as_str()),
            "{}",
            e.kind
        );
        let scope = if e.cluster_scoped {
            "Cluster"
        } else {
            "Namespaced"
        };
        assert_eq!(crd.spec.scope, scope, "{}", e.kind);
        let short: Vec<&str> = crd
            .spec
            .names
            .short_names
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_eq!(short, e.short_names, "{}", e.kind);

        assert_eq!(crd.spec.versions.len(), 1, "{}", e.kind);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, e.version, "{}", e.kind);
        assert!(version.served && version.storage, "{}", e.kind);
        let has_status = version
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some());
        assert_eq!(has_status, e.status, "status subresource of {}", e.kind);
    }
}

#[test]
fn every_crd_is_in_the_liqo_category() {
    for crd in crds() {
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&[super::CATEGORY.to_string()][..]),
            "{}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn gateway_templates_carry_the_template_label() {
    for crd in crds() {
        let labelled = crd
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(super::networking::v1beta1::GATEWAY_TEMPLATE_LABEL))
            .is_some_and(|v| v == "true");
        let is_template = crd.spec.names.kind.ends_with("Template")
            && crd.spec.group == super::networking::v1beta1::GROUP;
        assert_eq!(labelled, is_template, "{}", crd.spec.names.kind);
    }
}

/// Walks a schema, calling `check` on every node with its path.
fn walk(path: &str, schema: &JSONSchemaProps, check: &mut dyn FnMut(&str, &JSONSchemaProps)) {
    check(path, schema);
    for (name, prop) in schema.properties.iter().flatten() {
        walk(&format!("{path}.{name}"), prop, check);
    }
    match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => walk(&format!("{path}[]"), items, check),
        Some(JSONSchemaPropsOrArray::Schemas(_)) => panic!("{path}: tuple-typed array"),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &schema.additional_properties {
        walk(&format!("{path}{{}}"), additional, check);
    }
}

/// The schemas must be structural: every node has a type (or is int-or-string or keeps unknown
/// fields), no `oneOf`/`anyOf`/`allOf` introduce new fields, and `additionalProperties` never
/// sits beside `properties`.
#[test]
fn schemas_are_structural() {
    for crd in crds() {
        let kind = crd.spec.names.kind.clone();
        let version = &crd.spec.versions[0];
        let root = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap_or_else(|| panic!("{kind}: no schema"));
        walk("", root, &mut |path, node| {
            let typed = node.type_.is_some()
                || node.x_kubernetes_int_or_string == Some(true)
                || node.x_kubernetes_preserve_unknown_fields == Some(true);
            assert!(typed, "{kind}{path}: node without a type");
            for (name, branches) in [
                ("oneOf", &node.one_of),
                ("anyOf", &node.any_of),
                ("allOf", &node.all_of),
            ] {
                for branch in branches.iter().flatten() {
                    assert!(
                        branch.properties.is_none() && branch.type_.is_none(),
                        "{kind}{path}: {name} branch declares fields or a type"
                    );
                }
            }
            assert!(
                !(node.properties.is_some() && node.additional_properties.is_some()),
                "{kind}{path}: additionalProperties beside properties"
            );
            if let Some(format) = &node.format {
                assert!(
                    [
                        "int32",
                        "int64",
                        "double",
                        "float",
                        "byte",
                        "date-time",
                        "cidr",
                        "ipv4"
                    ]
                    .contains(&format.as_str()),
                    "{kind}{path}: format {format} unknown to the API server"
                );
            }
        });
    }
}

#[test]
fn defaults_match_upstream() {
    use super::authentication::v1beta1::{AuthzPolicy, TenantCondition, TenantSpec};
    use super::offloading::v1beta1::{
        NamespaceMappingStrategy, NamespaceOffloadingSpec, PodOffloadingStrategy,
    };

    let tenant: TenantSpec = serde_json::from_value(serde_json::json!({})).unwrap_or_default();
    assert_eq!(tenant.authz_policy, AuthzPolicy::KeysExchange);
    assert_eq!(tenant.tenant_condition, TenantCondition::Active);

    let nso: NamespaceOffloadingSpec =
        serde_json::from_value(serde_json::json!({})).unwrap_or_default();
    assert_eq!(
        nso.namespace_mapping_strategy,
        NamespaceMappingStrategy::DefaultName
    );
    assert_eq!(
        nso.pod_offloading_strategy,
        PodOffloadingStrategy::LocalAndRemote
    );

    let rule: super::networking::v1beta1::firewall::FilterRule =
        serde_json::from_value(serde_json::json!({"match": [], "action": "accept"}))
            .unwrap_or_else(|err| panic!("{err}"));
    assert!(rule.counter, "counter defaults to true");

    let crds = crds();
    let tenant = find(&crds, "Tenant");
    let spec = &tenant.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("spec"))
        .and_then(|s| s.properties.clone())
        .unwrap_or_default();
    let default_of = |field: &str| spec.get(field).and_then(|f| f.default.clone()).map(|d| d.0);
    assert_eq!(
        default_of("authzPolicy"),
        Some(serde_json::json!("KeysExchange"))
    );
    assert_eq!(
        default_of("tenantCondition"),
        Some(serde_json::json!("Active"))
    );
}
