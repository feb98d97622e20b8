//! Per-object exponential backoff for controller error policies.
//!
//! kube-runtime's `Controller` asks the error policy for an [`Action`] after every failed
//! reconcile but keeps no per-object failure history, so a fixed requeue delay is either too
//! slow for transient errors or too fast for permanent ones. [`KeyedBackoff`] remembers how many
//! times in a row each object failed and hands out growing delays (1s, 2s, 4s, ... up to 5
//! minutes by default); a successful reconcile resets the object.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::runtime::controller::Action;
//! use kube::runtime::reflector::ObjectRef;
//! use liqo_core::runtime::KeyedBackoff;
//!
//! struct Context {
//!     backoff: KeyedBackoff<ObjectRef<ConfigMap>>,
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("reconcile failed")]
//! struct ReconcileError;
//!
//! async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
//!     // ... do the work; on success, forget the object's failures:
//!     ctx.backoff.reset_object(&obj);
//!     Ok(Action::requeue(Duration::from_secs(300)))
//! }
//!
//! fn error_policy(obj: Arc<ConfigMap>, _err: &ReconcileError, ctx: Arc<Context>) -> Action {
//!     ctx.backoff.requeue_object(&obj)
//! }
//!
//! # let _ = reconcile;
//! let ctx = Arc::new(Context { backoff: KeyedBackoff::default() });
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! let cm = Arc::new(cm);
//! let first = error_policy(cm.clone(), &ReconcileError, ctx.clone());
//! let second = error_policy(cm.clone(), &ReconcileError, ctx.clone());
//! assert_eq!(first, Action::requeue(Duration::from_secs(1)));
//! assert_eq!(second, Action::requeue(Duration::from_secs(2)));
//! ```

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

/// Entries are pruned (idle ones dropped) when the map reaches this many entries, at the least.
const MIN_PRUNE_THRESHOLD: usize = 1024;

/// Parameters of an exponential backoff.
///
/// The delay after the `n`-th consecutive failure (`n` from 1) is
/// `min(initial_delay * factor^(n-1), max_delay)`, optionally shortened by a random jitter.
/// Defaults: initial 1 second, max 5 minutes, factor 2, no jitter, entries idle for more than
/// twice the max delay forgotten.
///
/// ```
/// use std::time::Duration;
/// use liqo_core::runtime::BackoffConfig;
///
/// let config = BackoffConfig::default()
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(60))
///     .factor(3.0);
/// assert_eq!(config.delay_for(1), Duration::from_millis(500));
/// assert_eq!(config.delay_for(2), Duration::from_millis(1500));
/// assert_eq!(config.delay_for(20), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    idle_expiry: Option<Duration>,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
            factor: 2.0,
            jitter: 0.0,
            idle_expiry: None,
        }
    }
}

