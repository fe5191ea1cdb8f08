//! [`MemoryApiKeyStore`]: the keys of one instance, in memory.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{ApiKeyHash, ApiKeyInfo, ApiKeyStore, FoundApiKey};

/// API keys in memory: lost at a restart (their owners create new ones). For keys that survive
/// restarts or serve a fleet, use the SQL store (feature `sql`) or your own [`ApiKeyStore`].
#[derive(Default)]
pub struct MemoryApiKeyStore {
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, (ApiKeyInfo, ApiKeyHash)>,
    by_hash: HashMap<ApiKeyHash, String>,
}

impl MemoryApiKeyStore {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> MutexGuard<'_, Keys> {
        // Every change keeps both maps consistent before it can panic.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.keys().by_id.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryApiKeyStore")
            .field("keys", &self.len())
            .finish()
    }
}

impl ApiKeyStore for MemoryApiKeyStore {
    type Error = Infallible;

    async fn create(&self, key: &ApiKeyInfo, hash: &ApiKeyHash) -> Result<(), Infallible> {
        let mut keys = self.keys();
        keys.by_hash.insert(*hash, key.id.clone());
        keys.by_id.insert(key.id.clone(), (key.clone(), *hash));
        Ok(())
    }

    async fn list(&self, subject: &str) -> Result<Vec<ApiKeyInfo>, Infallible> {
        let mut list: Vec<ApiKeyInfo> = self
            .keys()
            .by_id
            .values()
            .filter(|(info, _)| info.subject == subject)
            .map(|(info, _)| info.clone())
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn revoke(&self, subject: &str, id: &str) -> Result<bool, Infallible> {
        let mut keys = self.keys();
        if keys
            .by_id
            .get(id)
            .is_none_or(|(info, _)| info.subject != subject)
        {
            return Ok(false);
        }
        if let Some((_, hash)) = keys.by_id.remove(id) {
            keys.by_hash.remove(&hash);
        }
        Ok(true)
    }

    async fn find_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<FoundApiKey>, Infallible> {
        let keys = self.keys();
        Ok(keys
            .by_hash
            .get(hash)
            .and_then(|id| keys.by_id.get(id))
            .map(|(info, _)| FoundApiKey {
                key: info.clone(),
                owner: None,
            }))
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<ApiKeyInfo>, Infallible> {
        Ok(self.keys().by_id.get(id).map(|(info, _)| info.clone()))
    }

    async fn touch(&self, id: &str, at: u64) -> Result<(), Infallible> {
        if let Some((info, _)) = self.keys().by_id.get_mut(id) {
            info.last_used_at = Some(at);
        }
        Ok(())
    }
}
