//! Version `v1beta1` of the `networking.liqo.io` API group.

mod common;
mod configuration;
mod connection;
pub mod firewall;
mod firewall_configuration;
mod gateway_client;
mod gateway_server;
mod geneve_tunnel;
mod internal_fabric;
mod internal_node;
mod public_key;
mod route_configuration;
mod wg_gateway_client;
mod wg_gateway_client_template;
mod wg_gateway_server;
mod wg_gateway_server_template;

pub use common::{
    Cidr, ConditionStatus, DeploymentTemplate, EndpointStatus, InternalGatewayEndpoint, IpAddress,
    Metrics, ObjectKind, Protocol, ServiceMonitorTemplate, ServiceTemplate,
};
pub use configuration::{
    CONDITION_NETWORK_CIDRS_CONFIGURED, ClusterConfig, ClusterConfigCidr, Configuration,
    ConfigurationSpec, ConfigurationStatus,
};
pub use connection::{
    Connection, ConnectionLatency, ConnectionSpec, ConnectionStatus, ConnectionStatusValue,
    ConnectionType,
};
pub use firewall_configuration::{
    FirewallConfiguration, FirewallConfigurationSpec, FirewallConfigurationStatus,
    FirewallConfigurationStatusCondition, FirewallConfigurationStatusConditionType,
};
pub use gateway_client::{GatewayClient, GatewayClientSpec, GatewayClientStatus};
pub use gateway_server::{
    Endpoint, GatewayServer, GatewayServerSpec, GatewayServerStatus, ServiceType,
};
pub use geneve_tunnel::{GeneveTunnel, GeneveTunnelSpec};
pub use internal_fabric::{
    InternalFabric, InternalFabricSpec, InternalFabricSpecInterface,
    InternalFabricSpecInterfaceGateway, InternalFabricSpecInterfaceNode,
};
pub use internal_node::{
    InternalNode, InternalNodeSpec, InternalNodeSpecInterface, InternalNodeSpecInterfaceGateway,
    InternalNodeSpecInterfaceNode, InternalNodeStatus, InternalNodeStatusNodeIp,
};
pub use public_key::{PublicKey, PublicKeySpec};
pub use route_configuration::{
    Route, RouteConfiguration, RouteConfigurationSpec, RouteConfigurationStatus,
    RouteConfigurationStatusCondition, RouteConfigurationStatusConditionType, RouteScope,
    RoutingRule, RoutingTable,
};
pub use wg_gateway_client::{WgGatewayClient, WgGatewayClientSpec, WgGatewayClientStatus};
pub use wg_gateway_client_template::{WgGatewayClientTemplate, WgGatewayClientTemplateSpec};
pub use wg_gateway_server::{WgGatewayServer, WgGatewayServerSpec, WgGatewayServerStatus};
pub use wg_gateway_server_template::{WgGatewayServerTemplate, WgGatewayServerTemplateSpec};

/// The API group of this module.
pub const GROUP: &str = "networking.liqo.io";
/// The API version of this module.
pub const VERSION: &str = "v1beta1";

/// Label put on the gateway-template CRDs (and expected on gateway template objects).
pub const GATEWAY_TEMPLATE_LABEL: &str = "networking.liqo.io/gatewaytemplate";
