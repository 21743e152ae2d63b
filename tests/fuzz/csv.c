/* csv — the streaming CSV reader of CSV runs (core/csv.c), fed the bytes of
 * an uploaded file.
 *
 * Input: the file itself (seeds: small CSVs with quotes, CRLF, a BOM,
 * UTF-8, malformed rows).  Each input is read with two sets of limits: roomy
 * ones (no row too long, up to 8 fields) and tiny ones derived from a hash
 * of the input (rows of 1..24 bytes, 1..3 fields), so the TOO_LONG and
 * too-many-fields paths run on every input.
 * Properties:
 *   - fed whole and fed in chunks of sizes derived from the input (1 byte
 *     up), the reader gives identical rows: fields, lines, offsets, problems;
 *   - the rows tile the input: the first starts at 0 (3 after a BOM), each
 *     at the previous one's next_offset, offsets strictly increase and the
 *     last row ends exactly at the input's end; a row starts on the line the
 *     previous one gave as next_line, and lines never decrease;
 *   - a row's line and next_line are 1 + the line ends (LF, CRLF, lone CR)
 *     before its offset and next_offset, counted here independently;
 *   - 1 <= nfields <= max_fields + 1, and the stored bytes fit max_row_bytes;
 *   - an OK row's fields are valid UTF-8 (by util/utf8.c's own reading)
 *     without NUL: lens[i] == strlen(fields[i]);
 *   - an OK row re-encoded (every field quoted, quotes doubled; LF, CRLF or
 *     no line end) reads back as exactly one OK row with the same fields;
 *   - resuming from a row's next_offset/next_line (the input from there, in
 *     a new reader) gives exactly the rows that followed it.
 */
#include "fuzz.h"
#include "core/csv.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Everything a run saw, serialised, so two runs compare with memcmp. */
typedef struct trace {
    uint8_t *b;
    size_t n, cap;
    size_t *row_at;            /* where each row's record starts in b */
    size_t rows, rows_cap;
    /* what the next row must look like */
    uint64_t expect_offset, expect_line, input_end;
    const uint64_t *line_at;   /* line_at[o]: the physical line of offset o */
    size_t max_row;
    int max_fields;
    bool reencode;
} trace;

static void put(trace *t, const void *p, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->b = realloc(t->b, t->cap);
        FUZZ_CHECK(t->b != NULL);
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static bool valid_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_seq_len(p);
        if (!k) return false;
        p += k;
    }
    return true;
}

typedef struct echo {
    const csv_row *want;
    int rows;
} echo;

static bool echo_row(void *ctx, const csv_row *row)
{
    echo *e = ctx;
    e->rows++;
    FUZZ_CHECK(e->rows == 1);
    FUZZ_CHECK(row->problem == CSV_OK);
    FUZZ_CHECK(row->nfields == e->want->nfields);
    for (int i = 0; i < row->nfields; i++)
        FUZZ_CHECK(row->lens[i] == e->want->lens[i] &&
                   memcmp(row->fields[i], e->want->fields[i], row->lens[i]) == 0);
    return true;
}

/* The row written back as a writer would, read again. */
static void check_reencode(const csv_row *row, uint64_t seq)
{
    size_t cap = 4;
    for (int i = 0; i < row->nfields; i++) cap += 2 * row->lens[i] + 3;
    char *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    size_t n = 0;
    for (int i = 0; i < row->nfields; i++) {
        if (i) out[n++] = ',';
        out[n++] = '"';
        for (size_t j = 0; j < row->lens[i]; j++) {
            if (row->fields[i][j] == '"') out[n++] = '"';
            out[n++] = row->fields[i][j];
        }
        out[n++] = '"';
    }
    if (seq % 3 == 1) out[n++] = '\n';
    else if (seq % 3 == 2) out[n++] = '\r', out[n++] = '\n';
    echo e = {row, 0};
    csv_reader *r = csv_reader_new(n, row->nfields, 0, 1, echo_row, &e);
    FUZZ_CHECK(r != NULL);
    FUZZ_CHECK(csv_reader_feed(r, out, n));
    FUZZ_CHECK(csv_reader_finish(r));
    FUZZ_CHECK(e.rows == 1);
    csv_reader_free(r);
    free(out);
}

