//! The cryptographic core of the peering handshake, free of any Kubernetes I/O.
//!
//! The handshake between a consumer C and a provider P (see the crate documentation) relies on
//! four primitives, all implemented here as pure functions:
//!
//! 1. Every cluster owns a key pair, [`ClusterKeys`], stored in the Secret
//!    `liqo/authentication-keys` ([`AUTH_KEYS_SECRET_NAME`]) as a PKCS#8 private key PEM
//!    ([`PRIVATE_KEY_FIELD`]) and an SPKI (PKIX) public key PEM ([`PUBLIC_KEY_FIELD`]).
//!    Keys are Ed25519, like upstream Liqo's default.
//! 2. P issues a [`Nonce`] (64 random bytes, base64) in the Secret `liqo-nonce` of the tenant
//!    namespace of C (field [`NONCE_FIELD`]).
//! 3. C signs it with [`sign_nonce`] (field [`SIGNED_NONCE_FIELD`] of its `liqo-signed-nonce`
//!    Secret, then `Tenant.spec.signature`); P checks it with [`verify_nonce`] against
//!    `Tenant.spec.publicKey`, parsed with [`PublicKey::parse`].
//! 4. C sends a certificate signing request made by [`create_csr`] (`Tenant.spec.csr`): subject
//!    `CN=<C's cluster id>, O=liqo.io`, signed by C's key. P accepts it only if [`check_csr`]
//!    passes, then has it signed through the Kubernetes CSR API.
//!
//! ```
//! use liqo_auth::crypto::{self, ClusterKeys, Nonce, PublicKey};
//! use liqo_core::ids::ClusterId;
//!
//! // Consumer side: its keys, the nonce received from the provider, signature and CSR.
//! let consumer = ClusterKeys::generate()?;
//! let consumer_id = ClusterId::new("rome")?;
//! let nonce = Nonce::generate()?; // made by the provider
//! let signature = crypto::sign_nonce(&consumer, &nonce);
//! let csr = crypto::create_csr(&consumer, &consumer_id)?;
//!
//! // Provider side: what arrives in the Tenant is checked before anything is signed.
//! let tenant_public_key = PublicKey::parse(consumer.public_key_pem().as_bytes())?;
//! crypto::verify_nonce(&tenant_public_key, &nonce, &signature)?;
//! crypto::check_csr(&csr, &consumer_id, &tenant_public_key)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use liqo_core::ids::ClusterId;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self as ring_sig, Ed25519KeyPair, KeyPair as _};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{AttributeTypeAndValue, SubjectPublicKeyInfo};

use crate::error::{Error, Result};

/// Name of the Secret, in the Liqo namespace, holding the cluster's [`ClusterKeys`].
pub const AUTH_KEYS_SECRET_NAME: &str = "authentication-keys";
/// Data field of [`AUTH_KEYS_SECRET_NAME`] with the PKCS#8 private key PEM.
pub const PRIVATE_KEY_FIELD: &str = "privateKey";
/// Data field of [`AUTH_KEYS_SECRET_NAME`] with the SPKI public key PEM.
pub const PUBLIC_KEY_FIELD: &str = "publicKey";
/// Data field of the nonce Secrets (`liqo-nonce`, `liqo-signed-nonce`) with the nonce text.
pub const NONCE_FIELD: &str = "nonce";
/// Data field of the `liqo-signed-nonce` Secret with the raw signature bytes.
pub const SIGNED_NONCE_FIELD: &str = "signedNonce";
/// Number of random bytes in a [`Nonce`] made by [`Nonce::generate`].
pub const NONCE_LEN: usize = 64;
/// Organization (O) of the control-plane certificates of peered clusters. The Kubernetes API
/// server maps it to the group `liqo.io`.
pub const CONTROL_PLANE_ORGANIZATION: &str = "liqo.io";