impl BackoffConfig {
    /// Sets the delay after the first failure (default 1 second).
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::BackoffConfig;
    ///
    /// let config = BackoffConfig::default().initial_delay(Duration::from_secs(5));
    /// assert_eq!(config.delay_for(1), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// Sets the longest delay (default 5 minutes). Delays never exceed it, even when the initial
    /// delay is longer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::BackoffConfig;
    ///
    /// let config = BackoffConfig::default().max_delay(Duration::from_secs(10));
    /// assert_eq!(config.delay_for(100), Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// Sets the growth factor between consecutive delays (default 2). Values below 1 (and NaN)
    /// are treated as 1, i.e. a constant delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::BackoffConfig;
    ///
    /// let constant = BackoffConfig::default().factor(1.0);
    /// assert_eq!(constant.delay_for(10), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// Sets the jitter, a fraction in `[0, 1]` (default 0, fully deterministic). With jitter `j`
    /// each delay is shortened by a random amount of up to `j` times itself, so objects that
    /// failed together spread their retries; delays stay within the max.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::{BackoffConfig, KeyedBackoff};
    ///
    /// let backoff = KeyedBackoff::new(BackoffConfig::default().jitter(0.1));
    /// let delay = backoff.next(&"key");
    /// assert!(delay <= Duration::from_secs(1) && delay >= Duration::from_millis(900));
    /// ```
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Sets after how long without failures a key's history is dropped even if it was never
    /// reset, which bounds memory when objects are deleted without [`KeyedBackoff::forget`]
    /// (default: twice the max delay). Such a key starts again from the initial delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::BackoffConfig;
    ///
    /// let config = BackoffConfig::default().idle_expiry(Duration::from_secs(3600));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn idle_expiry(mut self, expiry: Duration) -> Self {
        self.idle_expiry = Some(expiry);
        self
    }

    /// The delay, without jitter, after `failures` consecutive failures (`0` is treated as 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::BackoffConfig;
    ///
    /// let config = BackoffConfig::default();
    /// let secs: Vec<u64> = (1..=10).map(|n| config.delay_for(n).as_secs()).collect();
    /// assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    /// ```
    pub fn delay_for(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(i32::MAX as u32) as i32;
        let max = self.max.as_secs_f64();
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if !secs.is_finite() || secs >= max {
            self.max
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }

    fn expiry(&self) -> Duration {
        self.idle_expiry
            .unwrap_or_else(|| self.max.saturating_mul(2))
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
}

struct State<K> {
    entries: HashMap<K, Entry>,
    prune_threshold: usize,
    rng: u64,
}

/// Per-key exponential backoff, shared by a controller's reconcile and error policy.
///
/// [`next`](Self::next) records a failure of a key and returns how long to wait before retrying
/// it; [`reset`](Self::reset) (after a success) and [`forget`](Self::forget) (after a deletion)
/// drop the key's history. Keys idle for longer than the configured expiry are dropped too, so
/// memory stays bounded by the number of objects currently failing.
///
/// The state sits behind a `std::sync::Mutex` that is only held for a map lookup, never across
/// an `.await`, so the methods can be called from async code. Keys are typically
/// [`ObjectRef`]s, for which [`requeue_object`](Self::requeue_object) and
/// [`reset_object`](Self::reset_object) take the object itself.
///
/// ```
/// use std::time::Duration;
/// use liqo_core::runtime::KeyedBackoff;
///
/// let backoff = KeyedBackoff::default();
/// assert_eq!(backoff.next(&"a"), Duration::from_secs(1));
/// assert_eq!(backoff.next(&"a"), Duration::from_secs(2));
/// assert_eq!(backoff.next(&"b"), Duration::from_secs(1));
/// backoff.reset(&"a");
/// assert_eq!(backoff.next(&"a"), Duration::from_secs(1));
/// ```
pub struct KeyedBackoff<K> {
    config: BackoffConfig,
    state: Mutex<State<K>>,
}

impl<K> fmt::Debug for KeyedBackoff<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tracked = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        f.debug_struct("KeyedBackoff")
            .field("config", &self.config)
            .field("tracked", &tracked)
            .finish()
    }
}

impl<K: Eq + Hash + Clone> Default for KeyedBackoff<K> {
    fn default() -> Self {
        Self::new(BackoffConfig::default())
    }
}

