//! The ServiceAccount reflector: tokens of local service accounts, kept fresh in the remote
//! cluster.
//!
//! A pod offloaded to a provider still has to talk to the API server of its *origin* cluster as
//! its service account. The provider cannot mint such tokens, so for every ServiceAccount of an
//! offloaded namespace the [`ServiceAccountReflector`] asks the local API server for a token
//! (TokenRequest API, `POST .../serviceaccounts/<name>/token`, [`TOKEN_EXPIRATION_SECONDS`],
//! default audiences) and keeps it in a Secret of the remote twin namespace named
//! [`secret_name`]`(<service account>)`:
//!
//! | | |
//! |---|---|
//! | type | `Opaque` |
//! | data | [`TOKEN_KEY`] (the token), [`CA_KEY`] (the local cluster's root CA, from the local `kube-root-ca.crt` ConfigMap), [`NAMESPACE_KEY`] (the local namespace) |
//! | labels | [`ORIGIN`] = local cluster id, [`DESTINATION`] = remote cluster id, [`SERVICE_ACCOUNT_NAME`] = service account name (shortened with a hash beyond 63 characters) |
//! | annotations | [`SERVICE_ACCOUNT_EXPIRATION`] (RFC 3339), [`SERVICE_ACCOUNT_NAME`] (full name), [`TOKEN_ISSUED_ANNOTATION`], [`SERVICE_ACCOUNT_UID_ANNOTATION`] |
//!
//! This is upstream Liqo's `TokenAPI` mode, per service account rather than per pod (the
//! Secret is ready before any pod is offloaded). As upstream, a token is refreshed once
//! [`REFRESH_AT_LIFESPAN_PERCENT`] of its lifespan has passed, and the Secret is deleted when the
//! service account goes. A token is bound to the UID of its service account, so a service
//! account deleted and created again gets a new one. All state lives in the remote Secret (the
//! issue time and service-account UID annotations are additions of liqo-rs): a restarted
//! reflector reuses the tokens that are still fresh.
//!
//! A remote Secret with the same name that lacks the ownership labels (or belongs to another
//! service account) is never modified or deleted: the conflict is reported as a
//! `FailedSATokensReflection` Warning Event on the local ServiceAccount and retried with backoff.
//!
//! The reflection policy of [`ReflectorConfig`] does not apply (upstream's `CustomLiqo` type):
//! every service account of an offloaded namespace is reflected; `workers: 0` disables the
//! reflector.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use k8s_openapi::{
    ByteString,
    api::{
        authentication::v1::{TokenRequest, TokenRequestSpec},
        core::v1::{ConfigMap, Secret, ServiceAccount},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::{
    ids::{ClusterId, NamespacePair},
    labels::reflection::{
        DESTINATION, FIELD_MANAGER, ORIGIN, SERVICE_ACCOUNT_EXPIRATION, SERVICE_ACCOUNT_NAME,
    },
    runtime::KeyedBackoff,
};
use tokio::{sync::Notify, task::JoinSet, time::Instant};
use tracing::debug;

use crate::{
    Error, Reflector, Result,
    engine::{Clusters, ReflectorConfig},
    metrics::{ReflectorMetrics, Registry},
    queue::Queue,
    worker::{Handler, NamespaceTasks, Outcome, watch, work},
};

/// Lifetime requested for every token, in seconds (one hour, as a projected token's default).
/// The API server may grant a different one; the actual expiration is what counts.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Share of a token's lifespan after which it is replaced (upstream's
/// `TokenRefreshAtLifespanPercentage`).
pub const REFRESH_AT_LIFESPAN_PERCENT: i64 = 80;

/// Suffix of the name of the remote token Secret; see [`secret_name`].
pub const SECRET_NAME_SUFFIX: &str = "-liqo-token";

/// Key of the token in the remote Secret.
pub const TOKEN_KEY: &str = "token";
/// Key of the local cluster's root CA bundle (PEM) in the remote Secret.
pub const CA_KEY: &str = "ca.crt";
/// Key of the local namespace in the remote Secret.
pub const NAMESPACE_KEY: &str = "namespace";

/// Annotation, on a remote token Secret, with the time (RFC 3339) the token was issued, from
/// which the refresh time is computed. An addition of liqo-rs.
pub const TOKEN_ISSUED_ANNOTATION: &str = "reflection.liqo.io/service-account-token-issued";

/// Annotation, on a remote token Secret, with the UID of the local service account the token
/// was issued for. An addition of liqo-rs.
pub const SERVICE_ACCOUNT_UID_ANNOTATION: &str = "reflection.liqo.io/service-account-uid";

/// Name of the ConfigMap every namespace has with the cluster's root CA bundle.
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Event reason of a failed token reflection (as upstream).
const FAILED_REASON: &str = "FailedSATokensReflection";

/// The earliest a refresh is scheduled, so that a token the API server returns already close to
/// expiring (clock skew, a tiny maximum lifetime) cannot make the reflector spin.
const MIN_REFRESH_DELAY: Duration = Duration::from_secs(10);

/// Upper bound of the delay added to each refresh (as upstream's random jitter).
const MAX_REFRESH_JITTER: Duration = Duration::from_secs(30);

/// Longest name of an object (a DNS subdomain) and longest label value.
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Name of the remote Secret holding the token of the local service account `service_account`:
/// `<service account>-liqo-token`.
///
/// The suffix keeps it clear of the Secrets users name themselves, of the legacy
/// `<service account>-token-<random>` Secrets, and of the twins the Secret reflector writes for
/// those. The mapping is injective: a name too long for the suffix is cut and completed with a
/// hash of the whole name.
///
/// ```
/// use liqo_reflect::serviceaccount::secret_name;
///
/// assert_eq!(secret_name("builder"), "builder-liqo-token");
/// let long = "a".repeat(253);
/// assert!(secret_name(&long).len() <= 253);
/// assert_ne!(secret_name(&long), secret_name(&"a".repeat(252)));
/// ```
pub fn secret_name(service_account: &str) -> String {
    let plain = format!("{service_account}{SECRET_NAME_SUFFIX}");
    if plain.len() <= MAX_NAME_LEN {
        return plain;
    }
    shortened(service_account, MAX_NAME_LEN - SECRET_NAME_SUFFIX.len()) + SECRET_NAME_SUFFIX
}

/// Value of the [`SERVICE_ACCOUNT_NAME`] label: the name itself when it fits in a label value,
/// a shortened form with a hash otherwise (the full name is in the annotation of the same key).
fn label_value(service_account: &str) -> String {
    if service_account.len() <= MAX_LABEL_LEN {
        return service_account.to_owned();
    }
    shortened(service_account, MAX_LABEL_LEN)
}

/// `name` cut to at most `max` characters, ending with `-` and 16 hex digits of a stable hash
/// of the whole name. Names and label values are ASCII, so any cut is a character boundary.
fn shortened(name: &str, max: usize) -> String {
    let hash = format!("{:016x}", fnv1a(name.as_bytes()));
    let keep = max.saturating_sub(hash.len() + 1).min(name.len());
    let prefix = name.get(..keep).unwrap_or_default();
    // A DNS label cannot end in `.` or `-`.
    let prefix = prefix.trim_end_matches(['.', '-']);
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// 64-bit FNV-1a: stable across builds and Rust versions, unlike `DefaultHasher`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// RFC 3339 in UTC, to the second (the format of Kubernetes' own timestamps).
fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A token and its validity.
#[derive(Clone, PartialEq, Eq)]
struct Token {
    value: String,
    issued: Timestamp,
    expires: Timestamp,
}

impl Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("issued", &self.issued)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// When [`REFRESH_AT_LIFESPAN_PERCENT`] of the lifespan has passed.
    fn refresh_at(&self) -> Timestamp {
        let (issued, expires) = (self.issued.as_second(), self.expires.as_second());
        let lifespan = expires.saturating_sub(issued).max(0);
        let at = issued.saturating_add(lifespan.saturating_mul(REFRESH_AT_LIFESPAN_PERCENT) / 100);
        Timestamp::from_second(at).unwrap_or(self.issued)
    }

    /// The token a remote Secret holds, if it was issued for the service account with UID
    /// `uid` and its annotations are intact.
    fn from_secret(secret: &Secret, uid: &str) -> Option<Self> {
        let annotations = secret.metadata.annotations.as_ref()?;
        if annotations
            .get(SERVICE_ACCOUNT_UID_ANNOTATION)
            .map(String::as_str)
            != Some(uid)
        {
            return None;
        }
        let time = |key: &str| annotations.get(key)?.parse::<Timestamp>().ok();
        let value = secret.data.as_ref()?.get(TOKEN_KEY)?;
        let value = String::from_utf8(value.0.clone()).ok()?;
        if value.is_empty() {
            return None;
        }
        Some(Self {
            value,
            issued: time(TOKEN_ISSUED_ANNOTATION)?,
            expires: time(SERVICE_ACCOUNT_EXPIRATION)?,
        })
    }
}

/// What the remote Secret is made of, besides its name.
struct Content<'a> {
    local_cluster: &'a ClusterId,
    remote_cluster: &'a ClusterId,
    local_namespace: &'a str,
    remote_namespace: &'a str,
    service_account: &'a str,
    uid: &'a str,
    ca: &'a str,
}

