//! Failed-login limits, per username and per client address, counted in Redis so that every
//! instance shares them. When Redis is unreachable the counts fall back to this process's
//! memory: a brute-force attempt must not get unlimited tries because the cache is down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::Redis;

/// How long failures are remembered; each new failure restarts the window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

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

    fn keys(&self, client: IpAddr, username: &str) -> [(String, bool); 2] {
        let user = crate::auth::tokens::sha256_hex(&username.to_lowercase());
        let prefix = &self.prefix;
        [
            (format!("{prefix}login_failures:user:{user}"), true),
            (format!("{prefix}login_failures:client:{client}"), false),
        ]
    }

    /// `Err(seconds)` when either limit is reached: the caller answers 429 with Retry-After.
    pub async fn check(&self, client: IpAddr, username: &str) -> Result<(), u64> {
        for (key, is_user) in self.keys(client, username) {
            let limit = if is_user {
                self.per_user
            } else {
                self.per_client
            };
            let (count, ttl) = self.read(&key).await;
            if count >= limit {
                return Err(ttl.max(1));
            }
        }
        Ok(())
    }

    pub async fn record_failure(&self, client: IpAddr, username: &str) {
        for (key, _) in self.keys(client, username) {
            let mut conn = self.redis.connection();
            let counted: redis::RedisResult<()> = redis::pipe()
                .atomic()
                .incr(&key, 1)
                .ignore()
                .expire(&key, WINDOW.as_secs() as i64)
                .ignore()
                .query_async(&mut conn)
                .await;
            if counted.is_err() {
                let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                let entry = local.entry(key).or_insert((0, Instant::now()));
                *entry = (entry.0 + 1, Instant::now());
            }
        }
    }

    /// A successful login forgets the username's failures (not the client's).
    pub async fn clear_user(&self, client: IpAddr, username: &str) {
        let [(user_key, _), _] = self.keys(client, username);
        let mut conn = self.redis.connection();
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(&user_key)
            .query_async(&mut conn)
            .await;
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user_key);
    }

    /// The failure count and the seconds until it expires, from Redis or else from memory.
    async fn read(&self, key: &str) -> (u32, u64) {
        let mut conn = self.redis.connection();
        let remote: redis::RedisResult<(Option<u32>, i64)> =
            redis::pipe().get(key).ttl(key).query_async(&mut conn).await;
        let local = self.local_count(key);
        match remote {
            Ok((count, ttl)) => {
                let remote = (count.unwrap_or(0), u64::try_from(ttl).unwrap_or(0));
                if local.0 > remote.0 { local } else { remote }
            }
            Err(_) => local,
        }
    }

    fn local_count(&self, key: &str) -> (u32, u64) {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.retain(|_, (_, last)| last.elapsed() < WINDOW);
        match local.get(key) {
            Some((count, last)) => (*count, WINDOW.saturating_sub(last.elapsed()).as_secs()),
            None => (0, 0),
        }
    }
}