const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
const CSR_LABEL: &str = "CERTIFICATE REQUEST";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// The key pair of a cluster (Ed25519), used to sign nonces and certificate signing requests.
///
/// The private key never leaves the cluster: only [`public_key_pem`](Self::public_key_pem),
/// signatures and CSRs are sent to peers. `Debug` shows the public key only.
///
/// ```
/// use liqo_auth::crypto::ClusterKeys;
///
/// let keys = ClusterKeys::generate()?;
/// // What goes into the Secret `liqo/authentication-keys`...
/// let private_pem = keys.to_pkcs8_pem();
/// let public_pem = keys.public_key_pem();
/// // ...and what comes back from it.
/// let loaded = ClusterKeys::from_pem_pair(&private_pem, &public_pem)?;
/// assert_eq!(loaded.public_key(), keys.public_key());
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub struct ClusterKeys {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl ClusterKeys {
    /// Generates a fresh Ed25519 key pair from the system's secure random generator.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if the random generator fails.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let a = ClusterKeys::generate()?;
    /// let b = ClusterKeys::generate()?;
    /// assert_ne!(a.public_key(), b.public_key());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Crypto {
            operation: "generating an Ed25519 key pair",
        })?;
        Self::from_pkcs8_der(document.as_ref())
    }

    /// Loads a private key from its PKCS#8 DER encoding (v1, as Go writes it, or v2 with the
    /// public key, as this crate writes it).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedKeyAlgorithm`] if the key is not Ed25519 (for example an RSA key of
    /// an upstream cluster installed with `--tls-compatibility-mode`), [`Error::MalformedDer`]
    /// if it is not a valid PKCS#8 Ed25519 key.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let again = ClusterKeys::from_pkcs8_der(keys.pkcs8_der())?;
    /// assert_eq!(again.public_key(), keys.public_key());
    /// assert!(ClusterKeys::from_pkcs8_der(b"not a key").is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|rejected| {
            let reason = rejected.to_string();
            if reason == "WrongAlgorithm" {
                Error::UnsupportedKeyAlgorithm {
                    algorithm: "non-Ed25519 private key".to_owned(),
                    operation: "cluster keys",
                }
            } else {
                Error::MalformedDer {
                    what: "PKCS#8 Ed25519 private key",
                    reason,
                }
            }
        })?;
        Ok(Self {
            pkcs8: der.to_vec(),
            pair,
        })
    }

    /// Loads a private key from a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`), the
    /// content of the `privateKey` field of `liqo/authentication-keys`.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedPem`] if `pem` is not a single `PRIVATE KEY` PEM block, then the errors
    /// of [`from_pkcs8_der`](Self::from_pkcs8_der).
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let loaded = ClusterKeys::from_pkcs8_pem(keys.to_pkcs8_pem().as_bytes())?;
    /// assert_eq!(loaded.public_key(), keys.public_key());
    /// assert!(ClusterKeys::from_pkcs8_pem(keys.public_key_pem().as_bytes()).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_pkcs8_pem(pem: impl AsRef<[u8]>) -> Result<Self> {
        let der = decode_pem(pem.as_ref(), PRIVATE_KEY_LABEL, "private key")?;
        Self::from_pkcs8_der(&der)
    }

    /// Loads the two fields of `liqo/authentication-keys` and checks that the public key is the
    /// one of the private key.
    ///
    /// # Errors
    ///
    /// The errors of [`from_pkcs8_pem`](Self::from_pkcs8_pem) and [`PublicKey::from_pem`], and
    /// [`Error::KeyMismatch`] if the public key does not belong to the private key.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let other = ClusterKeys::generate()?;
    /// assert!(ClusterKeys::from_pem_pair(&keys.to_pkcs8_pem(), &keys.public_key_pem()).is_ok());
    /// assert!(ClusterKeys::from_pem_pair(&keys.to_pkcs8_pem(), &other.public_key_pem()).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_pem_pair(
        private_pem: impl AsRef<[u8]>,
        public_pem: impl AsRef<[u8]>,
    ) -> Result<Self> {
        let keys = Self::from_pkcs8_pem(private_pem)?;
        let public = PublicKey::from_pem(public_pem)?;
        if public != keys.public_key() {
            return Err(Error::KeyMismatch {
                what: "the public key does not belong to the private key",
            });
        }
        Ok(keys)
    }

    /// The PKCS#8 DER encoding of the private key.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// assert!(!keys.pkcs8_der().is_empty());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The private key as a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let pem = ClusterKeys::generate()?.to_pkcs8_pem();
    /// assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn to_pkcs8_pem(&self) -> String {
        encode_pem(PRIVATE_KEY_LABEL, &self.pkcs8)
    }

    /// The public key.
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, KeyAlgorithm};
    ///
    /// let keys = ClusterKeys::generate()?;
    /// assert_eq!(keys.public_key().algorithm(), KeyAlgorithm::Ed25519);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn public_key(&self) -> PublicKey {
        PublicKey::ed25519(self.pair.public_key().as_ref())
    }

    /// The public key as an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`), the form stored
    /// in `liqo/authentication-keys` and sent in `Tenant.spec.publicKey`.
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, PublicKey};
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let pem = keys.public_key_pem();
    /// assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    /// assert_eq!(PublicKey::from_pem(&pem)?, keys.public_key());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn public_key_pem(&self) -> String {
        self.public_key().to_pem()
    }

    /// Signs `message` with the private key (Ed25519). Prefer [`sign_nonce`] for nonces.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let signature = keys.sign(b"hello");
    /// keys.public_key().verify(b"hello", &signature)?;
    /// assert!(keys.public_key().verify(b"hell0", &signature).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.pair.sign(message).as_ref().to_vec())
    }
}

impl fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterKeys")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Algorithm of a [`PublicKey`].
///
/// This crate generates Ed25519 keys only; RSA and ECDSA public keys are accepted when verifying
/// nonce signatures and CSRs, because upstream Liqo clusters installed with
/// `--tls-compatibility-mode` use RSA-2048 keys.
///
/// ```
/// use liqo_auth::crypto::{ClusterKeys, KeyAlgorithm};
///
/// assert_eq!(ClusterKeys::generate()?.public_key().algorithm(), KeyAlgorithm::Ed25519);
/// assert_eq!(KeyAlgorithm::Ed25519.to_string(), "Ed25519");
/// # Ok::<(), liqo_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8410): the signature covers the message itself.
    Ed25519,
    /// RSA: signatures are PKCS#1 v1.5 over SHA-256, keys of 2048 to 8192 bits.
    Rsa,
    /// ECDSA on P-256: ASN.1 signatures over SHA-256.
    EcdsaP256,
    /// ECDSA on P-384: ASN.1 signatures over SHA-256 (as upstream signs nonces).
    EcdsaP384,
}

impl KeyAlgorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::Rsa => "RSA",
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
        }
    }

    fn nonce_verification(self) -> &'static dyn ring_sig::VerificationAlgorithm {
        match self {
            Self::Ed25519 => &ring_sig::ED25519,
            Self::Rsa => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
            Self::EcdsaP256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384 => &ring_sig::ECDSA_P384_SHA256_ASN1,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A public key, kept as its SubjectPublicKeyInfo (PKIX) DER encoding.
///
/// Two keys are equal when their encodings are equal, which is how upstream Liqo compares the
/// key of a CSR with the key of a Tenant.
///
/// ```
/// use liqo_auth::crypto::{ClusterKeys, PublicKey};
///
/// let keys = ClusterKeys::generate()?;
/// let key = PublicKey::from_pem(keys.public_key_pem())?;
/// assert_eq!(PublicKey::from_spki_der(key.spki_der())?, key);
/// # Ok::<(), liqo_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    spki: Vec<u8>,
    key: Vec<u8>,
    algorithm: KeyAlgorithm,
}