impl Content<'_> {
    /// The Secret to apply, holding `token`.
    fn secret(&self, token: &Token) -> Secret {
        let labels = BTreeMap::from([
            (ORIGIN.to_owned(), self.local_cluster.to_string()),
            (DESTINATION.to_owned(), self.remote_cluster.to_string()),
            (
                SERVICE_ACCOUNT_NAME.to_owned(),
                label_value(self.service_account),
            ),
        ]);
        let annotations = BTreeMap::from([
            (
                SERVICE_ACCOUNT_NAME.to_owned(),
                self.service_account.to_owned(),
            ),
            (
                SERVICE_ACCOUNT_UID_ANNOTATION.to_owned(),
                self.uid.to_owned(),
            ),
            (TOKEN_ISSUED_ANNOTATION.to_owned(), rfc3339(token.issued)),
            (
                SERVICE_ACCOUNT_EXPIRATION.to_owned(),
                rfc3339(token.expires),
            ),
        ]);
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        let mut secret = Secret {
            type_: Some("Opaque".to_owned()),
            data: Some(BTreeMap::from([
                (TOKEN_KEY.to_owned(), bytes(&token.value)),
                (CA_KEY.to_owned(), bytes(self.ca)),
                (NAMESPACE_KEY.to_owned(), bytes(self.local_namespace)),
            ])),
            ..Secret::default()
        };
        secret.metadata.name = Some(secret_name(self.service_account));
        secret.metadata.namespace = Some(self.remote_namespace.to_owned());
        secret.metadata.labels = Some(labels);
        secret.metadata.annotations = Some(annotations);
        secret
    }
}