impl<K: Eq + Hash + Clone> KeyedBackoff<K> {
    /// Creates a backoff with the given parameters and no history.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::{BackoffConfig, KeyedBackoff};
    ///
    /// let backoff: KeyedBackoff<String> =
    ///     KeyedBackoff::new(BackoffConfig::default().max_delay(Duration::from_secs(30)));
    /// assert!(backoff.is_empty());
    /// ```
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                entries: HashMap::new(),
                prune_threshold: MIN_PRUNE_THRESHOLD,
                rng: RandomState::new().hash_one(0x6c69_716f_u64),
            }),
        }
    }

    /// The parameters of this backoff.
    ///
    /// ```
    /// use liqo_core::runtime::{BackoffConfig, KeyedBackoff};
    ///
    /// let backoff: KeyedBackoff<u32> = KeyedBackoff::default();
    /// assert_eq!(*backoff.config(), BackoffConfig::default());
    /// ```
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // The state is plain counters, always consistent: a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// let delays: Vec<_> = (0..3).map(|_| backoff.next(&7).as_secs()).collect();
    /// assert_eq!(delays, [1, 2, 4]);
    /// ```
    pub fn next(&self, key: &K) -> Duration {
        self.next_at(key, Instant::now())
    }

    fn next_at(&self, key: &K, now: Instant) -> Duration {
        let mut state = self.lock();
        let failures = match state.entries.get_mut(key) {
            Some(entry) => {
                entry.failures = entry.failures.saturating_add(1);
                entry.last_failure = now;
                entry.failures
            }
            None => {
                if state.entries.len() >= state.prune_threshold {
                    Self::prune_locked(&mut state, self.config.expiry(), now);
                }
                state.entries.insert(
                    key.clone(),
                    Entry {
                        failures: 1,
                        last_failure: now,
                    },
                );
                1
            }
        };
        let delay = self.config.delay_for(failures);
        if self.config.jitter > 0.0 {
            let cut = self.config.jitter * unit_random(&mut state.rng);
            delay.mul_f64(1.0 - cut)
        } else {
            delay
        }
    }

    /// Records a failure of `key` and returns the matching requeue [`Action`], for a
    /// controller's error policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kube::runtime::controller::Action;
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// assert_eq!(backoff.requeue(&"a"), Action::requeue(Duration::from_secs(1)));
    /// ```
    pub fn requeue(&self, key: &K) -> Action {
        Action::requeue(self.next(key))
    }

    /// Forgets the failures of `key`, typically after a successful reconcile, so its next
    /// failure waits the initial delay again. Returns whether the key had failures.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&"a");
    /// assert!(backoff.reset(&"a"));
    /// assert!(!backoff.reset(&"a"));
    /// assert_eq!(backoff.failures(&"a"), 0);
    /// ```
    pub fn reset(&self, key: &K) -> bool {
        self.lock().entries.remove(key).is_some()
    }

    /// Drops everything known about `key`, typically when its object is deleted. Same effect as
    /// [`reset`](Self::reset); the two names say why the history goes away.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&"gone");
    /// backoff.forget(&"gone");
    /// assert!(backoff.is_empty());
    /// ```
    pub fn forget(&self, key: &K) {
        self.reset(key);
    }

    /// How many consecutive failures of `key` are recorded.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&"a");
    /// backoff.next(&"a");
    /// assert_eq!(backoff.failures(&"a"), 2);
    /// assert_eq!(backoff.failures(&"b"), 0);
    /// ```
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().entries.get(key).map_or(0, |e| e.failures)
    }

    /// How many keys have recorded failures.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&1);
    /// backoff.next(&2);
    /// assert_eq!(backoff.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key has recorded failures.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// assert!(KeyedBackoff::<u8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Drops the history of every key.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&1);
    /// backoff.clear();
    /// assert!(backoff.is_empty());
    /// ```
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.prune_threshold = MIN_PRUNE_THRESHOLD;
    }

    /// Drops the keys that have not failed for longer than the idle expiry. This also happens
    /// automatically as keys are added; calling it is only needed to release memory eagerly.
    ///
    /// ```
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// backoff.next(&1);
    /// backoff.prune();
    /// assert_eq!(backoff.len(), 1); // failed just now, kept
    /// ```
    pub fn prune(&self) {
        let mut state = self.lock();
        Self::prune_locked(&mut state, self.config.expiry(), Instant::now());
    }

    fn prune_locked(state: &mut State<K>, expiry: Duration, now: Instant) {
        state
            .entries
            .retain(|_, e| now.saturating_duration_since(e.last_failure) <= expiry);
        // Amortized: the next sweep happens after the map has doubled again.
        state.prune_threshold = state
            .entries
            .len()
            .saturating_mul(2)
            .max(MIN_PRUNE_THRESHOLD);
    }
}

