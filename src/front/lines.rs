//! Reading input lines safely: bounded length, invalid UTF-8 reported instead of fatal.

use std::io::{BufRead, ErrorKind};

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Longer than the limit; the whole line was skipped.
    TooLong,
    InvalidUtf8,
}

pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// The next line, or `None` at the end of input. Never holds more than `max` bytes.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            if !too_long {
                if buf.len() + part.len() > self.max {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(part);
                }
            }
            let used = done.unwrap_or(chunk.len());
            self.inner.consume(used);
            if done.is_some() {
                break;
            }
        }
        if too_long {
            return Ok(Some(Line::TooLong));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(match String::from_utf8(buf) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::InvalidUtf8,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(std::io::BufReader::with_capacity(4, input), max);
        std::iter::from_fn(|| r.next_line().unwrap()).collect()
    }

    #[test]
    fn splits_lines_and_strips_carriage_returns() {
        assert_eq!(
            lines(b"one\r\ntwo\nthree", 100),
            vec![
                Line::Text("one".into()),
                Line::Text("two".into()),
                Line::Text("three".into())
            ]
        );
    }

    #[test]
    fn long_lines_and_bad_bytes_are_reported_and_skipped() {
        assert_eq!(
            lines(b"abcdefghij\n\xff\xfe\nok\n", 5),
            vec![Line::TooLong, Line::InvalidUtf8, Line::Text("ok".into())]
        );
    }
}
