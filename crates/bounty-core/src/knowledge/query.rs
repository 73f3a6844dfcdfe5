//! A keyword search as words, never as syntax: the user's query is cut
//! into its runs of letters and digits, lower-cased, so nothing in it
//! (quotes, `NEAR`, `*`, `-`, `:`, parentheses) can reach a full-text
//! engine as an operator. The store quotes each word for its engine and
//! ORs them; the engine's ranking puts chunks holding more of them first.

use super::{KnowledgeError, Problem};

/// The most characters a query may have.
pub const MAX_QUERY_CHARS: usize = 500;
/// The most words a query keeps (the rest are ignored).
pub const MAX_QUERY_TERMS: usize = 32;
/// The most characters one word keeps.
const MAX_TERM_CHARS: usize = 64;

/// The words of a keyword search, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    /// The words of `q`, the field named `field` in errors.
    pub fn parse(field: &str, q: &str) -> Result<SearchQuery, KnowledgeError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(KnowledgeError::new(field, Problem::QueryTooLong(MAX_QUERY_CHARS)));
        }
        let mut terms: Vec<String> = Vec::new();
        for word in q.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            let term: String = word
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .take(MAX_TERM_CHARS)
                .collect();
            if term.is_empty() {
                continue;
            }
            if !terms.contains(&term) {
                terms.push(term);
            }
            if terms.len() == MAX_QUERY_TERMS {
                break;
            }
        }
        if terms.is_empty() {
            return Err(KnowledgeError::new(field, Problem::NoSearchTerms));
        }
        Ok(SearchQuery { terms })
    }

    /// The words, lower case, each only letters and digits, no repeats.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_is_dropped_and_words_kept() {
        let q = SearchQuery::parse("q", "\"Refund\" NEAR(policy*, -5) OR col:x 'é' refund").unwrap();
        assert_eq!(
            q.terms(),
            ["refund", "near", "policy", "5", "or", "col", "x", "é"]
        );
        assert_eq!(
            SearchQuery::parse("q", " \"*-:()^ ").unwrap_err(),
            KnowledgeError::new("q", Problem::NoSearchTerms)
        );
        assert_eq!(
            SearchQuery::parse("q", &"a".repeat(501)).unwrap_err().problem,
            Problem::QueryTooLong(500)
        );
        let many = (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(
            SearchQuery::parse("q", &many).unwrap().terms().len(),
            MAX_QUERY_TERMS
        );
    }
}
