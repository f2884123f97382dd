//! The CLI's commands and corpus readers.

pub mod check;
pub mod corpus;
pub mod crs;
pub mod eval;
pub mod heldout;
pub mod owned;