/// Whether `remote` was written by this reflection for the local service account `account`.
fn owned_by(remote: &Secret, local: &ClusterId, destination: &ClusterId, account: &str) -> bool {
    let labels = remote.labels();
    let is = |key: &str, value: &str| labels.get(key).is_some_and(|v| v == value);
    is(ORIGIN, local.as_str())
        && is(DESTINATION, destination.as_str())
        && is(SERVICE_ACCOUNT_NAME, &label_value(account))
}

/// Whether `remote` already is `desired`: same type, and every data key, label and annotation
/// of `desired` with the same value (others may add their own).
fn is_up_to_date(desired: &Secret, remote: &Secret) -> bool {
    fn subset<V: PartialEq>(
        want: Option<&BTreeMap<String, V>>,
        got: Option<&BTreeMap<String, V>>,
    ) -> bool {
        want.into_iter()
            .flatten()
            .all(|(k, v)| got.and_then(|g| g.get(k)) == Some(v))
    }
    desired.type_ == remote.type_
        && subset(desired.data.as_ref(), remote.data.as_ref())
        && subset(
            desired.metadata.labels.as_ref(),
            remote.metadata.labels.as_ref(),
        )
        && subset(
            desired.metadata.annotations.as_ref(),
            remote.metadata.annotations.as_ref(),
        )
}

