//! Certificate renewal: a certificate is renewed once two thirds of its lifetime have passed
//! (upstream `ShouldRenewCertificate`).
//!
//! ```
//! use std::time::Duration;
//! use liqo_auth::renewal::{Lifetime, decide};
//!
//! // A certificate valid from t=0 s to t=600 s is renewed from t=400 s.
//! let lifetime = Lifetime { not_before: 0, not_after: 600 };
//! assert_eq!(decide(lifetime, 100).renew_in, Some(Duration::from_secs(300)));
//! assert!(decide(lifetime, 400).renew_now);
//! ```

use std::time::Duration;

use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::error::{Error, Result};

/// Validity of a certificate, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Start of validity.
    pub not_before: i64,
    /// End of validity.
    pub not_after: i64,
}

impl Lifetime {
    /// When the certificate should be renewed: two thirds into its lifetime.
    pub fn renewal_time(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

/// What to do about a certificate at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewDecision {
    /// The certificate must be renewed now.
    pub renew_now: bool,
    /// When not now, how long until it must be (to requeue).
    pub renew_in: Option<Duration>,
}

/// Decides whether a certificate with `lifetime` must be renewed at `now` (Unix seconds).
pub fn decide(lifetime: Lifetime, now: i64) -> RenewDecision {
    let at = lifetime.renewal_time();
    if now >= at {
        RenewDecision {
            renew_now: true,
            renew_in: None,
        }
    } else {
        RenewDecision {
            renew_now: false,
            renew_in: Some(Duration::from_secs((at - now).unsigned_abs())),
        }
    }
}

/// Reads the lifetime of a PEM (or DER) certificate.
///
/// # Errors
///
/// [`Error::MalformedPem`] or [`Error::MalformedDer`].
pub fn lifetime(cert: &[u8]) -> Result<Lifetime> {
    let der = if cert.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert).map_err(|e| Error::MalformedPem {
            what: "certificate",
            reason: e.to_string(),
        })?;
        pem.contents
    } else {
        cert.to_vec()
    };
    let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| Error::MalformedDer {
        what: "certificate",
        reason: e.to_string(),
    })?;
    Ok(Lifetime {
        not_before: parsed.validity().not_before.timestamp(),
        not_after: parsed.validity().not_after.timestamp(),
    })
}

/// Seconds since the Unix epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_thirds_rule() {
        let l = Lifetime {
            not_before: 1000,
            not_after: 1900,
        };
        assert_eq!(l.renewal_time(), 1600);
        assert_eq!(
            decide(l, 1000),
            RenewDecision {
                renew_now: false,
                renew_in: Some(Duration::from_secs(600))
            }
        );
        assert!(!decide(l, 1599).renew_now);
        assert!(decide(l, 1600).renew_now);
        assert!(decide(l, 5000).renew_now);
    }

    #[test]
    fn reads_a_real_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 4);
        let cert = params.self_signed(&key).unwrap();
        let l = lifetime(cert.pem().as_bytes()).unwrap();
        assert_eq!(l.not_after - l.not_before, 3 * 86400);
        assert_eq!(l.renewal_time() - l.not_before, 2 * 86400);
        assert!(lifetime(b"garbage").is_err());
    }
}
