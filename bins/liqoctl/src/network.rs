//! Networking during `liqoctl peer`: Configuration exchange, GatewayServer on the provider,
//! GatewayClient on the consumer, PublicKey exchange, and the wait for the Connections. The
//! gateways and the Configuration controller (liqo-net, liqo-controller-manager) do the work;
//! liqoctl creates the resources and waits, naming what is missing on timeout.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch};
use liqo_auth::forge;
use liqo_core::api::ipam::v1alpha1::Network;
use liqo_core::api::networking::v1beta1::{
    Configuration, Connection, ConnectionStatusValue, EndpointStatus, GatewayClient, GatewayServer,
    PublicKey,
};
use liqo_core::ids::ClusterId;

use crate::cluster::Conn;
use crate::peer::{ensure_tenant_namespace, field_manager};
use crate::progress::{Progress, wait_for};

/// The allocated (or desired) CIDR of Network `name` in the Liqo namespace.
async fn network_cidr(on: &Conn, name: &str) -> anyhow::Result<String> {
    // A controller-manager that has just started creates its networks within moments: wait a
    // little before concluding that there is none.
    let api = Api::<Network>::namespaced(on.client.clone(), &on.namespace);
    let net = wait_for(
        NETWORK_WAIT,
        || {
            format!(
                "no Network {}/{name} on {}: its liqo-controller-manager does not run the \
                 networking module: it needs the cluster's pod CIDR (--pod-cidr, when it is not \
                 recorded in kube-system/kubeadm-config) and --enable-networking=true; its log \
                 says which. Or peer with --skip-networking",
                on.namespace, on.id
            )
        },
        || async {
            api.get_opt(name)
                .await
                .with_context(|| format!("reading Network {}/{name} on {}", on.namespace, on.id))
        },
    )
    .await?;
    Ok(cidr_of(&net))
}

/// How long `peer` waits for the IPAM's own networks of a cluster to appear.
const NETWORK_WAIT: Duration = Duration::from_secs(30);

/// The status CIDR of a Network, or its spec CIDR before allocation.
pub(crate) fn cidr_of(net: &Network) -> String {
    net.status
        .as_ref()
        .and_then(|s| s.cidr.as_ref())
        .map_or_else(|| net.spec.cidr.0.clone(), |c| c.0.clone())
}

/// The raw 32-byte WireGuard public key in a gateway Secret.
pub(crate) fn public_key_of(secret: &Secret) -> anyhow::Result<Vec<u8>> {
    let key = secret
        .data
        .as_ref()
        .and_then(|d| d.get("publicKey"))
        .map(|b| b.0.clone())
        .ok_or_else(|| anyhow!("the gateway Secret has no publicKey"))?;
    if key.len() != 32 {
        anyhow::bail!(
            "the gateway Secret's publicKey has {} bytes, expected 32",
            key.len()
        );
    }
    Ok(key)
}

/// The endpoint a GatewayClient must reach, from its server's status.
pub(crate) fn client_endpoint(server: &GatewayServer) -> Option<EndpointStatus> {
    let ep = server.status.as_ref()?.endpoint.clone()?;
    (!ep.addresses.is_empty()).then_some(ep)
}

async fn gateway_key(on: &Conn, namespace: &str, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(secret) = Api::<Secret>::namespaced(on.client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        return Ok(None);
    };
    public_key_of(&secret).map(Some)
}

