//! Certificates and keys of a test cluster, generated in Rust with rcgen.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{Error, Result};

/// A PEM certificate with its PEM (PKCS#8) private key.
#[derive(Clone)]
pub(crate) struct CertPair {
    /// The certificate, PEM.
    pub(crate) cert: String,
    /// The private key, PEM.
    pub(crate) key: String,
}

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPair").finish_non_exhaustive()
    }
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

/// The cluster CA and everything signed by it.
pub(crate) struct Pki {
    pub(crate) ca: CertPair,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub(crate) fn new(cluster: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(Error::Certificate)?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("liqo-testenv-{cluster}-ca"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(Error::Certificate)?;
        let ca = CertPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(Self {
            ca,
            issuer: Issuer::new(params, key),
        })
    }

    /// Signs a leaf certificate. `sans` are DNS names or IP addresses.
    pub(crate) fn leaf(
        &self,
        common_name: &str,
        organizations: &[&str],
        sans: &[&str],
        usage: Usage,
    ) -> Result<CertPair> {
        let key = KeyPair::generate().map_err(Error::Certificate)?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for org in organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        for san in sans {
            params.subject_alt_names.push(match san.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*san).try_into().map_err(Error::Certificate)?),
            });
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(Error::Certificate)?;
        Ok(CertPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A fresh key pair for signing service-account tokens: (PKCS#8 private key, SPKI public key),
/// both PEM.
pub(crate) fn service_account_keys() -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(Error::Certificate)?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_certificates_are_pem() {
        let pki = Pki::new("t").unwrap();
        assert!(pki.ca.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let leaf = pki
            .leaf(
                "admin",
                &["system:masters"],
                &["127.0.0.1", "localhost"],
                Usage::Client,
            )
            .unwrap();
        assert!(leaf.cert.contains("BEGIN CERTIFICATE"));
        assert!(leaf.key.contains("BEGIN PRIVATE KEY"));
        assert_ne!(leaf.cert, pki.ca.cert);
    }
}
