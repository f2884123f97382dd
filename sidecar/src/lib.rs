//! rampart-sidecar: the mTLS mesh sidecar. Not built yet; see README.md.
#![forbid(unsafe_code)]
