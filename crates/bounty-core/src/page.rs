//! Cursor pagination parameters.
//!
//! Lists are ordered newest first by id (ids sort by creation time), and a
//! page ends with the id to continue after. A cursor is therefore stable
//! under inserts: new rows appear on page one, never shift later pages.

/// How many items one page may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

/// A limit outside `1..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and {max}", max = PageLimit::MAX)]
pub struct PageLimitError;

impl PageLimit {
    /// The largest page.
    pub const MAX: u32 = 100;
    /// The page size when none is asked for.
    pub const DEFAULT: PageLimit = PageLimit(20);

    /// A limit in `1..=MAX`.
    pub fn new(n: u32) -> Result<Self, PageLimitError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(PageLimit(n))
        } else {
            Err(PageLimitError)
        }
    }

    /// The limit.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(PageLimit::new(0).is_err());
        assert_eq!(PageLimit::new(1).unwrap().get(), 1);
        assert_eq!(PageLimit::new(100).unwrap().get(), 100);
        assert!(PageLimit::new(101).is_err());
        assert_eq!(PageLimit::default().get(), 20);
    }
}
