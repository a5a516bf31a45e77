//! Errors in dialogue files, reported as `file:line:column: message` like cargo does.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the dialogue files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (in characters); `None` for a file that could not be read.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                line,
                column,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// All the problems found while loading a dialogue directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A position in one of the loaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub file: usize,
    pub offset: usize,
}

/// The loaded files' names and line starts, to turn byte offsets into lines and columns.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceMap {
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
            line_starts,
        });
        self.files.len() - 1
    }

    pub fn text(&self, file: usize) -> &str {
        &self.files[file].text
    }

    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].path
    }

    pub fn loc(&self, file: usize, span: &Range<usize>) -> Loc {
        Loc {
            file,
            offset: span.start,
        }
    }

    pub fn diagnostic(&self, loc: Loc, message: impl Into<String>) -> Diagnostic {
        let Some(f) = self.files.get(loc.file) else {
            return Diagnostic {
                file: PathBuf::from("<unknown file>"),
                position: None,
                message: message.into(),
            };
        };
        let offset = loc.offset.min(f.text.len());
        let line = f.line_starts.partition_point(|&s| s <= offset);
        let start = f.line_starts[line - 1];
        let column = f
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Diagnostic {
            file: f.path.clone(),
            position: Some((line, column)),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let mut map = SourceMap::default();
        let f = map.add(Path::new("x.toml"), "a = 1\nb = \"é\" z\n".into());
        let d = map.diagnostic(Loc { file: f, offset: 0 }, "m");
        assert_eq!(d.position, Some((1, 1)));
        let z = map.text(f).find('z').unwrap();
        let d = map.diagnostic(Loc { file: f, offset: z }, "m");
        assert_eq!(d.position, Some((2, 9)));
        assert_eq!(d.to_string(), "x.toml:2:9: m");
    }
}