static bool record(void *ctx, const csv_row *row)
{
    trace *t = ctx;
    FUZZ_CHECK(row->offset == t->expect_offset);
    FUZZ_CHECK(row->next_offset > row->offset && row->next_offset <= t->input_end);
    FUZZ_CHECK(row->line == t->expect_line && row->next_line >= row->line);
    FUZZ_CHECK(row->line == t->line_at[row->offset] && row->next_line == t->line_at[row->next_offset]);
    FUZZ_CHECK(row->nfields >= 1 && row->nfields <= t->max_fields + 1);
    size_t stored = 0;
    for (int i = 0; i < row->nfields; i++) {
        FUZZ_CHECK(row->fields[i][row->lens[i]] == '\0');
        stored += row->lens[i];
    }
    FUZZ_CHECK(stored <= t->max_row);
    if (row->problem == CSV_OK) {
        for (int i = 0; i < row->nfields; i++) {
            FUZZ_CHECK(strlen(row->fields[i]) == row->lens[i]);
            FUZZ_CHECK(valid_utf8(row->fields[i]));
        }
        if (t->reencode && row->nfields <= t->max_fields) check_reencode(row, t->rows);
    }
    t->expect_offset = row->next_offset;
    t->expect_line = row->next_line;

    if (t->rows == t->rows_cap) {
        t->rows_cap = t->rows_cap ? t->rows_cap * 2 : 64;
        t->row_at = realloc(t->row_at, t->rows_cap * sizeof *t->row_at);
        FUZZ_CHECK(t->row_at != NULL);
    }
    t->row_at[t->rows++] = t->n;
    uint64_t head[6] = {(uint64_t)row->problem, (uint64_t)row->nfields, row->line,
                        row->offset, row->next_offset, row->next_line};
    put(t, head, sizeof head);
    for (int i = 0; i < row->nfields; i++) {
        put(t, &row->lens[i], sizeof row->lens[i]);
        put(t, row->fields[i], row->lens[i]);
    }
    return true;
}

static bool same(const uint8_t *a, const uint8_t *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;   /* an empty trace has no buffer */
}

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* One reading of data[from..size) as the whole input's bytes from `from`;
 * chunk_seed 0: in one piece. */
static trace run(const uint8_t *data, size_t size, const uint64_t *line_at, size_t from,
                 uint64_t line, size_t max_row, int max_fields, uint64_t chunk_seed, bool reencode)
{
    trace t = {.expect_offset = from, .expect_line = line, .input_end = size, .line_at = line_at,
               .max_row = max_row, .max_fields = max_fields, .reencode = reencode};
    if (from == 0 && size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) t.expect_offset = 3;
    csv_reader *r = csv_reader_new(max_row, max_fields, from, line, record, &t);
    FUZZ_CHECK(r != NULL);
    size_t i = from;
    uint64_t s = chunk_seed;
    while (i < size) {
        size_t n = size - i;
        if (chunk_seed) {
            uint64_t x = rng_next(&s);
            size_t want = x % 8 == 0 ? 1 + (size_t)(x >> 8) % 257 : 1 + (size_t)(x >> 8) % 5;
            if (want < n) n = want;
        }
        FUZZ_CHECK(csv_reader_feed(r, data + i, n));
        i += n;
    }
    if (chunk_seed && s % 2) FUZZ_CHECK(csv_reader_feed(r, data, 0));
    FUZZ_CHECK(csv_reader_finish(r));
    csv_reader_free(r);
    FUZZ_CHECK(t.expect_offset == size);   /* the last row ends where the input does */
    return t;
}

static void trace_free(trace *t)
{
    free(t->b);
    free(t->row_at);
}

static void check_limits(const uint8_t *data, size_t size, const uint64_t *line_at,
                         size_t max_row, int max_fields, uint64_t h)
{
    trace whole = run(data, size, line_at, 0, 1, max_row, max_fields, 0, max_row > size);
    trace chunked = run(data, size, line_at, 0, 1, max_row, max_fields, h | 1, false);
    FUZZ_CHECK(whole.n == chunked.n && same(whole.b, chunked.b, whole.n));
    if (whole.rows) {
        size_t k = (size_t)(h >> 32) % whole.rows;   /* resume after row k */
        uint64_t head[6];
        memcpy(head, whole.b + whole.row_at[k], sizeof head);
        trace rest = run(data, size, line_at, head[4], head[5], max_row, max_fields, h ^ 0x5A5A,
                         false);
        size_t tail = k + 1 < whole.rows ? whole.row_at[k + 1] : whole.n;
        FUZZ_CHECK(rest.n == whole.n - tail && same(rest.b, whole.b + tail, rest.n));
        trace_free(&rest);
    }
    trace_free(&whole);
    trace_free(&chunked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603u;   /* FNV-1a of the input */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211u;
    uint64_t *line_at = malloc((size + 1) * sizeof *line_at);
    FUZZ_CHECK(line_at != NULL);
    line_at[0] = 1;
    for (size_t i = 0; i < size; i++) {
        bool crlf_lf = data[i] == '\n' && i > 0 && data[i - 1] == '\r';
        line_at[i + 1] = line_at[i] + ((data[i] == '\r' || data[i] == '\n') && !crlf_lf);
    }
    check_limits(data, size, line_at, 1 << 16, 8, h);
    check_limits(data, size, line_at, 1 + (size_t)(h % 24), 1 + (int)((h >> 8) % 3), h >> 16);
    free(line_at);
    return 0;
}
