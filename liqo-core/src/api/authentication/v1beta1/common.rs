//! Types shared by several kinds of `authentication.liqo.io/v1beta1`.

use k8s_openapi::ByteString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a consumer needs to authenticate to a provider's API server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    /// PEM bundle of the certificate authority of the provider's API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub ca: Option<ByteString>,
    /// PEM client certificate the provider signed for the consumer.
    #[serde(rename = "signedCRT", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub signed_crt: Option<ByteString>,
    /// URL of the provider's API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    /// URL of a proxy to go through to reach the API server.
    #[serde(rename = "proxyURL", skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// AWS IAM credentials, used instead of a certificate when the provider is an EKS cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_config: Option<AwsConfig>,
}

/// AWS IAM user and EKS cluster data used to authenticate to an EKS provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AwsConfig {
    /// ARN of the IAM user created for the consumer.
    #[serde(rename = "awsUserArn")]
    pub aws_user_arn: String,
    /// Access key ID of that IAM user.
    #[serde(rename = "awsAccessKeyID")]
    pub aws_access_key_id: String,
    /// Secret access key of that IAM user.
    #[serde(rename = "awsSecretAccessKey")]
    pub aws_secret_access_key: String,
    /// AWS region of the EKS cluster.
    #[serde(rename = "awsRegion")]
    pub aws_region: String,
    /// Name of the EKS cluster.
    #[serde(rename = "awsClusterName")]
    pub aws_cluster_name: String,
}
