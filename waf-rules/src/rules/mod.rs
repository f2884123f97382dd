//! Rule files: the TOML format and its loader.

mod format;
mod load;

pub(crate) use format::{Operator, Rule, TargetSel};
pub(crate) use load::{load_builtin, load_dir};
