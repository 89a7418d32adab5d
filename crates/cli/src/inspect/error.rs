//! The parsers' error: which file, which line, what was wrong.

/// A malformed `bufinfo`, `fdinfo` or `maps` text.
///
/// `file` names the kind of text (`"bufinfo"`, `"fdinfo"`, `"maps"`); `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A field that should be a number is not.
    #[error("{file} line {line}: {field} {value:?} is not a number")]
    BadNumber {
        /// The kind of text.
        file: &'static str,
        /// The line, from 1.
        line: usize,
        /// The field.
        field: &'static str,
        /// The text found (cut to 64 bytes).
        value: String,
    },
    /// A line that does not have the expected shape.
    #[error("{file} line {line}: expected {expected}")]
    Malformed {
        /// The kind of text.
        file: &'static str,
        /// The line, from 1.
        line: usize,
        /// What the line should have been.
        expected: &'static str,
    },
    /// A field every such text has is missing.
    #[error("{file}: no {field} field")]
    Missing {
        /// The kind of text.
        file: &'static str,
        /// The field.
        field: &'static str,
    },
}

/// The value cut to 64 bytes (on a character boundary), for error messages.
pub(crate) fn excerpt(value: &str) -> String {
    let mut end = value.len().min(64);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Parses a number in `radix`, or names the field and line that held something else.
pub(crate) fn number<T: FromStrRadix>(
    file: &'static str,
    line: usize,
    field: &'static str,
    value: &str,
    radix: u32,
) -> Result<T, ParseError> {
    T::from_str_radix(value.trim(), radix).ok_or_else(|| ParseError::BadNumber {
        file,
        line,
        field,
        value: excerpt(value),
    })
}

/// Integer types the parsers read.
pub(crate) trait FromStrRadix: Sized {
    /// `from_str_radix`, `None` on failure.
    fn from_str_radix(s: &str, radix: u32) -> Option<Self>;
}

impl FromStrRadix for u64 {
    fn from_str_radix(s: &str, radix: u32) -> Option<Self> {
        u64::from_str_radix(s, radix).ok()
    }
}

impl FromStrRadix for u32 {
    fn from_str_radix(s: &str, radix: u32) -> Option<Self> {
        u32::from_str_radix(s, radix).ok()
    }
}