/// Reflects the tokens of local ServiceAccounts into Secrets of the remote twin namespace (see
/// the [module documentation](self) for the Secret's layout and the refresh policy).
///
/// For each namespace pair it watches the local ServiceAccounts, the local `kube-root-ca.crt`
/// ConfigMap and the remote token Secrets (by label), each into a store; workers drain a
/// deduplicating queue with per-object exponential backoff; one timer task queues each service
/// account again when its token is due for refresh. Failures are recorded as
/// `FailedSATokensReflection` Warning Events on the local ServiceAccount.
///
/// ```no_run
/// # async fn run(local: kube::Client, remote: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_core::ids::NamespacePair;
/// use liqo_reflect::{
///     Clusters, Reflector, ReflectorConfig, metrics::Registry,
///     serviceaccount::ServiceAccountReflector,
/// };
///
/// let clusters = Clusters {
///     local,
///     remote,
///     local_id: "rome".parse().unwrap(),
///     remote_id: "milan".parse().unwrap(),
/// };
/// let reflector =
///     ServiceAccountReflector::new(clusters, ReflectorConfig::default(), &Registry::default());
/// reflector.start_namespace(&NamespacePair::new("demo", "demo-rome").unwrap()).await?;
/// # Ok(()) }
/// ```
pub struct ServiceAccountReflector {
    clusters: Clusters,
    config: ReflectorConfig,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
    namespaces: NamespaceTasks,
}

impl Debug for ServiceAccountReflector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountReflector")
            .field("clusters", &self.clusters)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountReflector {
    /// Name of the reflector, in metrics and Events.
    pub const NAME: &'static str = "serviceaccounts";

    /// A reflector between the two clusters; `config.workers` workers per namespace pair (0
    /// disables it), `config.policy` is ignored. Its metrics are registered in `registry`
    /// under [`NAME`](Self::NAME).
    pub fn new(clusters: Clusters, config: ReflectorConfig, registry: &Registry) -> Self {
        let recorder = Recorder::new(
            clusters.local.clone(),
            Reporter {
                controller: "liqo-reflection".to_owned(),
                instance: Some(format!("{}-{}", clusters.remote_id, Self::NAME)),
            },
        );
        Self {
            metrics: registry.reflector(Self::NAME),
            clusters,
            config,
            recorder,
            namespaces: NamespaceTasks::default(),
        }
    }
}

#[async_trait]
impl Reflector for ServiceAccountReflector {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.config.workers == 0 || self.namespaces.is_running(pair) {
            return Ok(());
        }
        let local = &self.clusters.local;
        let accounts_api: Api<ServiceAccount> = Api::namespaced(local.clone(), pair.local());
        let configmaps_api: Api<ConfigMap> = Api::namespaced(local.clone(), pair.local());
        let secrets_api: Api<Secret> = Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let (accounts, accounts_writer) = reflector::store();
        let (root_ca, root_ca_writer) = reflector::store();
        let (secrets, secrets_writer) = reflector::store();
        let shared = Arc::new(Namespaced {
            local_cluster: self.clusters.local_id.clone(),
            remote_cluster: self.clusters.remote_id.clone(),
            local_namespace: pair.local().to_owned(),
            remote_namespace: pair.remote().to_owned(),
            accounts_api: accounts_api.clone(),
            secrets_api: secrets_api.clone(),
            accounts,
            root_ca,
            secrets,
            queue: Queue::new(self.metrics.clone()),
            backoff: KeyedBackoff::default(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
            refreshes: Timers::default(),
        });

        let mut tasks = JoinSet::new();
        let ns = shared.clone();
        tasks.spawn(watch(
            accounts_api,
            watcher::Config::default(),
            accounts_writer,
            move |event| ns.on_account(event),
        ));
        let ns = shared.clone();
        tasks.spawn(watch(
            configmaps_api,
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}")),
            root_ca_writer,
            move |event| ns.on_root_ca(&event),
        ));
        let ns = shared.clone();
        let selector = format!(
            "{SERVICE_ACCOUNT_NAME},{ORIGIN}={},{DESTINATION}={}",
            self.clusters.local_id, self.clusters.remote_id
        );
        tasks.spawn(watch(
            secrets_api,
            watcher::Config::default().labels(&selector),
            secrets_writer,
            move |event| ns.on_secret(event),
        ));
        let ns = shared.clone();
        tasks.spawn(async move { ns.refreshes.run(|account| ns.queue.add(account)).await });
        for _ in 0..self.config.workers {
            tasks.spawn(work(shared.clone()));
        }
        debug!(reflector = Self::NAME, %pair, "namespace started");
        self.namespaces.insert(pair, tasks);
        Ok(())
    }

    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.namespaces.stop(pair) {
            debug!(reflector = Self::NAME, %pair, "namespace stopped");
        }
        Ok(())
    }
}

