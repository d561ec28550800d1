//! Failed-login limits, per username and per client address, counted in Redis so that every
//! instance shares them. Each attempt is counted before its password is checked, with an
//! atomic increment, so a burst of parallel attempts cannot all slip under the limit; a
//! successful login then takes its attempt back. When Redis is unreachable (or slow) the
//! counts fall back to this process's memory: a brute-force attempt must not get unlimited
//! tries because the cache is down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::Redis;

/// How long attempts are remembered; each new attempt restarts the window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Redis gets this long per call before the in-memory count is used instead: a hung Redis
/// must not make every login wait for the health timeout.
const REDIS_BUDGET: Duration = Duration::from_millis(250);

pub struct LoginLimiter {
    redis: Arc<Redis>,
    prefix: String,
    per_user: u32,
    per_client: u32,
    local: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(redis: Arc<Redis>, prefix: &str, per_user: u32) -> Self {
        // A client may mistype a few different accounts (a shared office address); an
        // attacker spraying one password over many names is still stopped.
        let per_client = per_user.saturating_mul(4);
        let prefix = prefix.to_owned();
        Self {
            redis,
            prefix,
            per_user,
            per_client,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn user_key(&self, username: &str) -> String {
        let user = crate::auth::tokens::sha256_hex(&username.to_lowercase());
        format!("{}login_attempts:user:{user}", self.prefix)
    }

    fn client_key(&self, client: IpAddr) -> String {
        format!("{}login_attempts:client:{client}", self.prefix)
    }

    /// Counts one attempt; `Err(seconds)` when the name or the client is over its limit, for
    /// a 429 with that `Retry-After`.
    pub async fn attempt(&self, client: IpAddr, username: &str) -> Result<(), u64> {
        let counted = [
            (self.user_key(username), self.per_user),
            (self.client_key(client), self.per_client),
        ];
        let mut refused = None;
        for (key, limit) in counted {
            let (count, ttl) = self.increment(&key).await;
            if count > limit {
                refused = Some(refused.unwrap_or(0).max(ttl.max(1)));
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// A successful login: the name's count is cleared and the client's attempt taken back.
    pub async fn succeeded(&self, client: IpAddr, username: &str) {
        let (user, client) = (self.user_key(username), self.client_key(client));
        let mut conn = self.redis.connection();
        let mut undo = redis::pipe();
        undo.del(&user).ignore().decr(&client, 1).ignore();
        let _ = tokio::time::timeout(REDIS_BUDGET, undo.query_async::<()>(&mut conn)).await;
        let mut local = self.lock();
        local.remove(&user);
        if let Some(entry) = local.get_mut(&client) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// The count after this attempt and the seconds until it expires, from Redis, or from
    /// memory when Redis does not answer within its budget.
    async fn increment(&self, key: &str) -> (u32, u64) {
        let mut conn = self.redis.connection();
        let window = WINDOW.as_secs() as i64;
        let mut count = redis::pipe();
        count.atomic().incr(key, 1).expire(key, window).ignore();
        match tokio::time::timeout(REDIS_BUDGET, count.query_async::<(u32,)>(&mut conn)).await {
            Ok(Ok((count,))) => (count, WINDOW.as_secs()),
            _ => {
                let mut local = self.lock();
                local.retain(|_, (_, last)| last.elapsed() < WINDOW);
                let entry = local.entry(key.to_owned()).or_insert((0, Instant::now()));
                *entry = (entry.0 + 1, Instant::now());
                (entry.0, WINDOW.as_secs())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }
}
