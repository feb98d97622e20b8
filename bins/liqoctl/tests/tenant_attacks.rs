//! A tenant attacking its provider and the other tenants, on real control planes: rome and
//! naples both consume from milan; naples peered with a least-privilege peering user and plays
//! the attacker with every credential it legitimately holds (its peering user, its control-plane
//! identity, the identity of its ResourceSlice). Each attack must be refused with a clear
//! reason, and nothing it asked for may exist afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use liqo_auth::{ClusterKeys, crypto, names};
use liqo_core::api::authentication::v1beta1::{
    ResourceSlice, ResourceSliceConditionStatus, ResourceSliceConditionType, Tenant,
};
use liqo_core::api::offloading::v1beta1::{NamespaceMap, ShadowPod};
use liqo_core::ids::ClusterId;
use liqo_testenv::{Cluster, eventually};
use support::*;

/// Asserts that `result` is an API refusal whose message contains every `needle`.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>, needles: &[&str]) {
    match result {
        Err(kube::Error::Api(s)) => {
            for n in needles {
                assert!(
                    s.message.contains(n),
                    "refusal {:?} does not mention {n:?}",
                    s.message
                );
            }
            eprintln!("refused as expected ({}): {}", s.code, s.message);
        }
        other => panic!("expected a refusal mentioning {needles:?}, got {other:?}"),
    }
}

/// A client from the kubeconfig in Secret `name` (key `kubeconfig`) of `ns` on `cluster`.
async fn identity(cluster: &Cluster, ns: &str, name: &str) -> Client {
    let secret = Api::<Secret>::namespaced(cluster.client(), ns)
        .get(name)
        .await
        .unwrap();
    let yaml = String::from_utf8(secret.data.unwrap()[names::KUBECONFIG_KEY].0.clone()).unwrap();
    liqo_auth::kubeconfig::client_from_yaml(&yaml)
        .await
        .unwrap()
}

fn shadow_pod(name: &str, spec: serde_json::Value) -> ShadowPod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "ShadowPod",
        "metadata": {"name": name},
        "spec": {"pod": spec},
    }))
    .unwrap()
}