impl PublicKey {
    fn ed25519(raw: &[u8]) -> Self {
        let mut spki = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + raw.len());
        spki.extend_from_slice(&ED25519_SPKI_PREFIX);
        spki.extend_from_slice(raw);
        Self {
            spki,
            key: raw.to_vec(),
            algorithm: KeyAlgorithm::Ed25519,
        }
    }

    /// Parses a SubjectPublicKeyInfo DER structure.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedDer`] if `der` is not exactly one SubjectPublicKeyInfo,
    /// [`Error::UnsupportedKeyAlgorithm`] if the key is not Ed25519, RSA, or ECDSA on P-256 or
    /// P-384.
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, PublicKey};
    ///
    /// let key = ClusterKeys::generate()?.public_key();
    /// assert_eq!(PublicKey::from_spki_der(key.spki_der())?, key);
    /// assert!(PublicKey::from_spki_der(&[0x30, 0x00]).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|e| Error::MalformedDer {
                what: "public key (SubjectPublicKeyInfo)",
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(Error::MalformedDer {
                what: "public key (SubjectPublicKeyInfo)",
                reason: format!("{} unexpected bytes after the structure", rest.len()),
            });
        }
        let algorithm = spki_algorithm(&spki)?;
        let key = spki.subject_public_key.data.to_vec();
        if algorithm == KeyAlgorithm::Ed25519 && key.len() != ED25519_PUBLIC_KEY_LEN {
            return Err(Error::MalformedDer {
                what: "Ed25519 public key",
                reason: format!("{} bytes instead of {ED25519_PUBLIC_KEY_LEN}", key.len()),
            });
        }
        Ok(Self {
            spki: der.to_vec(),
            key,
            algorithm,
        })
    }

    /// Parses an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// # Errors
    ///
    /// [`Error::MalformedPem`] if `pem` is not a single `PUBLIC KEY` PEM block, then the errors
    /// of [`from_spki_der`](Self::from_spki_der).
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, PublicKey};
    ///
    /// let keys = ClusterKeys::generate()?;
    /// assert_eq!(PublicKey::from_pem(keys.public_key_pem())?, keys.public_key());
    /// assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n%%%\n-----END PUBLIC KEY-----\n").is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self> {
        let der = decode_pem(pem.as_ref(), PUBLIC_KEY_LABEL, "public key")?;
        Self::from_spki_der(&der)
    }

    /// Parses the public key of a Tenant (`Tenant.spec.publicKey`) the way upstream's provider
    /// does: an SPKI PEM document or, for peers of older Liqo versions, the 32 raw bytes of an
    /// Ed25519 key.
    ///
    /// # Errors
    ///
    /// The errors of [`from_pem`](Self::from_pem) when `bytes` is not 32 bytes long.
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, PublicKey};
    ///
    /// let key = ClusterKeys::generate()?.public_key();
    /// assert_eq!(PublicKey::parse(key.to_pem())?, key);
    /// assert_eq!(PublicKey::parse(key.raw())?, key); // legacy raw Ed25519
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn parse(bytes: impl AsRef<[u8]>) -> Result<Self> {
        let bytes = bytes.as_ref();
        if bytes.len() == ED25519_PUBLIC_KEY_LEN {
            return Ok(Self::ed25519(bytes));
        }
        Self::from_pem(bytes)
    }

    /// The algorithm of the key.
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, KeyAlgorithm};
    ///
    /// assert_eq!(ClusterKeys::generate()?.public_key().algorithm(), KeyAlgorithm::Ed25519);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The SubjectPublicKeyInfo DER encoding of the key.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// // An Ed25519 SubjectPublicKeyInfo is 44 bytes long.
    /// assert_eq!(ClusterKeys::generate()?.public_key().spki_der().len(), 44);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key itself, without the algorithm identifier: the 32 bytes of an Ed25519 key, the
    /// `RSAPublicKey` DER of an RSA key, the uncompressed point of an ECDSA key.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// assert_eq!(ClusterKeys::generate()?.public_key().raw().len(), 32);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn raw(&self) -> &[u8] {
        &self.key
    }

    /// The key as an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// ```
    /// use liqo_auth::crypto::{ClusterKeys, PublicKey};
    ///
    /// let key = ClusterKeys::generate()?.public_key();
    /// assert_eq!(PublicKey::from_pem(key.to_pem())?, key);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn to_pem(&self) -> String {
        encode_pem(PUBLIC_KEY_LABEL, &self.spki)
    }

    /// Verifies that `signature` is a signature of `message` by this key (Ed25519; RSA PKCS#1
    /// v1.5 with SHA-256; ECDSA ASN.1 with SHA-256, as upstream signs nonces).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNonceSignature`] if the signature does not verify.
    ///
    /// ```
    /// use liqo_auth::crypto::ClusterKeys;
    ///
    /// let keys = ClusterKeys::generate()?;
    /// let signature = keys.sign(b"message");
    /// keys.public_key().verify(b"message", &signature)?;
    /// assert!(ClusterKeys::generate()?.public_key().verify(b"message", &signature).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        ring_sig::UnparsedPublicKey::new(self.algorithm.nonce_verification(), &self.key)
            .verify(message, signature.as_bytes())
            .map_err(|_| Error::InvalidNonceSignature {
                algorithm: self.algorithm.name(),
            })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("spki", &BASE64.encode(&self.spki))
            .finish()
    }
}

