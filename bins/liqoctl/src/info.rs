//! `liqoctl info` and `liqoctl info peer <id>`.

use std::fmt::Write as _;

use kube::Api;
use kube::api::ListParams;
use liqo_auth::controller::foreigncluster::module_state;
use liqo_auth::forge;
use liqo_auth::names;
use liqo_core::api::authentication::v1beta1::ResourceSlice;
use liqo_core::api::core::v1beta1::{ForeignCluster, Module, RoleType};
use liqo_core::api::offloading::v1beta1::VirtualNode;
use liqo_core::ids::ClusterId;

use crate::cluster::Conn;

fn role(r: RoleType) -> &'static str {
    match r {
        RoleType::Consumer => "Consumer",
        RoleType::Provider => "Provider",
        RoleType::ConsumerAndProvider => "ConsumerAndProvider",
        RoleType::Unknown => "Unknown",
    }
}

fn age(fc: &ForeignCluster) -> String {
    let Some(t) = &fc.metadata.creation_timestamp else {
        return "-".into();
    };
    let secs = (k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// Renders rows as an aligned table.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", s.join("   ").trim_end());
    };
    line(header.iter().map(|s| (*s).to_owned()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

fn modules(fc: &ForeignCluster) -> [String; 3] {
    let disabled = Module::default();
    let m = fc.status.as_ref().and_then(|s| s.modules.as_ref());
    [
        module_state(m.map_or(&disabled, |m| &m.networking)).to_owned(),
        module_state(m.map_or(&disabled, |m| &m.authentication)).to_owned(),
        module_state(m.map_or(&disabled, |m| &m.offloading)).to_owned(),
    ]
}

/// `liqoctl info`: the local cluster and its peers.
pub(crate) async fn info(local: &Conn) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "Local cluster");
    let _ = writeln!(out, "  cluster id:  {}", local.id);
    let _ = writeln!(out, "  api server:  {}", local.server);
    let _ = writeln!(
        out,
        "  version:     {}",
        local.version.as_deref().unwrap_or("unknown")
    );
    // What this cluster says about itself to its consumers (--cluster-labels).
    let labels =
        match liqo_auth::bootstrap::read_cluster_labels(&local.client, &local.namespace).await {
            Ok(l) if l.is_empty() => "none".to_owned(),
            Ok(l) => liqo_auth::cluster_labels::format(&l),
            Err(e) => format!("unknown ({e})"),
        };
    let _ = writeln!(out, "  labels:      {labels}");
    let fcs = Api::<ForeignCluster>::all(local.client.clone())
        .list(&ListParams::default())
        .await?;
    let _ = writeln!(out, "\nPeers");
    if fcs.items.is_empty() {
        let _ = writeln!(
            out,
            "  none (peer with `liqoctl peer --remote-kubeconfig ...`)"
        );
        return Ok(out);
    }
    let rows: Vec<Vec<String>> = fcs
        .items
        .iter()
        .map(|fc| {
            let [n, a, o] = modules(fc);
            vec![
                fc.spec.cluster_id.clone(),
                role(fc.status.as_ref().map(|s| s.role).unwrap_or_default()).to_owned(),
                n,
                a,
                o,
                age(fc),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "CLUSTER ID",
            "ROLE",
            "NETWORKING",
            "AUTHENTICATION",
            "OFFLOADING",
            "AGE",
        ],
        &rows,
    ));
    Ok(out)
}

/// `liqoctl info peer <id>`: everything about one peer.
pub(crate) async fn info_peer(local: &Conn, peer: &ClusterId) -> anyhow::Result<String> {
    let fc = Api::<ForeignCluster>::all(local.client.clone())
        .get_opt(peer.as_str())
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not peered with {peer} (no ForeignCluster {peer})",
                local.id
            )
        })?;
    let status = fc.status.clone().unwrap_or_default();
    let mut out = String::new();
    let ann = fc.metadata.annotations.clone().unwrap_or_default();
    let _ = writeln!(out, "Peer {peer}");
    let _ = writeln!(out, "  role:            {}", role(status.role));
    let _ = writeln!(
        out,
        "  api server:      {}",
        status.api_server_url.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  versions:        local {}, remote {}",
        ann.get(names::LOCAL_VERSION_ANNOTATION)
            .map_or("unknown", String::as_str),
        ann.get(names::REMOTE_VERSION_ANNOTATION)
            .map_or("unknown", String::as_str),
    );
    if let Some(tn) = &status.tenant_namespace {
        let _ = writeln!(
            out,
            "  tenant namespace: local {}, remote {}",
            tn.local.as_deref().unwrap_or("-"),
            tn.remote.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(out, "\nModules");
    let disabled = Module::default();
    let m = status.modules.clone();
    let mut rows = Vec::new();
    for (name, module) in [
        (
            "networking",
            m.as_ref().map_or(&disabled, |m| &m.networking),
        ),
        (
            "authentication",
            m.as_ref().map_or(&disabled, |m| &m.authentication),
        ),
        (
            "offloading",
            m.as_ref().map_or(&disabled, |m| &m.offloading),
        ),
    ] {
        if module.conditions.is_empty() {
            rows.push(vec![
                name.to_owned(),
                module_state(module).to_owned(),
                "-".into(),
                "-".into(),
            ]);
        }
        for c in &module.conditions {
            rows.push(vec![
                name.to_owned(),
                module_state(module).to_owned(),
                format!("{:?}", c.type_),
                format!("{:?}: {}", c.status, c.message.clone().unwrap_or_default()),
            ]);
        }
    }
    out.push_str(&table(&["MODULE", "STATUS", "CONDITION", "DETAIL"], &rows));

    let ns = peer.tenant_namespace();
    let slices = Api::<ResourceSlice>::namespaced(local.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    if !slices.is_empty() {
        let _ = writeln!(out, "\nResourceSlices");
        let rows: Vec<Vec<String>> = slices
            .iter()
            .map(|s| {
                let st = s.status.clone().unwrap_or_default();
                let cond = |t| {
                    st.conditions
                        .iter()
                        .find(|c| c.type_ == t)
                        .map_or("Pending".to_owned(), |c| format!("{:?}", c.status))
                };
                vec![
                    s.metadata.name.clone().unwrap_or_default(),
                    if forge::is_replica(&s.metadata) { "provide" } else { "consume" }.into(),
                    cond(liqo_core::api::authentication::v1beta1::ResourceSliceConditionType::Authentication),
                    cond(liqo_core::api::authentication::v1beta1::ResourceSliceConditionType::Resources),
                    st.resources
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.0))
                        .collect::<Vec<_>>()
                        .join(","),
                    // The provider's cluster labels (its --cluster-labels).
                    liqo_auth::cluster_labels::format(&st.node_labels),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "NAME",
                "ACTION",
                "AUTHENTICATION",
                "RESOURCES",
                "GRANTED",
                "CLUSTER LABELS",
            ],
            &rows,
        ));
    }
    let vns = Api::<VirtualNode>::namespaced(local.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    if !vns.is_empty() {
        let _ = writeln!(out, "\nVirtualNodes");
        let rows: Vec<Vec<String>> = vns
            .iter()
            .map(|v| {
                vec![
                    v.metadata.name.clone().unwrap_or_default(),
                    v.spec
                        .kubeconfig_secret_ref
                        .as_ref()
                        .map(|r| r.name.clone())
                        .unwrap_or_default(),
                    v.spec
                        .resource_quota
                        .as_ref()
                        .and_then(|q| q.hard.as_ref())
                        .map(|h| {
                            h.iter()
                                .map(|(k, v)| format!("{k}={}", v.0))
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(&["NAME", "KUBECONFIG SECRET", "RESOURCES"], &rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_aligned() {
        let t = table(
            &["A", "LONG HEADER"],
            &[
                vec!["xxxxx".into(), "y".into()],
                vec!["z".into(), "w".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A       LONG HEADER");
        assert_eq!(lines[1], "xxxxx   y");
    }
}
