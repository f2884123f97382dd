//! TOML files read once at load: their text, a version hash, and errors that name the file,
//! the line and column, and the field (`inbound[0].rule[2].methods[1]`) a person must fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Largest policy, directory or config file we read (a typo'd path to a huge file must not
/// eat the sidecar's memory).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One TOML file as read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    version: String,
}

/// Where in a file something is, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path, e.g. `inbound[0].rule[1].callers[0]`, when known.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

impl SourceFile {
    /// Reads a file (at most [`MAX_FILE_BYTES`]).
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let fail = |message: String| FileError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(format!(
                "file is {} bytes, larger than the {} byte limit",
                meta.len(),
                MAX_FILE_BYTES
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Ok(Self::from_text(path, text))
    }

    /// A file whose text is already in memory (tests, fuzzing).
    pub fn from_text(path: &Path, text: String) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let version = format!("sha256:{}", &hex::encode(digest.as_ref())[..16]);
        SourceFile {
            path: path.to_path_buf(),
            text,
            version,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The version: the first 16 hex digits of the SHA-256 of the text, `sha256:…`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Deserializes the whole file, reporting the field path and position of the first error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, FileError> {
        let de = toml::Deserializer::new(&self.text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            // `toml::Spanned` wrappers show up in the path as a private field name.
            let field = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "")
                .replace("$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let field = (field != "." && !field.is_empty()).then_some(field);
            let message = toml_message(&inner);
            self.error_at(inner.span(), field, message)
        })
    }

    /// An error at a byte span of this file.
    pub fn error_at(
        &self,
        span: Option<Range<usize>>,
        field: Option<String>,
        message: String,
    ) -> FileError {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = line_column(&self.text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        FileError {
            file: self.path.clone(),
            line,
            column,
            field,
            message,
        }
    }
}

/// The message of a TOML error without its position header and source snippet (we print
/// the position ourselves). Some syntax errors have an empty `message()`; their text then
/// comes from the rendered error.
fn toml_message(error: &toml::de::Error) -> String {
    let message = error.message().trim();
    if !message.is_empty() {
        return message.to_string();
    }
    let rendered = error.to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    if parts.is_empty() {
        "malformed TOML".to_string()
    } else {
        parts.join("; ")
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn version_changes_with_text() {
        let a = SourceFile::from_text(Path::new("p"), "x = 1".into());
        let b = SourceFile::from_text(Path::new("p"), "x = 2".into());
        assert_ne!(a.version(), b.version());
        assert!(a.version().starts_with("sha256:"));
        assert_eq!(a.version().len(), "sha256:".len() + 16);
    }
}