/// The state shared by the tasks of the reflector in one namespace pair. Keys are the names
/// of local service accounts.
struct Namespaced {
    local_cluster: ClusterId,
    remote_cluster: ClusterId,
    local_namespace: String,
    remote_namespace: String,
    accounts_api: Api<ServiceAccount>,
    secrets_api: Api<Secret>,
    accounts: Store<ServiceAccount>,
    root_ca: Store<ConfigMap>,
    secrets: Store<Secret>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
    /// When each service account is due for a token refresh.
    refreshes: Timers,
}

#[async_trait]
impl Handler for Namespaced {
    fn describe(&self) -> String {
        format!("ServiceAccount token in {}", self.local_namespace)
    }

    async fn ready(&self) {
        let _ = self.accounts.wait_until_ready().await;
        let _ = self.root_ca.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
    }

    async fn handle(&self, key: &str) -> Result<Outcome> {
        self.reconcile(key).await
    }

    async fn report(&self, key: &str, error: &Error) {
        self.report_failure(key, error).await;
    }

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}

impl Namespaced {
    fn on_account(&self, event: watcher::Event<ServiceAccount>) {
        match event {
            watcher::Event::Apply(sa) | watcher::Event::Delete(sa) => {
                self.queue.add(sa.name_any());
            }
            // After a (re)list, objects deleted while the watch was down only show up as
            // missing: queue everything either side knows.
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    fn on_root_ca(&self, event: &watcher::Event<ConfigMap>) {
        // Every Secret carries the CA bundle.
        match event {
            watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone => {
                self.enqueue_all();
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    fn on_secret(&self, event: watcher::Event<Secret>) {
        match event {
            watcher::Event::Apply(secret) | watcher::Event::Delete(secret) => {
                if let Some(account) = account_of(&secret) {
                    self.queue.add(account);
                }
            }
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    fn enqueue_all(&self) {
        for sa in self.accounts.state() {
            self.queue.add(sa.name_any());
        }
        for secret in self.secrets.state() {
            if let Some(account) = account_of(&secret) {
                self.queue.add(account);
            }
        }
    }

    /// Queues `account` again at `at` (wall clock, plus a jitter of up to
    /// [`MAX_REFRESH_JITTER`] so that tokens issued together are not all refreshed at once), for
    /// its token refresh.
    fn schedule_refresh(&self, account: &str, at: Timestamp) {
        let until = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
        let delay = (until + jitter(account)).max(MIN_REFRESH_DELAY);
        debug!(namespace = %self.local_namespace, account, ?delay, "token refresh scheduled");
        self.refreshes.set(account, delay);
    }

    fn root_ca(&self) -> Option<String> {
        let cm = self
            .root_ca
            .get(&ObjectRef::new(ROOT_CA_CONFIGMAP).within(&self.local_namespace))?;
        cm.data.as_ref()?.get(CA_KEY).cloned()
    }

    /// Asks the local API server for a new token of `account`.
    async fn request_token(&self, account: &str) -> Result<Token> {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: None,
                bound_object_ref: None,
                expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
            }),
            ..TokenRequest::default()
        };
        let context = || {
            format!(
                "requesting a token of service account {}/{account}",
                self.local_namespace
            )
        };
        // Truncated to the second, as the annotation that keeps it.
        let issued = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default();
        let response = self
            .accounts_api
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .map_err(Error::kube(context()))?;
        let status = response.status.unwrap_or_default();
        match (status.token, status.expiration_timestamp) {
            (Some(value), Some(expires)) if !value.is_empty() => Ok(Token {
                value,
                issued,
                expires: expires.0,
            }),
            _ => Err(Error::Backend(
                format!("{}: the API server returned no token", context()).into(),
            )),
        }
    }

    /// Makes the token Secret of the local service account `account` what it should be.
    async fn reconcile(&self, account: &str) -> Result<Outcome> {
        let name = secret_name(account);
        let local = self
            .accounts
            .get(&ObjectRef::new(account).within(&self.local_namespace));
        let cached = self
            .secrets
            .get(&ObjectRef::new(&name).within(&self.remote_namespace));
        let owned =
            |secret: &Secret| owned_by(secret, &self.local_cluster, &self.remote_cluster, account);

        let Some(local) = local else {
            self.refreshes.cancel(account);
            return match cached {
                Some(remote) if owned(&remote) => self.delete(&name, &remote).await,
                _ => Ok(Outcome::Unchanged),
            };
        };

        // The store only holds Secrets with the ownership labels: anything else with the same
        // name is only found by asking.
        let remote = match cached {
            Some(remote) => Some(remote),
            None => self
                .secrets_api
                .get_opt(&name)
                .await
                .map_err(Error::kube(format!(
                    "reading Secret {}/{name} in the remote cluster",
                    self.remote_namespace
                )))?
                .map(Arc::new),
        };
        if let Some(remote) = &remote
            && !owned(remote)
        {
            self.refreshes.cancel(account);
            return Err(Error::NotManaged {
                kind: "Secret".to_owned(),
                namespace: self.remote_namespace.clone(),
                name,
            });
        }
        let Some(ca) = self.root_ca() else {
            // Queued again when the ConfigMap appears.
            debug!(namespace = %self.local_namespace, "waiting for the root CA ConfigMap");
            return Ok(Outcome::Unchanged);
        };
        let uid = local.uid().unwrap_or_default();
        let content = Content {
            local_cluster: &self.local_cluster,
            remote_cluster: &self.remote_cluster,
            local_namespace: &self.local_namespace,
            remote_namespace: &self.remote_namespace,
            service_account: account,
            uid: &uid,
            ca: &ca,
        };

        let now = Timestamp::now();
        let current = remote
            .as_deref()
            .and_then(|r| Token::from_secret(r, &uid))
            .filter(|token| now < token.refresh_at());
        if let (Some(token), Some(remote)) = (&current, &remote)
            && is_up_to_date(&content.secret(token), remote)
        {
            self.schedule_refresh(account, token.refresh_at());
            return Ok(Outcome::Unchanged);
        }
        let token = match current {
            Some(token) => token,
            None => self.request_token(account).await?,
        };
        self.secrets_api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&content.secret(&token)),
            )
            .await
            .map_err(Error::kube(format!(
                "applying Secret {}/{name} in the remote cluster",
                self.remote_namespace
            )))?;
        debug!(namespace = %self.local_namespace, account, "token Secret written");
        self.schedule_refresh(account, token.refresh_at());
        Ok(Outcome::Written)
    }

    async fn delete(&self, name: &str, remote: &Secret) -> Result<Outcome> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: remote.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.secrets_api.delete(name, &params).await {
            Ok(_) => Ok(Outcome::Written),
            // Already gone, or replaced by another object with the same name.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Outcome::Unchanged),
            Err(e) => Err(Error::kube(format!(
                "deleting Secret {}/{name} in the remote cluster",
                self.remote_namespace
            ))(e)),
        }
    }

    /// Records a failure as a Warning Event on the local service account, if it still exists.
    async fn report_failure(&self, account: &str, error: &Error) {
        let Some(local) = self
            .accounts
            .get(&ObjectRef::new(account).within(&self.local_namespace))
        else {
            return;
        };
        let event = KubeEvent {
            type_: EventType::Warning,
            reason: FAILED_REASON.to_owned(),
            note: Some(format!(
                "reflection of the service account token to cluster {} failed: {error}",
                self.remote_cluster
            )),
            action: "Reflect".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &local.object_ref(&())).await {
            debug!(error = %e, "cannot record a reflection event");
        }
    }
}

/// One timer per key, all served by a single task ([`run`](Self::run)).
#[derive(Debug, Default)]
struct Timers {
    due: Mutex<HashMap<String, Instant>>,
    /// Wakes [`run`](Self::run) when `due` changes.
    wakeup: Notify,
}

impl Timers {
    fn due(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        match self.due.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// (Re)arms the timer of `key` to fire after `delay`.
    fn set(&self, key: &str, delay: Duration) {
        self.due().insert(key.to_owned(), Instant::now() + delay);
        self.wakeup.notify_one();
    }

    /// Disarms the timer of `key`, if armed.
    fn cancel(&self, key: &str) {
        if self.due().remove(key).is_some() {
            self.wakeup.notify_one();
        }
    }

    /// Calls `fire` with every key whose timer expires, once per arming. Runs until dropped.
    async fn run(&self, fire: impl Fn(String)) {
        loop {
            let next = self.due().values().min().copied();
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.wakeup.notified() => continue,
                    }
                }
                None => {
                    self.wakeup.notified().await;
                    continue;
                }
            }
            let now = Instant::now();
            let expired: Vec<String> = {
                let mut due = self.due();
                let expired: Vec<String> = due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in &expired {
                    due.remove(key);
                }
                expired
            };
            for key in expired {
                fire(key);
            }
        }
    }
}

