//! Rule files: the TOML format and its loader.

mod format;
mod load;

pub(crate) use format::{Operator, Rule, TargetSel};
pub(crate) use load::{builtin_texts, parse_all, read_dir, Texts};
