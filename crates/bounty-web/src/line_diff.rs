//! A line diff: which lines of the old text were removed, which of the
//! new were added, and which both share, in reading order.
//!
//! The diff is a longest common subsequence over whole lines, computed
//! after the common head and tail are set aside, so the table covers only
//! the part that changed. That part is bounded ([`MAX_CELLS`]): past it,
//! the changed part is shown as all removed, then all added, which is
//! still a true diff, only not the shortest. Nothing here can panic or
//! grow without bound on what a policy holds.

/// Largest LCS table, in cells (4 bytes each): 16 MiB at most.
const MAX_CELLS: usize = 4 << 20;

/// What happened to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// In both texts.
    Same,
    /// Only in the old text.
    Removed,
    /// Only in the new text.
    Added,
}

impl Change {
    /// The word a screen reader says, and a CSS class.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Same => "unchanged",
            Change::Removed => "removed",
            Change::Added => "added",
        }
    }

    /// The visible marker in front of the line.
    pub(crate) fn marker(self) -> &'static str {
        match self {
            Change::Same => " ",
            Change::Removed => "−",
            Change::Added => "+",
        }
    }
}

/// One line of the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiffLine {
    pub(crate) change: Change,
    pub(crate) text: String,
}

impl DiffLine {
    fn new(change: Change, text: &str) -> DiffLine {
        DiffLine {
            change,
            text: text.to_owned(),
        }
    }
}

/// `old` against `new`: every line of both, once, in reading order; in a
/// changed stretch the removed lines come before the added ones.
pub(crate) fn diff(old: &[String], new: &[String]) -> Vec<DiffLine> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut out: Vec<DiffLine> = old[..head]
        .iter()
        .map(|l| DiffLine::new(Change::Same, l))
        .collect();
    middle(a, b, &mut out);
    out.extend(
        old[old.len() - tail..]
            .iter()
            .map(|l| DiffLine::new(Change::Same, l)),
    );
    out
}

/// The changed middle: an LCS table when it fits, else all removed then
/// all added.
fn middle(a: &[String], b: &[String], out: &mut Vec<DiffLine>) {
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_CELLS {
        out.extend(a.iter().map(|l| DiffLine::new(Change::Removed, l)));
        out.extend(b.iter().map(|l| DiffLine::new(Change::Added, l)));
        return;
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let width = m + 1;
    let mut lcs = vec![0_u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut added: Vec<DiffLine> = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.append(&mut added);
            out.push(DiffLine::new(Change::Same, &a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i * width + j + 1] > lcs[(i + 1) * width + j]) {
            added.push(DiffLine::new(Change::Added, &b[j]));
            j += 1;
        } else {
            out.push(DiffLine::new(Change::Removed, &a[i]));
            i += 1;
        }
    }
    out.append(&mut added);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    fn shown(d: &[DiffLine]) -> Vec<String> {
        d.iter()
            .map(|l| format!("{}{}", l.change.marker(), l.text))
            .collect()
    }

    #[test]
    fn a_changed_line_is_removed_then_added() {
        let old = texts(&["Mode: all", "Window: 24 hours", "CSAT: 4"]);
        let new = texts(&["Mode: all", "Window: 48 hours", "CSAT: 4"]);
        assert_eq!(
            shown(&diff(&old, &new)),
            [" Mode: all", "−Window: 24 hours", "+Window: 48 hours", " CSAT: 4"]
        );
    }

    #[test]
    fn insertions_and_deletions_keep_the_common_lines() {
        let old = texts(&["a", "b", "c", "d"]);
        let new = texts(&["a", "c", "x", "d", "e"]);
        assert_eq!(shown(&diff(&old, &new)), [" a", "−b", " c", "+x", " d", "+e"]);
        assert_eq!(shown(&diff(&[], &texts(&["a"]))), ["+a"]);
        assert_eq!(shown(&diff(&texts(&["a"]), &[])), ["−a"]);
        assert!(diff(&[], &[]).is_empty());
        let same = texts(&["a", "b"]);
        assert!(diff(&same, &same).iter().all(|l| l.change == Change::Same));
    }

    /// Every text of up to four lines over `a` and `b`.
    fn all_texts() -> Vec<Vec<String>> {
        let mut all = vec![vec![]];
        for len in 1..=4 {
            for bits in 0..(1 << len) {
                all.push(
                    (0..len)
                        .map(|k| if bits >> k & 1 == 1 { "a" } else { "b" }.to_owned())
                        .collect(),
                );
            }
        }
        all
    }

    /// For every pair of small texts, the diff shows every old line
    /// (unchanged or removed) and every new line (unchanged or added), in
    /// order, and keeps as many lines unchanged as a longest common
    /// subsequence has.
    #[test]
    fn the_diff_rebuilds_both_texts_and_keeps_the_most_lines() {
        let all = all_texts();
        for old in &all {
            for new in &all {
                let d = diff(old, new);
                let side = |skip: Change| -> Vec<String> {
                    d.iter()
                        .filter(|l| l.change != skip)
                        .map(|l| l.text.clone())
                        .collect()
                };
                assert_eq!(&side(Change::Added), old);
                assert_eq!(&side(Change::Removed), new);
                let kept = d.iter().filter(|l| l.change == Change::Same).count();
                assert_eq!(kept, lcs_len(old, new), "{old:?} → {new:?}");
            }
        }
    }

    fn lcs_len(a: &[String], b: &[String]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                t[i][j] = if a[i] == b[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        t[0][0]
    }
}