/// A delay below [`MAX_REFRESH_JITTER`] derived from `account`, to spread refreshes.
fn jitter(account: &str) -> Duration {
    let max = MAX_REFRESH_JITTER.as_millis().max(1);
    let millis = u128::from(fnv1a(account.as_bytes())) % max;
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// The local service account a remote token Secret stands for.
fn account_of(secret: &Secret) -> Option<String> {
    secret
        .annotations()
        .get(SERVICE_ACCOUNT_NAME)
        .or_else(|| secret.labels().get(SERVICE_ACCOUNT_NAME))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn content<'a>(ca: &'a str, uid: &'a str, ids: &'a (ClusterId, ClusterId)) -> Content<'a> {
        Content {
            local_cluster: &ids.0,
            remote_cluster: &ids.1,
            local_namespace: "demo",
            remote_namespace: "demo-rome",
            service_account: "app",
            uid,
            ca,
        }
    }

    fn ids() -> (ClusterId, ClusterId) {
        ("rome".parse().unwrap(), "milan".parse().unwrap())
    }

    fn token() -> Token {
        Token {
            value: "jwt".into(),
            issued: at("2025-01-01T10:00:00Z"),
            expires: at("2025-01-01T11:00:00Z"),
        }
    }

    #[tokio::test]
    async fn timers_fire_once_in_order_unless_cancelled() {
        let timers = std::sync::Arc::new(Timers::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = timers.clone();
        let task = tokio::spawn(async move {
            runner.run(|key| tx.send(key).unwrap()).await;
        });
        timers.set("late", Duration::from_millis(150));
        timers.set("early", Duration::from_millis(20));
        timers.set("cancelled", Duration::from_millis(50));
        timers.set("moved", Duration::from_millis(10));
        timers.set("moved", Duration::from_millis(100));
        timers.cancel("cancelled");
        let mut fired = Vec::new();
        for _ in 0..3 {
            fired.push(rx.recv().await.unwrap());
        }
        assert_eq!(fired, ["early", "moved", "late"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err(), "each arming fires once");
        task.abort();
        assert!(jitter("app") < MAX_REFRESH_JITTER);
        assert_eq!(jitter("app"), jitter("app"));
    }

    #[test]
    fn names_are_suffixed_and_bounded() {
        assert_eq!(secret_name("default"), "default-liqo-token");
        let long = format!("{}.{}", "a".repeat(230), "b".repeat(22));
        let name = secret_name(&long);
        assert!(name.len() <= MAX_NAME_LEN, "{name}");
        assert!(name.ends_with(SECRET_NAME_SUFFIX));
        assert_eq!(name, secret_name(&long), "stable");
        // A cut that would end in a separator drops it.
        let dotted = format!("{}.{}", "a".repeat(225), "b".repeat(40));
        let name = secret_name(&dotted);
        assert!(!name.contains(".-"), "{name}");
        assert_eq!(label_value("app"), "app");
        let label = label_value(&"x".repeat(64));
        assert!(label.len() <= MAX_LABEL_LEN, "{label}");
        assert_ne!(label, label_value(&"x".repeat(65)));
    }

    #[test]
    fn refresh_is_due_at_eighty_percent_of_the_lifespan() {
        assert_eq!(token().refresh_at(), at("2025-01-01T10:48:00Z"));
        let odd = Token {
            expires: at("2025-01-01T10:00:07Z"),
            ..token()
        };
        assert_eq!(odd.refresh_at(), at("2025-01-01T10:00:05Z"));
        let backwards = Token {
            expires: at("2025-01-01T09:00:00Z"),
            ..token()
        };
        assert_eq!(backwards.refresh_at(), backwards.issued);
    }

    #[test]
    fn the_secret_holds_token_ca_namespace_and_ownership() {
        let ids = ids();
        let secret = content("PEM", "uid-1", &ids).secret(&token());
        assert_eq!(secret.metadata.name.as_deref(), Some("app-liqo-token"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("demo-rome"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        let data = secret.data.clone().unwrap();
        assert_eq!(data[TOKEN_KEY].0, b"jwt");
        assert_eq!(data[CA_KEY].0, b"PEM");
        assert_eq!(data[NAMESPACE_KEY].0, b"demo");
        let labels = secret.labels();
        assert_eq!(labels[ORIGIN], "rome");
        assert_eq!(labels[DESTINATION], "milan");
        assert_eq!(labels[SERVICE_ACCOUNT_NAME], "app");
        let annotations = secret.annotations();
        assert_eq!(
            annotations[SERVICE_ACCOUNT_EXPIRATION],
            "2025-01-01T11:00:00Z"
        );
        assert_eq!(annotations[TOKEN_ISSUED_ANNOTATION], "2025-01-01T10:00:00Z");
        assert_eq!(annotations[SERVICE_ACCOUNT_UID_ANNOTATION], "uid-1");
        assert_eq!(account_of(&secret).as_deref(), Some("app"));
        assert!(owned_by(&secret, &ids.0, &ids.1, "app"));
    }

    #[test]
    fn a_token_is_read_back_only_for_the_same_service_account() {
        let ids = ids();
        let secret = content("PEM", "uid-1", &ids).secret(&token());
        assert_eq!(Token::from_secret(&secret, "uid-1"), Some(token()));
        assert_eq!(Token::from_secret(&secret, "uid-2"), None, "recreated");
        let mut tampered = secret.clone();
        tampered
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(SERVICE_ACCOUNT_EXPIRATION.into(), "garbage".into());
        assert_eq!(Token::from_secret(&tampered, "uid-1"), None);
    }

    #[test]
    fn ownership_needs_all_three_labels() {
        let ids = ids();
        let ours = content("PEM", "uid-1", &ids).secret(&token());
        let mut unlabelled = ours.clone();
        unlabelled.metadata.labels = None;
        assert!(!owned_by(&unlabelled, &ids.0, &ids.1, "app"));
        // A twin of a local Secret written by the Secret reflector.
        let mut twin = ours.clone();
        twin.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(SERVICE_ACCOUNT_NAME);
        assert!(!owned_by(&twin, &ids.0, &ids.1, "app"));
        let turin: ClusterId = "turin".parse().unwrap();
        assert!(!owned_by(&ours, &ids.0, &turin, "app"));
        assert!(!owned_by(&ours, &ids.0, &ids.1, "other"));
    }

    #[test]
    fn up_to_date_compares_data_labels_and_annotations() {
        let ids = ids();
        let desired = content("PEM", "uid-1", &ids).secret(&token());
        let mut remote = desired.clone();
        remote.metadata.uid = Some("u".into());
        remote
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("extra".into(), "x".into());
        assert!(is_up_to_date(&desired, &remote));
        remote
            .data
            .as_mut()
            .unwrap()
            .insert("extra".into(), ByteString(b"x".to_vec()));
        assert!(is_up_to_date(&desired, &remote), "keys of others are fine");
        let rotated = content("NEW PEM", "uid-1", &ids).secret(&token());
        assert!(!is_up_to_date(&rotated, &remote), "the CA changed");
        remote
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(TOKEN_ISSUED_ANNOTATION);
        assert!(!is_up_to_date(&desired, &remote));
    }
}