fn spki_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyAlgorithm> {
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_SIG_ED25519 {
        Ok(KeyAlgorithm::Ed25519)
    } else if *oid == OID_PKCS1_RSAENCRYPTION {
        Ok(KeyAlgorithm::Rsa)
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.as_oid().ok());
        match curve {
            Some(curve) if curve == OID_EC_P256 => Ok(KeyAlgorithm::EcdsaP256),
            Some(curve) if curve == OID_NIST_EC_P384 => Ok(KeyAlgorithm::EcdsaP384),
            Some(curve) => Err(Error::UnsupportedKeyAlgorithm {
                algorithm: format!("ECDSA on curve {curve}"),
                operation: "public key",
            }),
            None => Err(Error::MalformedDer {
                what: "ECDSA public key",
                reason: "no named curve".to_owned(),
            }),
        }
    } else {
        Err(Error::UnsupportedKeyAlgorithm {
            algorithm: oid.to_id_string(),
            operation: "public key",
        })
    }
}

/// A nonce issued by a provider to a consumer: [`NONCE_LEN`] random bytes, encoded as standard
/// padded base64, exactly as upstream Liqo writes it in the `nonce` field of the `liqo-nonce`
/// Secret.
///
/// The nonce is kept as that base64 text, because the text (not the decoded bytes) is what gets
/// signed: upstream's signer and verifier both use the Secret's data as is.
///
/// ```
/// use liqo_auth::crypto::Nonce;
///
/// let nonce = Nonce::generate()?;
/// let text = nonce.as_base64().to_owned();   // into the Secret
/// let back = Nonce::from_base64(&text)?;     // out of the Secret
/// assert_eq!(back, nonce);
/// assert_eq!(back.to_bytes().len(), 64);
/// # Ok::<(), liqo_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

impl Nonce {
    /// Draws a new nonce of [`NONCE_LEN`] bytes from the system's secure random generator.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if the random generator fails.
    ///
    /// ```
    /// use liqo_auth::crypto::Nonce;
    ///
    /// assert_ne!(Nonce::generate()?, Nonce::generate()?);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let mut bytes = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Crypto {
                operation: "drawing a nonce",
            })?;
        Ok(Self(BASE64.encode(bytes)))
    }

    /// Takes a nonce from its base64 text. The text must be non-empty, standard padded base64,
    /// with no surrounding whitespace.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyNonce`] or [`Error::MalformedBase64`].
    ///
    /// ```
    /// use liqo_auth::crypto::Nonce;
    ///
    /// assert_eq!(Nonce::from_base64("aGVsbG8=")?.to_bytes(), b"hello");
    /// assert!(Nonce::from_base64("").is_err());
    /// assert!(Nonce::from_base64("not base64!").is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_base64(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::EmptyNonce);
        }
        BASE64
            .decode(text)
            .map_err(|source| Error::MalformedBase64 {
                what: "nonce",
                source,
            })?;
        Ok(Self(text.to_owned()))
    }

    /// Takes a nonce from the raw bytes of the `nonce` field of a Secret's `data` (the base64
    /// text as bytes).
    ///
    /// # Errors
    ///
    /// The errors of [`from_base64`](Self::from_base64); bytes that are not UTF-8 are
    /// [`Error::MalformedBase64`] too.
    ///
    /// ```
    /// use liqo_auth::crypto::Nonce;
    ///
    /// let nonce = Nonce::generate()?;
    /// assert_eq!(Nonce::from_secret_data(nonce.as_base64().as_bytes())?, nonce);
    /// assert!(Nonce::from_secret_data(&[0xff, 0xfe]).is_err());
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn from_secret_data(data: &[u8]) -> Result<Self> {
        match std::str::from_utf8(data) {
            Ok(text) => Self::from_base64(text),
            // Not UTF-8, hence not base64: let the decoder describe the first bad byte.
            Err(_) => Err(Error::MalformedBase64 {
                what: "nonce",
                source: BASE64
                    .decode(data)
                    .err()
                    .unwrap_or(base64::DecodeError::InvalidLength(data.len())),
            }),
        }
    }

    /// The base64 text, as stored in the Secret and as signed.
    ///
    /// ```
    /// use liqo_auth::crypto::Nonce;
    ///
    /// assert_eq!(Nonce::from_base64("aGVsbG8=")?.as_base64(), "aGVsbG8=");
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn as_base64(&self) -> &str {
        &self.0
    }

    /// The random bytes the text encodes.
    ///
    /// ```
    /// use liqo_auth::crypto::{Nonce, NONCE_LEN};
    ///
    /// assert_eq!(Nonce::generate()?.to_bytes().len(), NONCE_LEN);
    /// # Ok::<(), liqo_auth::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        // Validated at construction; an empty vector cannot be observed.
        BASE64.decode(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Nonce").field(&self.0).finish()
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A raw signature, as stored in the `signedNonce` field of the `liqo-signed-nonce` Secret and
/// in `Tenant.spec.signature` (64 bytes for Ed25519).
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys, Nonce, Signature};
///
/// let signature = crypto::sign_nonce(&ClusterKeys::generate()?, &Nonce::generate()?);
/// let stored = signature.as_bytes().to_vec();
/// assert_eq!(Signature::from_bytes(stored), signature);
/// # Ok::<(), liqo_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature(Vec<u8>);

impl Signature {
    /// Wraps raw signature bytes (read from a Secret or a Tenant).
    ///
    /// ```
    /// use liqo_auth::crypto::Signature;
    ///
    /// assert_eq!(Signature::from_bytes(vec![1, 2, 3]).as_bytes(), &[1, 2, 3]);
    /// ```
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw signature bytes.
    ///
    /// ```
    /// use liqo_auth::crypto::Signature;
    ///
    /// assert!(Signature::from_bytes(Vec::new()).as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unwraps the raw signature bytes.
    ///
    /// ```
    /// use liqo_auth::crypto::Signature;
    ///
    /// assert_eq!(Signature::from_bytes(vec![7]).into_bytes(), vec![7]);
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signature")
            .field(&BASE64.encode(&self.0))
            .finish()
    }
}

