//! DoS defences, rate limits and denial alerting (S.N.4, S.N.12).