fn with_cpu(cpu: &str) -> serde_json::Value {
    serde_json::json!({"containers": [{"name": "app", "image": "busybox",
        "resources": {"requests": {"cpu": cpu}}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_impersonate_escalate_or_exceed_its_grant() {
    build_virtual_kubelet();
    let clusters = clusters(&["ta-rome", "ta-naples", "ta-milan"]).await;
    let (rome, naples, milan) = (&clusters[0], &clusters[1], &clusters[2]);
    let _m = [
        manager(rome, "rome", &[]),
        manager(naples, "naples", &[]),
        // A provider publishing labels that would make its virtual node claim to be another
        // cluster or a control-plane node.
        manager(
            milan,
            "milan",
            &[
                "--cluster-labels",
                "liqo.io/remote-cluster-id=rome,node-role.kubernetes.io/control-plane=,kubernetes.io/hostname=master,topology.liqo.io/region=north",
            ],
        ),
    ];
    for c in [rome, naples, milan] {
        ready(c).await;
    }
    assert!(
        peer(
            rome,
            milan,
            &["--cpu", "2", "--memory", "4Gi", "--pods", "50"]
        )
        .status
        .success()
    );
    let node = virtual_node_ready(rome, "milan").await;
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(labels["liqo.io/remote-cluster-id"], "milan");
    assert_eq!(labels["kubernetes.io/hostname"], "milan");
    assert!(
        !labels.contains_key("node-role.kubernetes.io/control-plane"),
        "{labels:?}"
    );
    assert_eq!(
        labels["topology.liqo.io/region"], "north",
        "cluster labels still flow"
    );
    let user_kc = liqoctl_ok(
        milan,
        &[
            "generate",
            "peering-user",
            "--consumer-cluster-id",
            "naples",
        ],
    );
    let user_path = naples.dir().join("milan-peering-user.kubeconfig");
    std::fs::write(&user_path, &user_kc).unwrap();
    let out = liqoctl(
        naples,
        &[
            "peer",
            "--remote-kubeconfig",
            user_path.to_str().unwrap(),
            "--skip-networking",
            "--cpu",
            "1",
            "--memory",
            "1Gi",
            "--pods",
            "3",
            "--timeout",
            "60s",
        ],
    );
    assert!(
        out.status.success(),
        "the least-privilege peering user can still peer"
    );
    let as_user = liqo_auth::kubeconfig::client_from_yaml(&user_kc)
        .await
        .unwrap();
    let (rome_id, naples_id) = (
        ClusterId::new("rome").unwrap(),
        ClusterId::new("naples").unwrap(),
    );
    let naples_ns = naples_id.tenant_namespace(); // on milan

    // 1. Impersonation: a Tenant for rome inside naples' tenant namespace, signed with the
    //    attacker's key over naples' nonce.
    let nonce = Api::<Secret>::namespaced(as_user.clone(), &naples_ns)
        .get(names::NONCE_SECRET)
        .await
        .expect("a peering user reads its own nonce");
    let nonce =
        liqo_auth::Nonce::from_secret_data(&nonce.data.unwrap()[crypto::NONCE_FIELD].0).unwrap();
    let evil = ClusterKeys::generate().unwrap();
    let signature = crypto::sign_nonce(&evil, &nonce);
    let csr = crypto::create_csr(&evil, &rome_id).unwrap();
    let mut forged =
        liqo_auth::forge::tenant(&rome_id, &evil.public_key_pem(), &csr, &signature, None);
    forged.metadata.namespace = Some(naples_ns.clone());
    let tenants = Api::<Tenant>::namespaced(as_user.clone(), &naples_ns);
    refused(
        tenants.create(&PostParams::default(), &forged).await,
        &["spec.clusterID rome is not the cluster of namespace liqo-tenant-naples"],
    );
    // Named after naples, claiming rome.
    forged.metadata.name = Some("naples-2".into());
    refused(
        tenants.create(&PostParams::default(), &forged).await,
        &["named after its spec.clusterID"],
    );
    // Rewriting its own Tenant to claim rome.
    refused(
        tenants
            .patch(
                "naples",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"clusterID": "rome"}})),
            )
            .await,
        &["cannot be changed"],
    );
    // Nonces: the user may neither choose its own nor write any Secret.
    let secrets = Api::<Secret>::namespaced(as_user.clone(), &naples_ns);
    refused(
        secrets
            .patch(
                names::NONCE_SECRET,
                &PatchParams::default(),
                &Patch::Merge(
                    serde_json::json!({"data": {"nonce": ByteString(b"chosen".to_vec())}}),
                ),
            )
            .await,
        &["forbidden"],
    );
    refused(
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap(),
            )
            .await,
        &["forbidden"],
    );
    refused(secrets.list(&ListParams::default()).await, &["forbidden"]);
    // The provider's private key and the Secrets of the Liqo namespace.
    refused(
        Api::<Secret>::namespaced(as_user.clone(), "liqo")
            .get("authentication-keys")
            .await,
        &["forbidden"],
    );
    // Another tenant's nonce.
    refused(
        Api::<Secret>::namespaced(as_user.clone(), &rome_id.tenant_namespace())
            .get(names::NONCE_SECRET)
            .await,
        &["forbidden"],
    );
    // Nothing was issued to anyone else: rome's Tenant is rome's own, no second one exists.
    let all: Vec<String> = names::<Tenant>(milan, None).await;
    assert_eq!(
        all,
        ["liqo-tenant-naples/naples", "liqo-tenant-rome/rome"],
        "no forged Tenant"
    );

    // 2. A slice CSR for another key, sent with naples' control-plane identity.
    let milan_id = ClusterId::new("milan").unwrap();
    let control_plane = identity(
        naples,
        &milan_id.tenant_namespace(),
        &names::kubeconfig_secret(&names::control_plane_identity(&milan_id)),
    )
    .await;
    let cn = names::resource_slice_common_name("stolen", "naples");
    let other = ClusterKeys::generate().unwrap();
    let csr = crypto::create_csr_with_subject(&other, &cn, "naples").unwrap();
    let mut slice = liqo_auth::forge::resource_slice("stolen", &milan_id, BTreeMap::new(), None);
    slice.metadata.namespace = Some(naples_ns.clone());
    slice.metadata.labels = Some(BTreeMap::from([
        ("liqo.io/replicated".to_owned(), "true".to_owned()),
        ("liqo.io/originID".to_owned(), "naples".to_owned()),
        ("liqo.io/remote-cluster-id".to_owned(), "naples".to_owned()),
    ]));
    slice.spec.consumer_cluster_id = Some("naples".into());
    slice.spec.csr = Some(ByteString(csr.into_bytes()));
    let slices = Api::<ResourceSlice>::namespaced(control_plane.clone(), &naples_ns);
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let answered = eventually("the stolen slice answered", WAIT, || async {
        let s = slices.get_opt("stolen").await.ok()??;
        let st = s.status?;
        st.conditions
            .iter()
            .find(|c| c.type_ == ResourceSliceConditionType::Authentication)
            .cloned()
            .map(|c| (c, st.auth_params))
    })
    .await;
    assert_eq!(answered.0.status, ResourceSliceConditionStatus::Denied);
    assert!(answered.1.is_none(), "no certificate for a foreign key");
    eprintln!("stolen slice denied: {:?}", answered.0.message);
    // 3. The consumer may not write the provider's answer (its grant).
    let own = slices.get("milan").await.unwrap();
    refused(
        slices
            .patch_status(
                "milan",
                &PatchParams::default(),
                &Patch::Merge(
                    serde_json::json!({"status": {"resources": {"cpu": "64", "pods": "1000"}}}),
                ),
            )
            .await,
        &["forbidden"],
    );
    assert_eq!(
        slices.get("milan").await.unwrap().status.unwrap().resources,
        own.status.unwrap().resources
    );
    slices.delete("stolen", &Default::default()).await.unwrap();

    // 4. Pods a tenant may not run, with the identity of its virtual kubelet.
    naples.create_namespace("attack").await.unwrap();
    liqoctl_ok(
        naples,
        &[
            "offload",
            "namespace",
            "attack",
            "--namespace-mapping-strategy",
            "EnforceSameName",
        ],
    );
    // 5. NamespaceMaps: twin namespaces with reserved names, and a claimed origin.
    let maps = Api::<NamespaceMap>::namespaced(control_plane.clone(), &naples_ns);
    maps.patch(
        "milan",
        &PatchParams::apply("attacker").force(),
        &Patch::Apply(serde_json::json!({
            "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceMap",
            "metadata": {"name": "milan", "labels": {"liqo.io/originID": "rome", "liqo.io/replicated": "true"}},
            "spec": {"desiredMapping": {"a": "liqo-tenant-venice", "b": "kube-evil", "c": "stolen-ns"}},
        })),
    )
    .await
    .unwrap();
    let namespaces = Api::<Namespace>::all(milan.client());
    let stolen = eventually("stolen-ns created for naples", WAIT, || async {
        namespaces.get_opt("stolen-ns").await.ok()?
    })
    .await;
    assert_eq!(
        stolen.metadata.labels.as_ref().unwrap()["liqo.io/remote-cluster-id"],
        "naples",
        "bound to the tenant of the map's namespace, not the claimed origin"
    );
    assert_eq!(
        stolen.metadata.labels.as_ref().unwrap()["pod-security.kubernetes.io/enforce"],
        "baseline"
    );
    let binding = Api::<RoleBinding>::namespaced(milan.client(), "stolen-ns")
        .get(&naples_ns)
        .await
        .unwrap();
    assert_eq!(binding.subjects.unwrap()[0].name, "naples");
    for reserved in ["liqo-tenant-venice", "kube-evil"] {
        assert!(
            namespaces.get_opt(reserved).await.unwrap().is_none(),
            "{reserved} must not be created"
        );
    }

    let vk = identity(
        naples,
        &milan_id.tenant_namespace(),
        &names::kubeconfig_secret(&names::resource_slice_identity("milan")),
    )
    .await;
    let shadows = Api::<ShadowPod>::namespaced(vk.clone(), "attack");
    let escape = serde_json::json!({
        "nodeName": "milan-node-0",
        "priorityClassName": "system-node-critical",
        "hostPID": true, "hostNetwork": true,
        "volumes": [
            {"name": "root", "hostPath": {"path": "/"}},
            {"name": "runtime", "hostPath": {"path": "/run/containerd/containerd.sock"}},
        ],
        "containers": [{"name": "evil", "image": "busybox",
            "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}},
            "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
    });
    refused(
        shadows
            .create(&PostParams::default(), &shadow_pod("escape", escape))
            .await,
        &[
            "baseline",
            "nodeName",
            "system-node-critical",
            "hostPID",
            "hostNetwork",
            "host path /",
            "containerd.sock",
            "privileged",
            "SYS_ADMIN",
        ],
    );
    refused(
        shadows
            .create(
                &PostParams::default(),
                &shadow_pod(
                    "pinned",
                    serde_json::json!({"nodeName": "milan-node-0",
                        "containers": [{"name": "app", "image": "busybox"}]}),
                ),
            )
            .await,
        &["nodeName"],
    );

    // 6. The quota: 1 CPU and 3 pods were granted.
    for (name, cpu) in [("q1", "400m"), ("q2", "400m")] {
        shadows
            .create(&PostParams::default(), &shadow_pod(name, with_cpu(cpu)))
            .await
            .unwrap();
    }
    refused(
        shadows
            .create(&PostParams::default(), &shadow_pod("q3", with_cpu("400m")))
            .await,
        &["cpu: 400m more would make 1200m of the 1 granted"],
    );
    shadows
        .create(&PostParams::default(), &shadow_pod("q3", with_cpu("100m")))
        .await
        .unwrap();
    refused(
        shadows
            .create(&PostParams::default(), &shadow_pod("q4", with_cpu("10m")))
            .await,
        &["pods: 1 more would make 4 of the 3 granted"],
    );
    // A forged creator label does not move pods to another account.
    let mut forged = shadow_pod("q5", with_cpu("10m"));
    forged.metadata.labels = Some(BTreeMap::from([(
        "liqo.io/creator-user".to_owned(),
        "somebody-else".to_owned(),
    )]));
    refused(
        shadows.create(&PostParams::default(), &forged).await,
        &["pods: 1 more would make 4 of the 3 granted"],
    );

    // Nothing of what was refused exists on milan.
    let pods = Api::<Pod>::namespaced(milan.client(), "attack");
    let made = eventually("the admitted pods created", WAIT, || async {
        let l = pods.list(&ListParams::default()).await.ok()?;
        (l.items.len() >= 3).then_some(l)
    })
    .await;
    let mut names_made: Vec<String> = made
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names_made.sort();
    assert_eq!(names_made, ["q1", "q2", "q3"]);

    // 7. Cordon: milan's administrator stops new pods of naples; naples cannot undo it.
    let admin_tenants = Api::<Tenant>::namespaced(milan.client(), &naples_ns);
    let set_condition = |c: &'static str| serde_json::json!({"spec": {"tenantCondition": c}});
    admin_tenants
        .patch(
            "naples",
            &PatchParams::default(),
            &Patch::Merge(set_condition("Cordoned")),
        )
        .await
        .unwrap();
    let quotas =
        Api::<liqo_core::api::offloading::v1beta1::Quota>::namespaced(milan.client(), &naples_ns);
    eventually("naples' Quota cordoned", WAIT, || async {
        let q = quotas.list(&ListParams::default()).await.ok()?;
        q.items
            .iter()
            .all(|q| q.spec.cordoned == Some(true))
            .then_some(())
            .filter(|()| !q.items.is_empty())
    })
    .await;
    shadows.delete("q3", &Default::default()).await.unwrap();
    refused(
        shadows
            .create(&PostParams::default(), &shadow_pod("q6", with_cpu("10m")))
            .await,
        &["cordoned"],
    );
    refused(
        tenants
            .patch(
                "naples",
                &PatchParams::default(),
                &Patch::Merge(set_condition("Active")),
            )
            .await,
        &["decided by the provider's administrator"],
    );
    refused(
        tenants.delete("naples", &Default::default()).await,
        &["only be removed by the provider's administrator"],
    );

    // 8. Drain: naples loses its slices, namespaces and pods, and its rights.
    admin_tenants
        .patch(
            "naples",
            &PatchParams::default(),
            &Patch::Merge(set_condition("Drained")),
        )
        .await
        .unwrap();
    eventually("naples' twin namespace and pods gone", WAIT, || async {
        let gone = Api::<Namespace>::all(milan.client())
            .get_opt("attack")
            .await
            .ok()?
            .is_none();
        gone.then_some(())
    })
    .await;
    refused(maps.get("milan").await, &["forbidden"]);
    refused(
        tenants
            .patch(
                "naples",
                &PatchParams::default(),
                &Patch::Merge(set_condition("Active")),
            )
            .await,
        &["decided by the provider's administrator"],
    );
    // rome, the other tenant, is untouched.
    assert!(
        Api::<Tenant>::namespaced(milan.client(), &rome_id.tenant_namespace())
            .get("rome")
            .await
            .unwrap()
            .status
            .and_then(|s| s.auth_params)
            .is_some()
    );
}