impl<R> KeyedBackoff<ObjectRef<R>>
where
    R: Resource,
    R::DynamicType: Default + Eq + Hash + Clone,
{
    /// [`requeue`](Self::requeue) keyed by the reference (namespace and name) to `obj`.
    ///
    /// An object without a name (never the case for objects read from the API server) cannot
    /// be tracked: it gets the initial delay and nothing is recorded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use k8s_openapi::api::core::v1::Secret;
    /// use kube::runtime::controller::Action;
    /// use kube::runtime::reflector::ObjectRef;
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff: KeyedBackoff<ObjectRef<Secret>> = KeyedBackoff::default();
    /// let mut secret = Secret::default();
    /// secret.metadata.name = Some("keys".into());
    /// secret.metadata.namespace = Some("liqo".into());
    /// assert_eq!(backoff.requeue_object(&secret), Action::requeue(Duration::from_secs(1)));
    /// assert_eq!(backoff.failures(&ObjectRef::new("keys").within("liqo")), 1);
    /// ```
    pub fn requeue_object(&self, obj: &R) -> Action {
        match object_ref(obj) {
            Some(key) => self.requeue(&key),
            None => Action::requeue(self.config.delay_for(1)),
        }
    }

    /// [`reset`](Self::reset) keyed by the reference (namespace and name) to `obj`.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Secret;
    /// use liqo_core::runtime::KeyedBackoff;
    ///
    /// let backoff = KeyedBackoff::default();
    /// let mut secret = Secret::default();
    /// secret.metadata.name = Some("keys".into());
    /// backoff.requeue_object(&secret);
    /// assert!(backoff.reset_object(&secret));
    /// assert!(backoff.is_empty());
    /// ```
    pub fn reset_object(&self, obj: &R) -> bool {
        object_ref(obj).is_some_and(|key| self.reset(&key))
    }
}

/// The reference to `obj`, or `None` if it has no name. Unlike `ObjectRef::from_obj`, never
/// panics; the result compares equal to the one `from_obj` builds.
fn object_ref<R>(obj: &R) -> Option<ObjectRef<R>>
where
    R: Resource,
    R::DynamicType: Default,
{
    let meta = obj.meta();
    let key = ObjectRef::new(meta.name.as_deref()?);
    Some(match meta.namespace.as_deref() {
        Some(namespace) => key.within(namespace),
        None => key,
    })
}