/// Signs a nonce with the cluster's private key: what the consumer's nonce signer does.
///
/// The signature covers the nonce's base64 text ([`Nonce::as_base64`]), like upstream Liqo,
/// whose signer signs the `nonce` field of the Secret as is.
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys, Nonce};
///
/// let keys = ClusterKeys::generate()?;
/// let nonce = Nonce::generate()?;
/// let signature = crypto::sign_nonce(&keys, &nonce);
/// crypto::verify_nonce(&keys.public_key(), &nonce, &signature)?;
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub fn sign_nonce(keys: &ClusterKeys, nonce: &Nonce) -> Signature {
    keys.sign(nonce.as_base64().as_bytes())
}

/// Verifies the signature of a nonce against the consumer's public key: the first check of the
/// provider's Tenant controller.
///
/// # Errors
///
/// [`Error::InvalidNonceSignature`] if the nonce or the signature was altered, or if the nonce
/// was signed by another key.
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys, Nonce, Signature};
///
/// let keys = ClusterKeys::generate()?;
/// let nonce = Nonce::generate()?;
/// let signature = crypto::sign_nonce(&keys, &nonce);
/// crypto::verify_nonce(&keys.public_key(), &nonce, &signature)?;
///
/// // Another nonce, or a tampered signature, is refused.
/// assert!(crypto::verify_nonce(&keys.public_key(), &Nonce::generate()?, &signature).is_err());
/// let mut bytes = signature.into_bytes();
/// bytes[0] ^= 1;
/// assert!(crypto::verify_nonce(&keys.public_key(), &nonce, &Signature::from_bytes(bytes)).is_err());
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub fn verify_nonce(public_key: &PublicKey, nonce: &Nonce, signature: &Signature) -> Result<()> {
    public_key.verify(nonce.as_base64().as_bytes(), signature)
}

/// Creates the PEM certificate signing request a consumer puts in its Tenant: subject
/// `O=liqo.io, CN=<cluster_id>`, signed by the cluster's key.
///
/// # Errors
///
/// [`Error::CsrCreation`] if the request cannot be encoded.
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys};
/// use liqo_core::ids::ClusterId;
///
/// let keys = ClusterKeys::generate()?;
/// let id = ClusterId::new("rome")?;
/// let csr = crypto::create_csr(&keys, &id)?;
/// assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
/// crypto::check_csr(&csr, &id, &keys.public_key())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_csr(keys: &ClusterKeys, cluster_id: &ClusterId) -> Result<String> {
    create_csr_with_subject(keys, cluster_id.as_str(), CONTROL_PLANE_ORGANIZATION)
}

/// Creates a PEM certificate signing request with subject `O=<organization>, CN=<common_name>`,
/// signed by the cluster's key. [`create_csr`] is the control-plane case; ResourceSlice
/// identities use another subject.
///
/// # Errors
///
/// [`Error::CsrCreation`] if the request cannot be encoded.
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys};
///
/// let keys = ClusterKeys::generate()?;
/// let csr = crypto::create_csr_with_subject(&keys, "slice-a1b2c3", "rome")?;
/// crypto::check_csr_subject(&csr, "slice-a1b2c3", "rome", Some(&keys.public_key()))?;
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub fn create_csr_with_subject(
    keys: &ClusterKeys,
    common_name: &str,
    organization: &str,
) -> Result<String> {
    let key_pair = rcgen::KeyPair::from_pem(&keys.to_pkcs8_pem()).map_err(Error::CsrCreation)?;
    let mut subject = rcgen::DistinguishedName::new();
    // Same order as Go's pkix.Name: O first, then CN.
    subject.push(rcgen::DnType::OrganizationName, organization);
    subject.push(rcgen::DnType::CommonName, common_name);
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject;
    params
        .serialize_request(&key_pair)
        .and_then(|csr| csr.pem())
        .map_err(Error::CsrCreation)
}

/// Checks a control-plane certificate signing request received in a Tenant, as the provider's
/// Tenant controller does before having it signed: the request is a single well-formed PEM
/// `CERTIFICATE REQUEST`, its self-signature is valid, its subject is exactly
/// `CN=<expected_cluster_id>` and `O=liqo.io`, and its public key is the Tenant's public key.
///
/// # Errors
///
/// [`Error::MalformedPem`] or [`Error::MalformedDer`] for a malformed request,
/// [`Error::InvalidCsrSignature`] for a tampered one, [`Error::WrongCommonName`] or
/// [`Error::WrongOrganization`] for another subject, [`Error::KeyMismatch`] for a request made
/// with another key.
///
/// ```
/// use liqo_auth::Error;
/// use liqo_auth::crypto::{self, ClusterKeys};
/// use liqo_core::ids::ClusterId;
///
/// let keys = ClusterKeys::generate()?;
/// let rome = ClusterId::new("rome")?;
/// let csr = crypto::create_csr(&keys, &rome)?;
/// crypto::check_csr(&csr, &rome, &keys.public_key())?;
///
/// // A request for another cluster, or from another key, is refused.
/// let milan = ClusterId::new("milan")?;
/// assert!(matches!(
///     crypto::check_csr(&csr, &milan, &keys.public_key()),
///     Err(Error::WrongCommonName { .. })
/// ));
/// let other = ClusterKeys::generate()?;
/// assert!(matches!(
///     crypto::check_csr(&csr, &rome, &other.public_key()),
///     Err(Error::KeyMismatch { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_csr(
    csr_pem: impl AsRef<[u8]>,
    expected_cluster_id: &ClusterId,
    expected_public_key: &PublicKey,
) -> Result<()> {
    check_csr_subject(
        csr_pem,
        expected_cluster_id.as_str(),
        CONTROL_PLANE_ORGANIZATION,
        Some(expected_public_key),
    )
}

