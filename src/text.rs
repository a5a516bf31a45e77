//! Free-text matching: normalisation and the `match` patterns of dialogue files.
//!
//! Text is compared as lower-case, accent-free words ("Sí, me duele" → `si me duele`), split
//! into clauses at punctuation and at clause-breaking words ("but", "pero"). A pattern is one or
//! more terms joined by `+`; all terms must appear in one clause. A term whose occurrence is
//! closely preceded by a negation ("no", "sin") does not count there.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// How many words before a term are searched for a negation.
const NEGATION_WINDOW: usize = 3;

/// A message split into normalised words, each tagged with its clause number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    words: Vec<String>,
    clause: Vec<u16>,
}

impl Words {
    /// Splits `text` into words; `breaks` are words that start a new clause (already normalised).
    pub fn new(text: &str, breaks: &[String]) -> Words {
        let mut words = Vec::new();
        let mut clause = Vec::new();
        let mut current = String::new();
        let mut n: u16 = 0;
        let mut flush = |current: &mut String, n: &mut u16, words: &mut Vec<String>| {
            if current.is_empty() {
                return;
            }
            if breaks.iter().any(|b| b == current) {
                *n = n.saturating_add(1);
            }
            words.push(std::mem::take(current));
            clause.push(*n);
        };
        for c in text.nfd() {
            if is_combining_mark(c) {
                continue;
            }
            if c.is_alphanumeric() {
                current.extend(c.to_lowercase());
            } else {
                flush(&mut current, &mut n, &mut words);
                if matches!(
                    c,
                    '.' | ',' | ';' | ':' | '!' | '?' | '\n' | '¡' | '¿' | '(' | ')'
                ) {
                    n = n.saturating_add(1);
                }
            }
        }
        flush(&mut current, &mut n, &mut words);
        Words { words, clause }
    }

    pub fn as_slice(&self) -> &[String] {
        &self.words
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The words joined by single spaces: the canonical form used for whole-text comparisons.
    pub fn joined(&self) -> String {
        self.words.join(" ")
    }
}

/// Normalises a phrase the way [`Words`] does and joins it with single spaces.
pub fn normalize(text: &str) -> String {
    Words::new(text, &[]).joined()
}

/// One word of a term: exact, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WordPattern {
    text: String,
    prefix: bool,
}

impl WordPattern {
    fn matches(&self, word: &str) -> bool {
        if self.prefix {
            word.starts_with(&self.text)
        } else {
            word == self.text
        }
    }
}

/// A compiled `match` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    terms: Vec<Vec<WordPattern>>,
}

/// Where a pattern matched, as a range of word indices (for preferring longer matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// True when `self` covers `other` and is strictly longer.
    pub fn strictly_contains(&self, other: &Span) -> bool {
        self.start <= other.start
            && other.end <= self.end
            && (self.end - self.start) > (other.end - other.start)
    }
}

impl Pattern {
    /// Compiles `a b* + c`; returns a message when the pattern is malformed.
    pub fn parse(source: &str) -> Result<Pattern, String> {
        let mut terms = Vec::new();
        for raw_term in source.split('+') {
            let mut term = Vec::new();
            for raw_word in raw_term.split_whitespace() {
                let (body, prefix) = match raw_word.strip_suffix('*') {
                    Some(body) => (body, true),
                    None => (raw_word, false),
                };
                let words = Words::new(body, &[]);
                if body.contains('*') {
                    return Err(format!(
                        "pattern {source:?}: `*` may only end a word (in {raw_word:?})"
                    ));
                }
                let n = words.words.len();
                if n == 0 {
                    return Err(format!(
                        "pattern {source:?}: {raw_word:?} has no letters or digits"
                    ));
                }
                // "can't" normalises to two words: keep both, the star applies to the last.
                for (i, w) in words.words.into_iter().enumerate() {
                    term.push(WordPattern {
                        text: w,
                        prefix: prefix && i + 1 == n,
                    });
                }
            }
            if term.is_empty() {
                return Err(format!("pattern {source:?} has an empty term around `+`"));
            }
            terms.push(term);
        }
        Ok(Pattern { terms })
    }