/// Configuration exchange, gateways, keys, connections.
pub(crate) async fn connect(
    progress: &Progress,
    consumer: &Conn,
    provider: &Conn,
    t: Duration,
) -> anyhow::Result<()> {
    let (c, p) = (&consumer.id, &provider.id);
    progress
        .step("tenant namespaces for networking", async {
            ensure_tenant_namespace(consumer, p).await?;
            ensure_tenant_namespace(provider, c).await?;
            Ok(())
        })
        .await?;

    for (on, other) in [(consumer, provider), (provider, consumer)] {
        progress
            .step(format!("Configuration {} on {}", other.id, on.id), async {
                let pod = network_cidr(other, "pod-cidr").await?;
                let ext = network_cidr(other, "external-cidr").await?;
                let conf = forge::configuration(&other.id, &pod, &ext);
                let ns = other.id.tenant_namespace();
                let api = Api::<Configuration>::namespaced(on.client.clone(), &ns);
                api.patch(other.id.as_str(), &field_manager(), &Patch::Apply(&conf))
                    .await
                    .with_context(|| {
                        format!("creating Configuration {ns}/{} on {}", other.id, on.id)
                    })?;
                wait_for(
                    t,
                    || {
                        format!(
                            "Configuration {ns}/{} on {} has no status.remote.cidr: is the \
                         networking Configuration controller of liqo-controller-manager running \
                         on {}?",
                            other.id, on.id, on.id
                        )
                    },
                    || async {
                        let conf = api.get_opt(other.id.as_str()).await?;
                        Ok(conf
                            .and_then(|c| c.status?.remote?.cidr)
                            .filter(|c| !c.pod.is_empty())
                            .map(|_| ()))
                    },
                )
                .await
            })
            .await?;
    }

    let server_ns = c.tenant_namespace(); // on the provider
    let client_ns = p.tenant_namespace(); // on the consumer
    let (endpoint, server_key) = progress
        .step(format!("GatewayServer {c} on {p}"), async {
            let api = Api::<GatewayServer>::namespaced(provider.client.clone(), &server_ns);
            api.patch(
                c.as_str(),
                &field_manager(),
                &Patch::Apply(&forge::gateway_server(c)),
            )
            .await
            .with_context(|| format!("creating GatewayServer {server_ns}/{c} on {p}"))?;
            wait_for(
                t,
                || {
                    format!(
                        "no gateway is serving GatewayServer {server_ns}/{c} on {p} (no \
                     status.endpoint/secretRef): is liqo-gateway running on {p}? (Gateway \
                     pods run it in a cluster; on a single host, liqo-controller-manager \
                     --gateway-launcher netns starts it)"
                    )
                },
                || async {
                    let Some(gw) = api.get_opt(c.as_str()).await? else {
                        return Ok(None);
                    };
                    let (Some(ep), Some(secret)) = (
                        client_endpoint(&gw),
                        gw.status.as_ref().and_then(|s| s.secret_ref.clone()),
                    ) else {
                        return Ok(None);
                    };
                    let ns = secret.namespace.unwrap_or_else(|| server_ns.clone());
                    let name = secret.name.unwrap_or_default();
                    Ok(gateway_key(provider, &ns, &name)
                        .await?
                        .map(|k| (ep.clone(), k)))
                },
            )
            .await
        })
        .await?;

    let client_key = progress
        .step(format!("GatewayClient {p} on {c}"), async {
            let api = Api::<GatewayClient>::namespaced(consumer.client.clone(), &client_ns);
            api.patch(
                p.as_str(),
                &field_manager(),
                &Patch::Apply(&forge::gateway_client(p, endpoint.clone())),
            )
            .await
            .with_context(|| format!("creating GatewayClient {client_ns}/{p} on {c}"))?;
            wait_for(
                t,
                || {
                    format!(
                        "no gateway is serving GatewayClient {client_ns}/{p} on {c} (no \
                     status.secretRef): is liqo-gateway running on {c}? (Gateway pods run it \
                     in a cluster; on a single host, liqo-controller-manager --gateway-launcher \
                     netns starts it)"
                    )
                },
                || async {
                    let Some(secret) = api
                        .get_opt(p.as_str())
                        .await?
                        .and_then(|g| g.status?.secret_ref)
                    else {
                        return Ok(None);
                    };
                    let ns = secret.namespace.unwrap_or_else(|| client_ns.clone());
                    gateway_key(consumer, &ns, &secret.name.unwrap_or_default()).await
                },
            )
            .await
        })
        .await?;

    progress
        .step("gateway public keys exchanged", async {
            for (on, peer, key) in [(consumer, p, &server_key), (provider, c, &client_key)] {
                let ns = peer.tenant_namespace();
                Api::<PublicKey>::namespaced(on.client.clone(), &ns)
                    .patch(
                        peer.as_str(),
                        &field_manager(),
                        &Patch::Apply(&forge::gateway_public_key(peer, key)),
                    )
                    .await
                    .with_context(|| format!("creating PublicKey {ns}/{peer} on {}", on.id))?;
            }
            Ok(())
        })
        .await?;

    for (on, peer) in [(consumer, p), (provider, c)] {
        progress
            .step(format!("tunnel connected on {}", on.id), async {
                wait_connected(on, peer, t).await
            })
            .await?;
    }
    Ok(())
}

async fn wait_connected(on: &Conn, peer: &ClusterId, t: Duration) -> anyhow::Result<()> {
    let ns = peer.tenant_namespace();
    let api = Api::<Connection>::namespaced(on.client.clone(), &ns);
    wait_for(
        t,
        || {
            format!(
                "no Connection in {ns} on {} reports Connected: is the gateway running and \
                 can the two gateways reach each other (UDP)?",
                on.id
            )
        },
        || async {
            let list = api.list(&ListParams::default()).await?;
            Ok(list
                .items
                .iter()
                .any(|c| {
                    c.status.as_ref().and_then(|s| s.value)
                        == Some(ConnectionStatusValue::Connected)
                })
                .then_some(()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use liqo_core::api::ipam::v1alpha1::{NetworkSpec, NetworkStatus};
    use liqo_core::api::networking::v1beta1::{Cidr, GatewayServerStatus};

    #[test]
    fn network_cidr_prefers_the_status() {
        let mut n = Network::new(
            "pod-cidr",
            NetworkSpec {
                cidr: Cidr("10.0.0.0/16".into()),
                pre_allocated: 0,
            },
        );
        assert_eq!(cidr_of(&n), "10.0.0.0/16");
        n.status = Some(NetworkStatus {
            cidr: Some(Cidr("10.1.0.0/16".into())),
            ..Default::default()
        });
        assert_eq!(cidr_of(&n), "10.1.0.0/16");
    }

    #[test]
    fn gateway_public_keys_are_raw_32_bytes() {
        let mut s = Secret::default();
        assert!(public_key_of(&s).is_err());
        s.data = Some([("publicKey".to_owned(), ByteString(vec![1; 44]))].into());
        assert!(
            public_key_of(&s)
                .unwrap_err()
                .to_string()
                .contains("44 bytes")
        );
        s.data = Some([("publicKey".to_owned(), ByteString(vec![1; 32]))].into());
        assert_eq!(public_key_of(&s).unwrap().len(), 32);
    }

    #[test]
    fn client_endpoint_needs_addresses() {
        let mut gw = forge::gateway_server(&ClusterId::new("rome").unwrap());
        assert!(client_endpoint(&gw).is_none());
        gw.status = Some(GatewayServerStatus {
            endpoint: Some(EndpointStatus {
                addresses: vec!["192.0.2.1".into()],
                port: Some(30123),
                ..Default::default()
            }),
            ..Default::default()
        });
        let ep = client_endpoint(&gw).unwrap();
        let client = forge::gateway_client(&ClusterId::new("milan").unwrap(), ep);
        assert_eq!(client.spec.endpoint.unwrap().port, Some(30123));
        assert_eq!(
            client.metadata.namespace.as_deref(),
            Some("liqo-tenant-milan")
        );
    }
}