/// A uniform sample in `[0, 1)` from a splitmix64 generator (jitter needs no cryptographic
/// quality, and this keeps the crate free of an RNG dependency).
fn unit_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // 53 random bits, the precision of an f64 mantissa.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn default_sequence_doubles_up_to_five_minutes() {
        let backoff = KeyedBackoff::default();
        let delays: Vec<u64> = (0..12).map(|_| backoff.next(&"k").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff.failures(&"k"), 12);
    }

    #[test]
    fn keys_are_independent() {
        let backoff = KeyedBackoff::default();
        backoff.next(&1);
        backoff.next(&1);
        assert_eq!(backoff.next(&2), Duration::from_secs(1));
        assert_eq!(backoff.next(&1), Duration::from_secs(4));
        assert_eq!(backoff.len(), 2);
    }

    #[test]
    fn reset_and_forget_drop_entries() {
        let backoff = KeyedBackoff::default();
        backoff.next(&"a");
        backoff.next(&"a");
        backoff.next(&"b");
        assert!(backoff.reset(&"a"));
        assert_eq!(backoff.len(), 1);
        assert_eq!(backoff.next(&"a"), Duration::from_secs(1));
        backoff.forget(&"a");
        backoff.forget(&"b");
        assert!(backoff.is_empty());
    }

    #[test]
    fn delay_for_edge_cases() {
        let config = BackoffConfig::default();
        assert_eq!(config.delay_for(0), Duration::from_secs(1));
        assert_eq!(config.delay_for(u32::MAX), Duration::from_secs(300));

        let huge = BackoffConfig::default().factor(f64::MAX);
        assert_eq!(huge.delay_for(3), Duration::from_secs(300));

        let inverted = BackoffConfig::default()
            .initial_delay(Duration::from_secs(10))
            .max_delay(Duration::from_secs(3));
        assert_eq!(inverted.delay_for(1), Duration::from_secs(3));

        let shrinking = BackoffConfig::default().factor(0.5);
        assert_eq!(shrinking.delay_for(5), Duration::from_secs(1));
        let nan = BackoffConfig::default().factor(f64::NAN);
        assert_eq!(nan.delay_for(5), Duration::from_secs(1));

        let zero = BackoffConfig::default().initial_delay(Duration::ZERO);
        assert_eq!(zero.delay_for(5), Duration::ZERO);
        let zero_max = BackoffConfig::default().max_delay(Duration::ZERO);
        assert_eq!(zero_max.delay_for(1), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let backoff = KeyedBackoff::new(BackoffConfig::default().jitter(0.2));
        let mut seen = Vec::new();
        for _ in 0..200 {
            let delay = backoff.next(&"k");
            let base = backoff.config().delay_for(backoff.failures(&"k"));
            assert!(delay <= base, "{delay:?} > {base:?}");
            assert!(
                secs(delay) >= secs(base) * 0.8 - 1e-9,
                "{delay:?} < 0.8 * {base:?}"
            );
            backoff.reset(&"k");
            seen.push(delay);
        }
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 1, "jitter produced a constant delay");

        assert_eq!(BackoffConfig::default().jitter(7.0).jitter, 1.0);
        assert_eq!(BackoffConfig::default().jitter(-1.0).jitter, 0.0);
        assert_eq!(BackoffConfig::default().jitter(f64::NAN).jitter, 0.0);
    }

    #[test]
    fn unit_random_is_in_range() {
        let mut state = 0;
        for _ in 0..10_000 {
            let x = unit_random(&mut state);
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn idle_entries_are_pruned() {
        let backoff = KeyedBackoff::new(BackoffConfig::default());
        let start = Instant::now();
        for key in 0..MIN_PRUNE_THRESHOLD {
            backoff.next_at(&key, start);
        }
        assert_eq!(backoff.len(), MIN_PRUNE_THRESHOLD);
        // Key 0 keeps failing; all others went quiet.
        let later = start + Duration::from_secs(9 * 60);
        assert_eq!(backoff.next_at(&0, later), Duration::from_secs(2));
        // A new key past the threshold triggers a sweep of entries idle > 10 minutes.
        let much_later = start + Duration::from_secs(11 * 60);
        backoff.next_at(&usize::MAX, much_later);
        assert_eq!(backoff.len(), 2);
        assert_eq!(backoff.failures(&0), 2);
        assert_eq!(backoff.failures(&1), 0);
        let state = backoff.lock();
        assert_eq!(state.prune_threshold, MIN_PRUNE_THRESHOLD);
    }

    #[test]
    fn custom_idle_expiry() {
        let backoff =
            KeyedBackoff::new(BackoffConfig::default().idle_expiry(Duration::from_secs(5)));
        let start = Instant::now();
        backoff.next_at(&"a", start);
        let mut state = backoff.lock();
        KeyedBackoff::<&str>::prune_locked(
            &mut state,
            backoff.config.expiry(),
            start + Duration::from_secs(6),
        );
        assert!(state.entries.is_empty());
    }

    #[test]
    fn shared_across_threads() {
        let backoff = Arc::new(KeyedBackoff::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let backoff = Arc::clone(&backoff);
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        backoff.next(&"shared");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(backoff.failures(&"shared"), 100);
    }

    #[test]
    fn object_helpers_key_by_reference() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::ObjectMeta;

        let backoff: KeyedBackoff<ObjectRef<ConfigMap>> = KeyedBackoff::default();
        let cm = |ns: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some("cfg".into()),
                namespace: Some(ns.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        assert_eq!(
            backoff.requeue_object(&cm("a")),
            Action::requeue(Duration::from_secs(1))
        );
        assert_eq!(
            backoff.requeue_object(&cm("a")),
            Action::requeue(Duration::from_secs(2))
        );
        assert_eq!(
            backoff.requeue_object(&cm("b")),
            Action::requeue(Duration::from_secs(1))
        );
        assert!(backoff.reset_object(&cm("a")));
        assert_eq!(backoff.failures(&ObjectRef::new("cfg").within("a")), 0);
        assert_eq!(backoff.failures(&ObjectRef::new("cfg").within("b")), 1);
        // Keys agree with the references kube-runtime builds itself.
        assert_eq!(backoff.failures(&ObjectRef::from_obj(&cm("b"))), 1);
        // Nameless objects are not tracked, and do not panic.
        let nameless = ConfigMap::default();
        assert_eq!(
            backoff.requeue_object(&nameless),
            Action::requeue(Duration::from_secs(1))
        );
        assert!(!backoff.reset_object(&nameless));
        assert_eq!(backoff.len(), 1);
    }

    #[test]
    fn debug_shows_config_and_size() {
        let backoff: KeyedBackoff<u8> = KeyedBackoff::default();
        backoff.next(&1);
        let text = format!("{backoff:?}");
        assert!(text.contains("tracked: 1"), "{text}");
    }
}