    /// Finds the pattern in `words`, ignoring occurrences negated by one of `negations`.
    pub fn find(&self, words: &Words, negations: &[String]) -> Option<Span> {
        let w = &words.words;
        // Occurrences of each term: (start, end, clause).
        let occurrences: Vec<Vec<(usize, usize, u16)>> = self
            .terms
            .iter()
            .map(|term| {
                (0..w.len())
                    .filter(|&i| {
                        i + term.len() <= w.len()
                            && term.iter().zip(&w[i..]).all(|(p, word)| p.matches(word))
                            && words.clause[i] == words.clause[i + term.len() - 1]
                    })
                    .map(|i| (i, i + term.len(), words.clause[i]))
                    .collect()
            })
            .collect();
        let clauses = occurrences.first()?.iter().map(|o| o.2);
        'clause: for clause in clauses {
            let mut span: Option<Span> = None;
            let mut chosen = Vec::with_capacity(self.terms.len());
            for occ in &occurrences {
                match occ.iter().find(|o| o.2 == clause) {
                    Some(o) => chosen.push(*o),
                    None => continue 'clause,
                }
            }
            for (k, &(start, end, _)) in chosen.iter().enumerate() {
                let covered = |i: usize| {
                    chosen
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != k && (o.0..o.1).contains(&i))
                };
                let negated = (start.saturating_sub(NEGATION_WINDOW)..start)
                    .any(|i| words.clause[i] == clause && !covered(i) && negations.contains(&w[i]));
                if negated {
                    continue 'clause;
                }
                span = Some(match span {
                    None => Span { start, end },
                    Some(s) => Span {
                        start: s.start.min(start),
                        end: s.end.max(end),
                    },
                });
            }
            return span;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negs() -> Vec<String> {
        ["no", "not", "never", "without", "sin", "nunca"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn breaks() -> Vec<String> {
        vec!["but".into(), "pero".into()]
    }

    fn finds(pattern: &str, text: &str) -> bool {
        Pattern::parse(pattern)
            .unwrap()
            .find(&Words::new(text, &breaks()), &negs())
            .is_some()
    }

    #[test]
    fn normalisation_drops_case_accents_and_punctuation() {
        assert_eq!(
            normalize("  Sí, ¡ME DUELE la Espalda!  "),
            "si me duele la espalda"
        );
        assert_eq!(normalize("can't"), "can t");
    }

    #[test]
    fn terms_joined_by_plus_must_share_a_clause() {
        assert!(finds("numb* + groin", "my groin feels numb"));
        assert!(finds("numb* + groin", "numbness in the groin"));
        assert!(!finds("numb* + groin", "my groin hurts. my foot is numb"));
        assert!(!finds("numb* + groin", "groin strain but numb toes"));
    }

    #[test]
    fn a_nearby_negation_cancels_a_term() {
        assert!(!finds("bladder", "no bladder problems"));
        assert!(!finds("bladder", "I have no issue with bladder"));
        assert!(finds("bladder", "I can't control my bladder"));
        assert!(!finds("numb* + groin", "not numb in the groin"));
    }

    #[test]
    fn words_of_the_pattern_itself_are_not_negations() {
        assert!(finds("no siento + entrepierna", "No siento la entrepierna"));
        assert!(finds(
            "no puedo controlar + vejiga",
            "no puedo controlar la vejiga"
        ));
    }

    #[test]
    fn prefix_words_and_multi_word_terms_match() {
        assert!(finds("lower back", "my lower back aches"));
        assert!(!finds("lower back", "my back is lower"));
        assert!(finds("deadlift*", "after deadlifts"));
    }

    #[test]
    fn malformed_patterns_are_reported() {
        assert!(Pattern::parse("a + ").is_err());
        assert!(Pattern::parse("a*b").is_err());
        assert!(Pattern::parse("¿?").is_err());
    }

    #[test]
    fn longer_spans_contain_shorter_ones() {
        let long = Span { start: 1, end: 3 };
        let short = Span { start: 2, end: 3 };
        assert!(long.strictly_contains(&short));
        assert!(!short.strictly_contains(&long));
        assert!(!long.strictly_contains(&long));
    }
}
