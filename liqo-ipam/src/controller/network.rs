//! The Network controller.

use std::sync::Arc;

use ipnetwork::IpNetwork;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, finalizer, finalizer::Event},
};
use liqo_core::{
    api::ipam::v1alpha1::Network, api::networking::v1beta1::Cidr, labels::ipam::NETWORK_FINALIZER,
    runtime::set_condition,
};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{
    Context, RETRY, await_change, from_finalizer, is_not_remapped, is_shared, kube_err, reason,
    write_status,
};
use crate::{Error, NetworkRequest, Result};

pub(super) async fn reconcile(net: Arc<Network>, ctx: Arc<Context>) -> Result<Action> {
    let ns = net.namespace().unwrap_or_default();
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, NETWORK_FINALIZER, net.clone(), |event| async {
        match event {
            Event::Apply(net) => allocate(&ctx, &api, &net).await,
            Event::Cleanup(net) => release(&ctx, &net).await,
        }
    })
    .await
    .map_err(from_finalizer)?;
    ctx.network_backoff.reset_object(net.as_ref());
    Ok(action)
}

pub(super) fn error_policy(net: Arc<Network>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(network = %net.name_any(), namespace = ?net.namespace(), %error, "reconcile failed");
    ctx.network_backoff.requeue_object(net.as_ref())
}

/// Adds the finalizer if missing (for the networks reserved at start, which are allocated
/// before their controller runs).
pub(super) async fn ensure_finalizer(api: &Api<Network>, net: &Network) -> Result<()> {
    if net.finalizers().iter().any(|f| f == NETWORK_FINALIZER) {
        return Ok(());
    }
    let mut finalizers = net.finalizers().to_vec();
    finalizers.push(NETWORK_FINALIZER.to_owned());
    let patch = json!({
        "metadata": { "resourceVersion": net.resource_version(), "finalizers": finalizers }
    });
    api.patch(
        &net.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_err(format!(
        "adding the finalizer to Network {}",
        net.name_any()
    )))?;
    Ok(())
}

/// Allocates the network's CIDR unless its status already records one, and writes the result
/// (or what prevents it) to the status.
pub(super) async fn allocate(
    ctx: &Context,
    api: &Api<Network>,
    cached: &Network,
) -> Result<Action> {
    let name = cached.name_any();
    // Decide on the current object, not on a possibly stale cached copy: allocating twice for
    // one resource would leak a CIDR.
    let net = api
        .get_status(&name)
        .await
        .map_err(kube_err(format!("reading Network {name}")))?;
    if net.status.as_ref().is_some_and(|s| s.cidr.is_some()) {
        return Ok(await_change());
    }
    let request = match request_for(&net) {
        Ok(request) => request,
        Err(e) => {
            write_failure(api, &net, &e).await?;
            return Ok(await_change()); // only a change of the spec can fix it
        }
    };
    let cidr = match ctx.allocator.acquire_network(request.clone()).await {
        Ok(cidr) => cidr,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            write_failure(api, &net, &e).await?;
            // An exhausted pool or a taken range may free up later.
            return Ok(Action::requeue(RETRY));
        }
    };
    let (why, message) = if cidr == request.cidr {
        ("Allocated", format!("{cidr} allocated"))
    } else {
        (
            "Remapped",
            format!(
                "{} is in use or reserved here; remapped to {cidr}",
                request.cidr
            ),
        )
    };
    let mut status = net.status.clone().unwrap_or_default();
    status.cidr = Some(Cidr(cidr.to_string()));
    set_condition(
        &mut status.conditions,
        "Ready",
        true,
        why,
        &message,
        net.metadata.generation,
    );
    if let Err(e) = write_status(api, &net, &status).await {
        // Not recorded, so not allocated: give it back before retrying.
        if let Err(release) = ctx.allocator.release_network(cidr).await {
            warn!(network = %name, %cidr, error = %release, "cannot release after a failed status write");
        }
        return Err(e);
    }
    info!(network = %name, namespace = ?net.namespace(), %cidr, why, "network allocated");
    Ok(await_change())
}

async fn release(ctx: &Context, net: &Network) -> Result<Action> {
    if let Some(cidr) = net.status.as_ref().and_then(|s| s.cidr.as_ref()) {
        match cidr.as_str().parse::<IpNetwork>() {
            Ok(cidr) => {
                ctx.allocator.release_network(cidr).await?;
                info!(network = %net.name_any(), %cidr, "network released");
            }
            Err(e) => {
                warn!(network = %net.name_any(), %cidr, error = %e, "unparsable status.cidr; nothing to release")
            }
        }
    }
    ctx.network_backoff.reset_object(net);
    Ok(await_change())
}

/// The allocation request a Network stands for: `spec.cidr`, immutable when labelled
/// not-remapped, shared when labelled shared, with `spec.preAllocated` addresses reserved.
pub(crate) fn request_for(net: &Network) -> Result<NetworkRequest> {
    let cidr = crate::core::parse_cidr(net.spec.cidr.as_str())?;
    let mut request = NetworkRequest::new(cidr).pre_allocated(net.spec.pre_allocated);
    if is_not_remapped(net) {
        request = request.immutable();
    }
    if is_shared(net) {
        request = request.shared();
    }
    Ok(request)
}

async fn write_failure(api: &Api<Network>, net: &Network, error: &Error) -> Result<()> {
    debug!(network = %net.name_any(), %error, "allocation refused");
    let mut status = net.status.clone().unwrap_or_default();
    let changed = set_condition(
        &mut status.conditions,
        "Ready",
        false,
        reason(error),
        &error.to_string(),
        net.metadata.generation,
    );
    if changed {
        write_status(api, net, &status).await?;
    }
    Ok(())
}
