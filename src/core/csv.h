/* csv.h — a streaming RFC 4180 reader for CSV runs (issue #13).
 *
 * A run reads an uploaded CSV (`Full Name,e-mail` rows) from the store in
 * chunks of any size and hands each row to a callback.  The reader keeps
 * one row at a time: its memory is one buffer of max_row_bytes plus a few
 * bytes per field, allocated once by csv_reader_new, whatever the input (a
 * 1 GiB file that is one huge row included).  Feeding never allocates.
 *
 * The grammar (RFC 4180, with what real exports do):
 *   - fields are separated by `,`; a row ends with LF, CRLF or a lone CR
 *     (old Mac exports; Python's csv module reads it the same way) outside
 *     quotes, or at the end of the input (a missing final line end is fine);
 *   - a field that starts with `"` is quoted: it may hold `,`, CR, LF, and
 *     `""` for one `"`; it ends at a `"` followed by `,`, a line end or EOF;
 *   - an empty line is a row of one empty field (the caller skips it as
 *     "not two fields");
 *   - a UTF-8 BOM at offset 0 of the whole input is skipped (counted in
 *     offsets, not in the row's bytes).
 * Physical lines are counted as in Python's universal newlines: LF, CRLF
 * and a lone CR each end one, inside quotes too.
 *
 * Malformed rows are reported, never fatal, and reading goes on at the next
 * row; a row has one problem, the first one found in it:
 *   CSV_STRAY_QUOTE  a byte after a closing quote other than `,` or a line
 *                    end (kept, the field reads on unquoted), or a `"`
 *                    inside an unquoted field (kept as data: it opens
 *                    nothing, so one stray quote never swallows the lines
 *                    after it);
 *   CSV_NOT_UTF8     a field that is not valid UTF-8 (overlong forms,
 *                    surrogates, past U+10FFFF, a sequence cut by a
 *                    delimiter), or holds a NUL byte: fields are handed out
 *                    as C strings, and the caller builds JSON from them;
 *   CSV_TOO_LONG     the row's bytes (quotes and quoted line breaks
 *                    included, its final line end not) pass max_row_bytes:
 *                    what came before the limit is kept, the rest of the row
 *                    is read without being stored up to its line end outside
 *                    quotes, and the row is reported once, there;
 *   CSV_UNTERMINATED a quote still open at the end of the input: the rest of
 *                    the input is that one row.
 * So in a row with problem CSV_OK every field is valid UTF-8 without NUL and
 * lens[i] == strlen(fields[i]).
 *
 * A row with more than max_fields fields keeps its first max_fields + 1
 * (nfields == max_fields + 1 means "more than max_fields"); the others are
 * read and dropped.  That alone is not a problem: the caller checks nfields.
 *
 * Offsets and lines: every row carries where it starts and where the next
 * one starts, in the coordinates of the whole input.  A run that saved a
 * row's next_offset/next_line resumes by reading the input from that offset
 * into a reader created with them: it gets the same rows the whole input
 * would have given after that one.  The rows of an input tile it: the first
 * starts at start_offset (after a BOM), each starts at the previous one's
 * next_offset, and the last one's next_offset is where the input ended.
 * Rows and their offsets do not depend on how the input is cut into chunks.
 *
 * Not thread-safe: one reader, one thread.  The callback must not free the
 * reader or feed it.
 */
#ifndef ASSETD_CSV_H
#define ASSETD_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum csv_problem {
    CSV_OK,
    CSV_UNTERMINATED,   /* a quote open at the end of the input */
    CSV_STRAY_QUOTE,    /* bytes after a closing quote, or a quote inside an unquoted field */
    CSV_TOO_LONG,       /* the row passed max_row_bytes */
    CSV_NOT_UTF8        /* a field is not valid UTF-8, or holds a NUL */
} csv_problem;

typedef struct csv_row {
    const char *const *fields;   /* NUL-terminated copies, owned by the reader,
                                    valid during the callback only */
    const size_t *lens;          /* their byte lengths */
    int nfields;                 /* 1..max_fields+1 (fewer only when CSV_TOO_LONG cut the row) */
    uint64_t line;               /* 1-based physical line where the row starts */
    uint64_t offset;             /* byte offset of the row's first byte in the whole input */
    uint64_t next_offset;        /* byte offset just past this row (and its line end) */
    uint64_t next_line;          /* the physical line after this row (the row's last
                                    line when the input ends without a line end) */
    csv_problem problem;         /* != CSV_OK: the row is malformed; fields may be partial */
} csv_row;

/* Called once per row, in order.  Returns false to stop the reader. */
typedef bool (*csv_row_fn)(void *ctx, const csv_row *row);

typedef struct csv_reader csv_reader;

/* A reader of rows of at most max_row_bytes bytes (1 .. SIZE_MAX/2) and
 * max_fields fields (1 .. 2^20).  start_offset/start_line: where the input
 * fed begins in the whole input (0/1 for a whole file; a saved
 * next_offset/next_line to resume).  NULL on bad arguments or out of
 * memory.  Free with csv_reader_free. */
csv_reader *csv_reader_new(size_t max_row_bytes, int max_fields, uint64_t start_offset,
                           uint64_t start_line, csv_row_fn fn, void *ctx);

/* Reads n more bytes, calling fn for every row they complete.  Returns
 * false once fn has returned false (then and on every later call: the
 * reader is stopped and reads nothing more).  It never allocates. */
bool csv_reader_feed(csv_reader *r, const void *buf, size_t n);

/* The end of the input: emits the last row if one was begun (a missing
 * final line end is fine; an open quote is CSV_UNTERMINATED).  Returns false
 * if the reader was or gets stopped.  Call it once; the reader reads
 * nothing after it. */
bool csv_reader_finish(csv_reader *r);

void csv_reader_free(csv_reader *r);

/* A stable name for reports: "ok", "unterminated_quote", "stray_quote",
 * "row_too_long", "not_utf8". */
const char *csv_problem_name(csv_problem p);

#endif
