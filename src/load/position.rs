//! Offsets in a rule's query text -> offsets in the rule file.
//!
//! A query read from YAML or JSON is not a slice of the file: indentation is stripped,
//! line breaks are normalized, escapes are decoded. The map records, for each run of
//! query bytes that was copied from the file unchanged, where that run starts in the
//! file. Bytes that an escape or a line fold produced map to the first byte of what
//! produced them.

/// Query bytes `query_start..query_start + len` and their source in the file,
/// `file_start..file_start + file_len`. A copied run has `file_len == len` and maps
/// linearly; a produced byte (`len == 1`) maps to `file_start`, and its source is the
/// whole escape or line break (`file_len` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    query_start: usize,
    file_start: usize,
    len: usize,
    file_len: usize,
}

impl Segment {
    fn file_end(&self) -> usize {
        self.file_start + self.file_len
    }
}

/// Maps a byte offset in the query text to a byte offset in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMap {
    /// Sorted by `query_start` and contiguous in the query; empty for an empty query
    /// and for an approximate map.
    segments: Vec<Segment>,
    /// Where every offset maps when there are no segments: the approximate place, or
    /// the start of an empty query.
    anchor: usize,
    approximate: bool,
}

impl QueryMap {
    /// The query is the whole file (a `.kql` file): offsets are unchanged.
    pub fn identity(len: usize) -> QueryMap {
        let mut builder = QueryMapBuilder::new(0);
        builder.push_segment(Segment {
            query_start: 0,
            file_start: 0,
            len,
            file_len: len,
        });
        builder.finish()
    }

    /// The query's layout in the file is unknown: every offset maps to `file_offset`
    /// (for example the start of the `query:` key).
    pub fn approximate(file_offset: usize) -> QueryMap {
        QueryMap {
            segments: Vec::new(),
            anchor: file_offset,
            approximate: true,
        }
    }

    /// True when the map is [`QueryMap::approximate`]: offsets are not exact.
    pub fn is_approximate(&self) -> bool {
        self.approximate
    }

    /// The file offset of query byte `query_offset`. Offsets past the end of the query
    /// map to the end of the query's last piece in the file (after a closing escape,
    /// not inside it).
    pub fn to_file(&self, query_offset: usize) -> usize {
        let Some(segment) = self.segment_at(query_offset) else {
            return self.anchor;
        };
        let inside = query_offset - segment.query_start;
        if inside >= segment.len {
            // Past the end of the query (segments leave no gaps).
            segment.file_end()
        } else if segment.file_len == segment.len {
            segment.file_start + inside
        } else {
            segment.file_start
        }
    }

    /// A query byte range as a file byte range. The end is the end of the source of the
    /// range's last byte: a whole escape, but not the indentation after a line break.
    pub fn to_file_span(&self, start: usize, end: usize) -> (usize, usize) {
        let file_start = self.to_file(start);
        if end <= start {
            return (file_start, file_start);
        }
        let last = end - 1;
        let file_end = match self.segment_at(last) {
            Some(s) if last >= s.query_start + s.len => s.file_end(),
            Some(s) if s.file_len == s.len => s.file_start + (last - s.query_start) + 1,
            Some(s) => s.file_end(),
            None => self.anchor,
        };
        (file_start, file_end.max(file_start))
    }

    /// The runs of the map as `(query_start, file_start, len)`, in query order.
    pub fn segments(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.segments
            .iter()
            .map(|s| (s.query_start, s.file_start, s.len))
    }

    /// The last segment starting at or before `query_offset`.
    fn segment_at(&self, query_offset: usize) -> Option<&Segment> {
        let index = self
            .segments
            .partition_point(|s| s.query_start <= query_offset);
        self.segments.get(index.checked_sub(1)?)
    }
}

/// Builds a [`QueryMap`] and the text it maps at the same time, so the loaders can
/// compare that text with what the YAML/JSON library decoded.
#[derive(Debug)]
pub(super) struct QueryMapBuilder {
    text: String,
    segments: Vec<Segment>,
    /// File offset of the value's start, used when the query turns out empty.
    start: usize,
}

impl QueryMapBuilder {
    pub(super) fn new(file_start: usize) -> QueryMapBuilder {
        QueryMapBuilder {
            text: String::new(),
            segments: Vec::new(),
            start: file_start,
        }
    }