/// Checks a PEM certificate signing request: well-formed, validly self-signed, with subject
/// exactly `CN=<common_name>` and `O=<organization>` (each present once), and, when
/// `expected_public_key` is given, made with that key. Without a key (upstream's
/// `TolerateNoHandshake` policy for ResourceSlices) the key is not checked.
///
/// # Errors
///
/// As [`check_csr`].
///
/// ```
/// use liqo_auth::crypto::{self, ClusterKeys};
///
/// let keys = ClusterKeys::generate()?;
/// let csr = crypto::create_csr_with_subject(&keys, "slice-a1b2c3", "rome")?;
/// crypto::check_csr_subject(&csr, "slice-a1b2c3", "rome", None)?;
/// assert!(crypto::check_csr_subject(&csr, "slice-a1b2c3", "liqo.io", None).is_err());
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub fn check_csr_subject(
    csr_pem: impl AsRef<[u8]>,
    common_name: &str,
    organization: &str,
    expected_public_key: Option<&PublicKey>,
) -> Result<()> {
    const WHAT: &str = "certificate signing request";
    let der = decode_pem(csr_pem.as_ref(), CSR_LABEL, WHAT)?;
    let (rest, csr) =
        X509CertificationRequest::from_der(&der).map_err(|e| Error::MalformedDer {
            what: WHAT,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(Error::MalformedDer {
            what: WHAT,
            reason: format!("{} unexpected bytes after the structure", rest.len()),
        });
    }
    csr.verify_signature()
        .map_err(|e| Error::InvalidCsrSignature {
            reason: e.to_string(),
        })?;

    let info = &csr.certification_request_info;
    let common_names = attribute_values(info.subject.iter_common_name())?;
    if common_names != [common_name] {
        return Err(Error::WrongCommonName {
            expected: common_name.to_owned(),
            found: common_names,
        });
    }
    let organizations = attribute_values(info.subject.iter_organization())?;
    if organizations != [organization] {
        return Err(Error::WrongOrganization {
            expected: organization.to_owned(),
            found: organizations,
        });
    }
    if let Some(expected) = expected_public_key
        && info.subject_pki.raw != expected.spki_der()
    {
        return Err(Error::KeyMismatch {
            what: "the public key of the certificate signing request is not the expected one \
                   (the Tenant's public key)",
        });
    }
    Ok(())
}

fn attribute_values<'a>(
    attributes: impl Iterator<Item = &'a AttributeTypeAndValue<'a>>,
) -> Result<Vec<String>> {
    attributes
        .map(|attribute| {
            attribute
                .as_str()
                .map(str::to_owned)
                .map_err(|e| Error::MalformedDer {
                    what: "certificate signing request subject",
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Encodes `der` as a PEM block with `label`, 64 base64 characters per line, LF line endings.
fn encode_pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

/// Decodes the single PEM block with `label` in `input`. Only whitespace may surround it
/// (upstream refuses trailing data after a CSR as well); PEM headers are not supported.
fn decode_pem(input: &[u8], label: &str, what: &'static str) -> Result<Vec<u8>> {
    let malformed = |reason: String| Error::MalformedPem { what, reason };
    let text = std::str::from_utf8(input).map_err(|e| malformed(format!("not UTF-8 text: {e}")))?;
    let begin = format!("-----BEGIN {label}-----");
    let Some(start) = text.find(&begin) else {
        let found = text
            .split_once("-----BEGIN ")
            .and_then(|(_, rest)| rest.split_once("-----"))
            .map(|(found, _)| found);
        return Err(malformed(match found {
            Some(found) => format!("expected a {label:?} block, found a {found:?} block"),
            None => format!("no {label:?} PEM block"),
        }));
    };
    if !text[..start].trim().is_empty() {
        return Err(malformed(format!(
            "unexpected data before the {label:?} block"
        )));
    }
    let body_start = start + begin.len();
    let end = format!("-----END {label}-----");
    let Some(body_len) = text[body_start..].find(&end) else {
        return Err(malformed(format!("missing the line {end:?}")));
    };
    let after = &text[body_start + body_len + end.len()..];
    if !after.trim().is_empty() {
        return Err(malformed(format!(
            "unexpected data after the {label:?} block"
        )));
    }
    let body: String = text[body_start..body_start + body_len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    BASE64
        .decode(body)
        .map_err(|e| malformed(format!("bad base64 body: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn id(s: &str) -> ClusterId {
        ClusterId::new(s).unwrap()
    }

    #[test]
    fn keys_pem_round_trip() {
        let keys = ClusterKeys::generate().unwrap();
        let private_pem = keys.to_pkcs8_pem();
        let public_pem = keys.public_key_pem();
        assert!(private_pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(public_pem.ends_with("-----END PUBLIC KEY-----\n"));

        let loaded = ClusterKeys::from_pem_pair(&private_pem, &public_pem).unwrap();
        assert_eq!(loaded.public_key(), keys.public_key());
        assert_eq!(loaded.to_pkcs8_pem(), private_pem);
        assert_eq!(loaded.public_key_pem(), public_pem);

        // A signature by the loaded key verifies with the original public key.
        let nonce = Nonce::generate().unwrap();
        verify_nonce(&keys.public_key(), &nonce, &sign_nonce(&loaded, &nonce)).unwrap();
    }

    #[test]
    fn pem_tolerates_crlf_and_surrounding_whitespace() {
        let keys = ClusterKeys::generate().unwrap();
        let crlf = format!("\n  {}\n\n", keys.public_key_pem().replace('\n', "\r\n"));
        assert_eq!(PublicKey::from_pem(&crlf).unwrap(), keys.public_key());
    }

    #[test]
    fn go_pkcs8_v1_private_key_is_accepted() {
        // Go's x509.MarshalPKCS8PrivateKey writes v1 PKCS#8 (no public key): a fixed prefix
        // followed by the 32-byte seed.
        let mut v1 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        v1.extend_from_slice(&[7_u8; 32]);
        let keys = ClusterKeys::from_pkcs8_pem(encode_pem("PRIVATE KEY", &v1)).unwrap();
        assert_eq!(keys.public_key().raw().len(), 32);
        let nonce = Nonce::generate().unwrap();
        verify_nonce(&keys.public_key(), &nonce, &sign_nonce(&keys, &nonce)).unwrap();
    }

    #[test]
    fn non_ed25519_private_key_is_unsupported() {
        let rng = SystemRandom::new();
        let ecdsa =
            ring_sig::EcdsaKeyPair::generate_pkcs8(&ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .unwrap();
        let err = ClusterKeys::from_pkcs8_der(ecdsa.as_ref()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedKeyAlgorithm { .. }),
            "{err}"
        );
    }

    #[test]
    fn ecdsa_public_key_verifies_nonce() {
        // Upstream clusters may sign nonces with ECDSA (ASN.1, SHA-256).
        let rng = SystemRandom::new();
        let alg = &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = ring_sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = ring_sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let public = rcgen::KeyPair::from_pem(&encode_pem("PRIVATE KEY", pkcs8.as_ref()))
            .unwrap()
            .public_key_pem();
        let public = PublicKey::from_pem(public).unwrap();
        assert_eq!(public.algorithm(), KeyAlgorithm::EcdsaP256);

        let nonce = Nonce::generate().unwrap();
        let signature = pair.sign(&rng, nonce.as_base64().as_bytes()).unwrap();
        let signature = Signature::from_bytes(signature.as_ref());
        verify_nonce(&public, &nonce, &signature).unwrap();
        assert!(verify_nonce(&public, &Nonce::generate().unwrap(), &signature).is_err());
    }

    #[test]
    fn mismatched_pem_pair_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let other = ClusterKeys::generate().unwrap();
        let err =
            ClusterKeys::from_pem_pair(keys.to_pkcs8_pem(), other.public_key_pem()).unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn malformed_pem_is_refused_with_a_reason() {
        let keys = ClusterKeys::generate().unwrap();
        let public_pem = keys.public_key_pem();

        let wrong_label = PublicKey::from_pem(keys.to_pkcs8_pem()).unwrap_err();
        assert!(
            wrong_label
                .to_string()
                .contains("found a \"PRIVATE KEY\" block"),
            "{wrong_label}"
        );

        let truncated = PublicKey::from_pem(&public_pem[..public_pem.len() - 10]).unwrap_err();
        assert!(
            truncated.to_string().contains("missing the line"),
            "{truncated}"
        );

        let trailing = PublicKey::from_pem(format!("{public_pem}garbage")).unwrap_err();
        assert!(trailing.to_string().contains("after"), "{trailing}");

        let bad_body = PublicKey::from_pem(public_pem.replacen("MC", "M!", 1)).unwrap_err();
        assert!(bad_body.to_string().contains("base64"), "{bad_body}");

        let not_spki = PublicKey::from_pem(encode_pem("PUBLIC KEY", b"junk")).unwrap_err();
        assert!(matches!(not_spki, Error::MalformedDer { .. }), "{not_spki}");

        assert!(matches!(
            PublicKey::from_pem("").unwrap_err(),
            Error::MalformedPem { .. }
        ));
        assert!(matches!(
            ClusterKeys::from_pkcs8_pem(encode_pem("PRIVATE KEY", b"junk")).unwrap_err(),
            Error::MalformedDer { .. }
        ));
    }

    #[test]
    fn tenant_public_key_forms() {
        let key = ClusterKeys::generate().unwrap().public_key();
        assert_eq!(PublicKey::parse(key.to_pem()).unwrap(), key);
        assert_eq!(PublicKey::parse(key.raw()).unwrap(), key);
        assert_eq!(PublicKey::from_spki_der(key.spki_der()).unwrap(), key);
        assert!(PublicKey::parse(&key.raw()[..31]).is_err());
    }

    #[test]
    fn nonce_round_trip() {
        let nonce = Nonce::generate().unwrap();
        assert_eq!(nonce.to_bytes().len(), NONCE_LEN);
        // 64 bytes -> 88 base64 characters with padding.
        assert_eq!(nonce.as_base64().len(), 88);
        assert_eq!(Nonce::from_base64(nonce.as_base64()).unwrap(), nonce);
        assert_eq!(
            Nonce::from_secret_data(nonce.as_base64().as_bytes()).unwrap(),
            nonce
        );
        assert_eq!(nonce.to_string(), nonce.as_base64());
    }

    #[test]
    fn malformed_nonce_is_refused() {
        assert!(matches!(Nonce::from_base64(""), Err(Error::EmptyNonce)));
        assert!(matches!(
            Nonce::from_base64("abc"),
            Err(Error::MalformedBase64 { .. })
        ));
        assert!(matches!(
            Nonce::from_base64("aGVsbG8=\n"),
            Err(Error::MalformedBase64 { .. })
        ));
        assert!(matches!(
            Nonce::from_secret_data(&[0xc3, 0x28]),
            Err(Error::MalformedBase64 { .. })
        ));
    }

    #[test]
    fn signature_covers_the_base64_text() {
        let keys = ClusterKeys::generate().unwrap();
        let nonce = Nonce::generate().unwrap();
        let signature = sign_nonce(&keys, &nonce);
        assert_eq!(signature.as_bytes().len(), 64);
        keys.public_key()
            .verify(nonce.as_base64().as_bytes(), &signature)
            .unwrap();
        assert!(
            keys.public_key()
                .verify(&nonce.to_bytes(), &signature)
                .is_err()
        );
    }

    #[test]
    fn tampered_nonce_or_signature_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let nonce = Nonce::generate().unwrap();
        let signature = sign_nonce(&keys, &nonce);
        let public = keys.public_key();
        verify_nonce(&public, &nonce, &signature).unwrap();

        // Flip one bit of the nonce's bytes.
        let mut bytes = nonce.to_bytes();
        bytes[10] ^= 0x01;
        let tampered_nonce = Nonce::from_base64(&BASE64.encode(bytes)).unwrap();
        let err = verify_nonce(&public, &tampered_nonce, &signature).unwrap_err();
        assert!(matches!(err, Error::InvalidNonceSignature { .. }), "{err}");
        assert!(err.to_string().contains("tampered"));

        // Flip one bit of the signature, truncate it, or empty it.
        let mut bytes = signature.clone().into_bytes();
        bytes[63] ^= 0x80;
        assert!(verify_nonce(&public, &nonce, &Signature::from_bytes(bytes)).is_err());
        let truncated = Signature::from_bytes(&signature.as_bytes()[..32]);
        assert!(verify_nonce(&public, &nonce, &truncated).is_err());
        assert!(verify_nonce(&public, &nonce, &Signature::from_bytes(Vec::new())).is_err());

        // Signed by another key.
        let other = ClusterKeys::generate().unwrap();
        assert!(verify_nonce(&public, &nonce, &sign_nonce(&other, &nonce)).is_err());
    }

    #[test]
    fn csr_has_the_liqo_subject_and_key() {
        let keys = ClusterKeys::generate().unwrap();
        let csr = create_csr(&keys, &id("rome")).unwrap();
        let der = decode_pem(csr.as_bytes(), CSR_LABEL, "csr").unwrap();
        let (_, parsed) = X509CertificationRequest::from_der(&der).unwrap();
        let info = &parsed.certification_request_info;
        assert_eq!(info.subject.to_string(), "O=liqo.io, CN=rome");
        assert_eq!(info.subject_pki.raw, keys.public_key().spki_der());
        assert_eq!(parsed.signature_algorithm.algorithm, OID_SIG_ED25519);
        check_csr(&csr, &id("rome"), &keys.public_key()).unwrap();
    }

    #[test]
    fn csr_for_another_cluster_or_key_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let csr = create_csr(&keys, &id("rome")).unwrap();

        let err = check_csr(&csr, &id("milan"), &keys.public_key()).unwrap_err();
        assert!(
            matches!(&err, Error::WrongCommonName { expected, found }
                if expected == "milan" && found == &["rome"]),
            "{err}"
        );

        let other = ClusterKeys::generate().unwrap();
        let err = check_csr(&csr, &id("rome"), &other.public_key()).unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");

        // A CSR made by another key for the right cluster id is refused too.
        let foreign = create_csr(&other, &id("rome")).unwrap();
        assert!(matches!(
            check_csr(&foreign, &id("rome"), &keys.public_key()),
            Err(Error::KeyMismatch { .. })
        ));
    }

    #[test]
    fn csr_with_another_organization_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let csr = create_csr_with_subject(&keys, "rome", "system:masters").unwrap();
        let err = check_csr(&csr, &id("rome"), &keys.public_key()).unwrap_err();
        assert!(
            matches!(&err, Error::WrongOrganization { found, .. } if found == &["system:masters"]),
            "{err}"
        );
    }

    #[test]
    fn csr_with_an_extra_organization_is_refused() {
        // Every O becomes a Kubernetes group: liqo.io plus anything else must not pass.
        let keys = ClusterKeys::generate().unwrap();
        let key_pair = rcgen::KeyPair::from_pem(&keys.to_pkcs8_pem()).unwrap();
        let mut subject = rcgen::DistinguishedName::new();
        subject.push(rcgen::DnType::OrganizationName, "liqo.io");
        subject.push(rcgen::DnType::CommonName, "rome");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = subject;
        // rcgen keeps one value per attribute type; add a second O as an RDN through a custom
        // attribute type with the organization OID.
        params.distinguished_name.push(
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 10]),
            "system:masters",
        );
        let csr = params.serialize_request(&key_pair).unwrap().pem().unwrap();
        let err = check_csr(&csr, &id("rome"), &keys.public_key()).unwrap_err();
        assert!(matches!(err, Error::WrongOrganization { .. }), "{err}");
    }

    #[test]
    fn tampered_csr_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let csr = create_csr(&keys, &id("rome")).unwrap();
        let mut der = decode_pem(csr.as_bytes(), CSR_LABEL, "csr").unwrap();
        // Rewrite the CN "rome" into "roma" inside the signed part.
        let at = der.windows(4).position(|w| w == b"rome").unwrap();
        der[at + 3] = b'a';
        let tampered = encode_pem(CSR_LABEL, &der);
        let err = check_csr(&tampered, &id("roma"), &keys.public_key()).unwrap_err();
        assert!(matches!(err, Error::InvalidCsrSignature { .. }), "{err}");
    }

    #[test]
    fn malformed_csr_is_refused() {
        let keys = ClusterKeys::generate().unwrap();
        let public = keys.public_key();
        assert!(matches!(
            check_csr(keys.public_key_pem(), &id("rome"), &public),
            Err(Error::MalformedPem { .. })
        ));
        assert!(matches!(
            check_csr(encode_pem(CSR_LABEL, b"junk"), &id("rome"), &public),
            Err(Error::MalformedDer { .. })
        ));
        let csr = create_csr(&keys, &id("rome")).unwrap();
        assert!(matches!(
            check_csr(format!("{csr}{csr}"), &id("rome"), &public),
            Err(Error::MalformedPem { .. })
        ));
    }

    #[test]
    fn debug_does_not_leak_the_private_key() {
        let keys = ClusterKeys::generate().unwrap();
        let debug = format!("{keys:?}");
        let private_body = keys.to_pkcs8_pem();
        let private_body = private_body.lines().nth(1).unwrap();
        assert!(!debug.contains(private_body));
        assert!(debug.contains("Ed25519"));
    }
}
