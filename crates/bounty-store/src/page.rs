//! One page of a cursor-paginated list.

/// Items newest first, and where to continue.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The id to pass as the cursor for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row, when
    /// present, only proves there is a next page and is dropped.
    pub(crate) fn from_overfetch(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(id_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