    /// Appends `file[start..end]` unchanged. Nothing is added when the range is not on
    /// char boundaries; the text then differs from the library's and the caller falls
    /// back to an approximate map.
    pub(super) fn copy(&mut self, file: &str, start: usize, end: usize) {
        let Some(piece) = file.get(start..end) else {
            return;
        };
        let query_start = self.text.len();
        self.text.push_str(piece);
        self.push_segment(Segment {
            query_start,
            file_start: start,
            len: piece.len(),
            file_len: piece.len(),
        });
    }

    /// Appends `ch`, produced by the `source_len` file bytes at `file_at` (an escape, a
    /// line break, a folded line). Every byte of its UTF-8 form maps to `file_at`.
    pub(super) fn produce(&mut self, ch: char, file_at: usize, source_len: usize) {
        let query_start = self.text.len();
        self.text.push(ch);
        for i in 0..ch.len_utf8() {
            self.push_segment(Segment {
                query_start: query_start + i,
                file_start: file_at,
                len: 1,
                file_len: source_len,
            });
        }
    }

    /// The text built so far.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn finish(self) -> QueryMap {
        QueryMap {
            segments: self.segments,
            anchor: self.start,
            approximate: false,
        }
    }

    fn push_segment(&mut self, segment: Segment) {
        if segment.len == 0 {
            return;
        }
        if let Some(last) = self.segments.last_mut() {
            // Merge copied runs that continue each other in both texts (a line's text
            // followed by its `\n` break, read as itself).
            let linear = last.len == last.file_len && segment.len == segment.file_len;
            if linear
                && last.query_start + last.len == segment.query_start
                && last.file_end() == segment.file_start
            {
                last.len += segment.len;
                last.file_len += segment.len;
                return;
            }
        }
        self.segments.push(segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_maps_offsets_to_themselves() {
        let map = QueryMap::identity(10);
        assert_eq!(map.to_file(0), 0);
        assert_eq!(map.to_file(9), 9);
        assert_eq!(map.to_file(10), 10);
        assert_eq!(map.to_file(500), 10);
        assert!(!map.is_approximate());
        assert_eq!(map.segments().count(), 1);
    }

    #[test]
    fn empty_identity_maps_to_start() {
        let map = QueryMap::identity(0);
        assert_eq!(map.to_file(0), 0);
        assert_eq!(map.to_file(3), 0);
    }

    #[test]
    fn approximate_maps_everything_to_one_place() {
        let map = QueryMap::approximate(42);
        assert!(map.is_approximate());
        assert_eq!(map.to_file(0), 42);
        assert_eq!(map.to_file(1000), 42);
    }

    #[test]
    fn segments_map_linearly_and_produced_bytes_to_their_source() {
        // file: `q: "ab\ncd"` with a JSON-like escape at offset 6..8.
        let file = "q: \"ab\\ncd\"";
        let mut b = QueryMapBuilder::new(4);
        b.copy(file, 4, 6);
        b.produce('\n', 6, 2);
        b.copy(file, 8, 10);
        assert_eq!(b.text(), "ab\ncd");
        let map = b.finish();
        assert_eq!(map.to_file(0), 4);
        assert_eq!(map.to_file(1), 5);
        assert_eq!(map.to_file(2), 6);
        assert_eq!(map.to_file(3), 8);
        assert_eq!(map.to_file(4), 9);
        assert_eq!(map.to_file(5), 10);
        assert_eq!(map.to_file(99), 10);
        assert_eq!(map.to_file_span(3, 5), (8, 10));
        // A range ending with a produced byte covers the whole escape.
        assert_eq!(map.to_file_span(1, 3), (5, 8));
        assert_eq!(map.to_file_span(0, 0), (4, 4));
    }

    #[test]
    fn multibyte_produced_char_maps_every_byte_to_the_escape() {
        let mut b = QueryMapBuilder::new(0);
        b.produce('é', 7, 6);
        let map = b.finish();
        assert_eq!(map.to_file(0), 7);
        assert_eq!(map.to_file(1), 7);
        // Past the end: after the whole escape.
        assert_eq!(map.to_file(2), 13);
    }

    #[test]
    fn contiguous_runs_are_merged() {
        let file = "abc\ndef";
        let mut b = QueryMapBuilder::new(0);
        b.copy(file, 0, 3);
        b.produce('\n', 3, 1);
        b.copy(file, 4, 7);
        let map = b.finish();
        assert_eq!(map.segments().collect::<Vec<_>>(), vec![(0, 0, 7)]);
    }
}
