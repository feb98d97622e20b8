//! A work queue keyed by object name, like client-go's: a key is queued at most once, never
//! processed by two workers at once, and re-queued when it changes while being processed.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use tokio::sync::{Mutex as AsyncMutex, mpsc};

use crate::metrics::ReflectorMetrics;

#[derive(Debug, Default)]
struct State {
    /// Keys waiting, with the time they were first queued (for the latency metric).
    queued: HashMap<String, Instant>,
    processing: HashSet<String>,
    /// Keys that changed while being processed: queued again when done.
    dirty: HashMap<String, Instant>,
}

#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<String>,
    rx: AsyncMutex<mpsc::UnboundedReceiver<String>>,
    metrics: Arc<ReflectorMetrics>,
}

impl Queue {
    pub(crate) fn new(metrics: Arc<ReflectorMetrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            state: Mutex::default(),
            tx,
            rx: AsyncMutex::new(rx),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in another holder (every update is a
        // single insert or remove), so a poisoned lock is still usable.
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn add(&self, key: String) {
        let mut state = self.lock();
        if state.processing.contains(&key) {
            state.dirty.entry(key).or_insert_with(Instant::now);
            return;
        }
        if state.queued.contains_key(&key) {
            return;
        }
        state.queued.insert(key.clone(), Instant::now());
        self.metrics.set_queue_depth(state.queued.len());
        let _ = self.tx.send(key);
    }

    /// The next key and when it was first queued; `None` once the queue is closed.
    pub(crate) async fn next(&self) -> Option<(String, Instant)> {
        let key = self.rx.lock().await.recv().await?;
        let mut state = self.lock();
        let since = state.queued.remove(&key).unwrap_or_else(Instant::now);
        state.processing.insert(key.clone());
        self.metrics.set_queue_depth(state.queued.len());
        Some((key, since))
    }

    pub(crate) fn done(&self, key: &str) {
        let mut state = self.lock();
        state.processing.remove(key);
        if let Some(since) = state.dirty.remove(key) {
            state.queued.insert(key.to_owned(), since);
            self.metrics.set_queue_depth(state.queued.len());
            let _ = self.tx.send(key.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_requeued_when_dirty() {
        let q = Queue::new(Arc::default());
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        let (first, _) = q.next().await.unwrap();
        assert_eq!(first, "a");
        q.add("a".into()); // changed while processing
        let (second, _) = q.next().await.unwrap();
        assert_eq!(second, "b", "a is not handed out twice at once");
        q.done("a");
        let (third, _) = q.next().await.unwrap();
        assert_eq!(third, "a", "a comes back after it is done");
        q.done("b");
        q.done("a");
        assert_eq!(q.metrics.queue_depth(), 0);
    }
}
