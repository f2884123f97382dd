//! Fleet-wide GCRA in Redis (work in progress).

/// Gauge set to 1 while the fleet limiter runs on local limits only.
pub const FALLBACK_METRIC: &str = "rampart_ratelimit_redis_fallback";
