//! The IP controller: gives each IP resource an address of its network (the external CIDR
//! unless `spec.networkRef` names another Network).

use std::{net::IpAddr, sync::Arc, time::Duration};

use ipnetwork::IpNetwork;
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, finalizer, finalizer::Event},
};
use liqo_core::{
    api::ipam::v1alpha1::{Ip, Network},
    api::networking::v1beta1::{Cidr, IpAddress},
    labels::ipam::IP_FINALIZER,
    runtime::set_condition,
};
use tracing::{info, warn};

use super::{
    Context, EXTERNAL_CIDR_NETWORK, RETRY, await_change, from_finalizer, kube_err, reason,
    write_status,
};
use crate::{Error, Result};

/// How soon to look again when the referenced Network has no CIDR yet.
const NETWORK_PENDING: Duration = Duration::from_secs(2);

pub(super) async fn reconcile(ip: Arc<Ip>, ctx: Arc<Context>) -> Result<Action> {
    let ns = ip.namespace().unwrap_or_default();
    let api: Api<Ip> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, IP_FINALIZER, ip.clone(), |event| async {
        match event {
            Event::Apply(ip) => allocate(&ctx, &api, &ip).await,
            Event::Cleanup(ip) => release(&ctx, &ip).await,
        }
    })
    .await
    .map_err(from_finalizer)?;
    ctx.ip_backoff.reset_object(ip.as_ref());
    Ok(action)
}

pub(super) fn error_policy(ip: Arc<Ip>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(ip = %ip.name_any(), namespace = ?ip.namespace(), %error, "reconcile failed");
    ctx.ip_backoff.requeue_object(ip.as_ref())
}

async fn allocate(ctx: &Context, api: &Api<Ip>, cached: &Ip) -> Result<Action> {
    let name = cached.name_any();
    let ip = api
        .get_status(&name)
        .await
        .map_err(kube_err(format!("reading IP {name}")))?;
    if ip.status.as_ref().is_some_and(|s| s.ip.is_some()) {
        return Ok(await_change());
    }
    if let Err(e) = ip.spec.ip.as_str().parse::<IpAddr>() {
        let e = Error::InvalidResource {
            kind: "IP",
            name,
            reason: format!(
                "spec.ip {:?} is not an IP address: {e}",
                ip.spec.ip.as_str()
            ),
        };
        write_failure(api, &ip, &e).await?;
        return Ok(await_change());
    }
    let Some(network) = network_cidr(ctx, &ip).await? else {
        let e = Error::InvalidResource {
            kind: "IP",
            name,
            reason: "its Network does not exist or has no CIDR allocated yet".to_owned(),
        };
        write_failure(api, &ip, &e).await?;
        return Ok(Action::requeue(NETWORK_PENDING));
    };
    let addr = match ctx.allocator.acquire_ip(network, None).await {
        Ok(addr) => addr,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            write_failure(api, &ip, &e).await?;
            return Ok(Action::requeue(RETRY));
        }
    };
    let mut status = ip.status.clone().unwrap_or_default();
    status.ip = Some(IpAddress(addr.to_string()));
    status.cidr = Some(Cidr(network.to_string()));
    let message = format!("{} is reachable from peers as {addr}", ip.spec.ip.as_str());
    set_condition(
        &mut status.conditions,
        "Ready",
        true,
        "Allocated",
        &message,
        ip.metadata.generation,
    );
    if let Err(e) = write_status(api, &ip, &status).await {
        if let Err(release) = ctx.allocator.release_ip(network, addr).await {
            warn!(ip = %name, %addr, error = %release, "cannot release after a failed status write");
        }
        return Err(e);
    }
    info!(ip = %name, namespace = ?ip.namespace(), %addr, %network, "address allocated");
    Ok(await_change())
}

/// The allocated CIDR of the IP's network, `None` while there is none.
async fn network_cidr(ctx: &Context, ip: &Ip) -> Result<Option<IpNetwork>> {
    let reference = ip.spec.network_ref.as_ref();
    let name = reference
        .and_then(|r| r.name.clone())
        .unwrap_or_else(|| EXTERNAL_CIDR_NETWORK.to_owned());
    let namespace = reference
        .and_then(|r| r.namespace.clone())
        .or_else(|| reference.and(ip.namespace()))
        .unwrap_or_else(|| ctx.config.namespace.clone());
    let network = Api::<Network>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Network {namespace}/{name}")))?;
    Ok(network
        .and_then(|n| n.status)
        .and_then(|s| s.cidr)
        .and_then(|c| c.as_str().parse().ok()))
}

async fn release(ctx: &Context, ip: &Ip) -> Result<Action> {
    let status = ip.status.as_ref();
    let parsed = status.and_then(|s| {
        let addr = s.ip.as_ref()?.as_str().parse::<IpAddr>().ok()?;
        let cidr = s.cidr.as_ref()?.as_str().parse::<IpNetwork>().ok()?;
        Some((addr, cidr))
    });
    if let Some((addr, cidr)) = parsed {
        ctx.allocator.release_ip(cidr, addr).await?;
        info!(ip = %ip.name_any(), %addr, "address released");
    }
    ctx.ip_backoff.reset_object(ip);
    Ok(await_change())
}

async fn write_failure(api: &Api<Ip>, ip: &Ip, error: &Error) -> Result<()> {
    let mut status = ip.status.clone().unwrap_or_default();
    if set_condition(
        &mut status.conditions,
        "Ready",
        false,
        reason(error),
        &error.to_string(),
        ip.metadata.generation,
    ) {
        write_status(api, ip, &status).await?;
    }
    Ok(())
}
