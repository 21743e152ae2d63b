/* csv.c — see csv.h for the grammar and the contract.
 *
 * One byte at a time through a five-state machine, so a chunk may end
 * anywhere (mid-CRLF, between the two quotes of `""`, mid-UTF-8 sequence)
 * and the next one picks up exactly there.  The only lookahead is one byte
 * after a CR outside quotes (LF or not decides where the row ends: its
 * next_offset), and up to three bytes at offset 0 for a BOM; both are
 * state, not buffered input.
 *
 * The row buffer holds the current row's stored fields back to back, each
 * followed by a NUL.  Invariant: a stored content byte was counted in
 * row_bytes before it was stored, and storing stops once row_bytes passes
 * max_row, so at most max_row content bytes plus one NUL per stored field
 * (at most max_fields + 1 of them) are ever in it: cap is exactly that.
 */
#include "core/csv.h"

#include <stdlib.h>

enum {
    FIELD_START,   /* at the start of a field: a `"` opens a quoted one */
    UNQUOTED,      /* inside an unquoted field */
    QUOTED,        /* inside a quoted field */
    QUOTE_SEEN,    /* a `"` inside a quoted field: `""`, or its end */
    AFTER_CR       /* the row ended with a CR: an LF right after is part of its end */
};

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

struct csv_reader {
    csv_row_fn fn;
    void *ctx;
    size_t max_row;
    int max_fields;

    char *buf;                 /* max_row + max_fields + 1 bytes */
    size_t len;
    size_t *fstart, *flens;    /* max_fields + 1 each */
    const char **ptrs;         /* max_fields + 1 */
    int nstored;               /* stored fields, the open one included */
    bool storing;              /* the current field is being stored */

    int state;
    bool row_open;             /* a byte of the current row was read */
    size_t row_bytes;          /* counted up to max_row + 1, then overflow */
    bool overflow;
    csv_problem problem;
    uint64_t row_line, row_offset;

    uint64_t off;              /* offset of the next byte in the whole input */
    uint64_t line;             /* physical line of the next byte */
    bool prev_cr;              /* the last byte was a CR: an LF now ends no new line */

    unsigned char u_need;      /* UTF-8 continuation bytes still expected */
    unsigned char u_lo, u_hi;  /* the range the next one must be in */

    bool bom_check;            /* at offset 0, no byte past a BOM prefix read yet */
    unsigned char bom_seen;    /* bytes of the BOM matched so far */
    bool stopped, finished;
};

const char *csv_problem_name(csv_problem p)
{
    switch (p) {
    case CSV_OK: return "ok";
    case CSV_UNTERMINATED: return "unterminated_quote";
    case CSV_STRAY_QUOTE: return "stray_quote";
    case CSV_TOO_LONG: return "row_too_long";
    case CSV_NOT_UTF8: return "not_utf8";
    }
    return "unknown";
}

csv_reader *csv_reader_new(size_t max_row_bytes, int max_fields, uint64_t start_offset,
                           uint64_t start_line, csv_row_fn fn, void *ctx)
{
    if (!fn || max_row_bytes < 1 || max_fields < 1 || max_fields > 1 << 20 || start_line < 1 ||
        max_row_bytes > SIZE_MAX / 2)
        return NULL;
    csv_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    size_t nf = (size_t)max_fields + 1;
    r->buf = malloc(max_row_bytes + nf);
    r->fstart = malloc(nf * sizeof *r->fstart);
    r->flens = malloc(nf * sizeof *r->flens);
    r->ptrs = malloc(nf * sizeof *r->ptrs);
    if (!r->buf || !r->fstart || !r->flens || !r->ptrs) {
        csv_reader_free(r);
        return NULL;
    }
    r->fn = fn;
    r->ctx = ctx;
    r->max_row = max_row_bytes;
    r->max_fields = max_fields;
    r->state = FIELD_START;
    r->off = start_offset;
    r->line = start_line;
    r->bom_check = start_offset == 0;
    return r;
}

void csv_reader_free(csv_reader *r)
{
    if (!r) return;
    free(r->buf);
    free(r->fstart);
    free(r->flens);
    free(r->ptrs);
    free(r);
}

static void set_problem(csv_reader *r, csv_problem p)
{
    if (r->problem == CSV_OK) r->problem = p;
}

/* One content byte through the UTF-8 check (RFC 3629: the ranges that
 * exclude overlong forms, surrogates and code points past U+10FFFF). */
static void utf8_byte(csv_reader *r, unsigned char c)
{
    if (r->problem != CSV_OK) return;   /* the row is already reported */
    if (r->u_need) {
        if (c < r->u_lo || c > r->u_hi) {
            set_problem(r, CSV_NOT_UTF8);
            return;
        }
        r->u_need--;
        r->u_lo = 0x80, r->u_hi = 0xBF;
        return;
    }
    r->u_lo = 0x80, r->u_hi = 0xBF;
    if (c >= 0x01 && c <= 0x7F) return;
    if (c >= 0xC2 && c <= 0xDF) r->u_need = 1;
    else if (c == 0xE0) r->u_need = 2, r->u_lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEF) r->u_need = 2, r->u_hi = c == 0xED ? 0x9F : 0xBF;
    else if (c == 0xF0) r->u_need = 3, r->u_lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) r->u_need = 3;
    else if (c == 0xF4) r->u_need = 3, r->u_hi = 0x8F;
    else set_problem(r, CSV_NOT_UTF8);   /* NUL, 0x80..0xC1, 0xF5..0xFF */
}

/* Ends the stored field where it is (its end, or the row's byte limit). */
static void close_stored(csv_reader *r)
{
    if (!r->storing) return;
    r->flens[r->nstored - 1] = r->len - r->fstart[r->nstored - 1];
    r->buf[r->len++] = '\0';
    r->storing = false;
}

static void begin_field(csv_reader *r)
{
    r->u_need = 0;
    if (!r->overflow && r->nstored <= r->max_fields) {
        r->fstart[r->nstored++] = r->len;
        r->storing = true;
    }
}

static void end_field(csv_reader *r)
{
    if (r->u_need) set_problem(r, CSV_NOT_UTF8);   /* a sequence cut by the field's end */
    close_stored(r);
}

/* A byte of the row that is not its final line end. */
static void count(csv_reader *r)
{
    if (r->overflow || ++r->row_bytes <= r->max_row) return;
    r->overflow = true;
    set_problem(r, CSV_TOO_LONG);
    close_stored(r);
}

static void put(csv_reader *r, unsigned char c)
{
    utf8_byte(r, c);
    if (r->storing) r->buf[r->len++] = (char)c;
}

/* Hands the finished row (its fields ended) to the callback; its next row
 * starts at r->off. */
static bool emit(csv_reader *r)
{
    for (int i = 0; i < r->nstored; i++) r->ptrs[i] = r->buf + r->fstart[i];
    csv_row row = {
        .fields = r->ptrs,
        .lens = r->flens,
        .nfields = r->nstored,
        .line = r->row_line,
        .offset = r->row_offset,
        .next_offset = r->off,
        .next_line = r->line,
        .problem = r->problem,
    };
    bool go_on = r->fn(r->ctx, &row);
    r->state = FIELD_START;
    r->row_open = false;
    r->len = 0;
    r->nstored = 0;
    r->storing = false;
    r->row_bytes = 0;
    r->overflow = false;
    r->problem = CSV_OK;
    r->u_need = 0;
    if (!go_on) r->stopped = true;
    return go_on;
}

/* Reads one byte.  False: the callback stopped the reader. */
static bool step(csv_reader *r, unsigned char c)
{
    if (r->state == AFTER_CR) {
        if (c == '\n') {   /* CRLF: the LF is part of the row's end, on no new line */
            r->off++;
            r->prev_cr = false;
            return emit(r);
        }
        if (!emit(r)) return false;
    }
    if (!r->row_open) {
        r->row_open = true;
        r->row_line = r->line;
        r->row_offset = r->off;
        begin_field(r);
    }
    r->off++;
    if (c == '\r' || (c == '\n' && !r->prev_cr)) r->line++;
    r->prev_cr = c == '\r';

    switch (r->state) {
    case FIELD_START:
    case UNQUOTED:
    case QUOTE_SEEN:
        if (c == ',') {
            count(r);
            end_field(r);
            begin_field(r);
            r->state = FIELD_START;
        } else if (c == '\n') {
            end_field(r);
            return emit(r);
        } else if (c == '\r') {
            end_field(r);
            r->state = AFTER_CR;
        } else if (c == '"' && r->state == FIELD_START) {
            count(r);
            r->state = QUOTED;
        } else if (c == '"' && r->state == QUOTE_SEEN) {   /* `""`: one quote */
            count(r);
            put(r, c);
            r->state = QUOTED;
        } else {
            count(r);
            if (c == '"' || r->state == QUOTE_SEEN) set_problem(r, CSV_STRAY_QUOTE);
            put(r, c);
            r->state = UNQUOTED;
        }
        return true;
    case QUOTED:
        count(r);
        if (c == '"') r->state = QUOTE_SEEN;
        else put(r, c);
        return true;
    }
    return true;
}

/* The bytes of a BOM prefix that turned out to be data. */
static bool bom_replay(csv_reader *r)
{
    r->bom_check = false;
    for (unsigned i = 0; i < r->bom_seen; i++)
        if (!step(r, bom[i])) return false;
    return true;
}

bool csv_reader_feed(csv_reader *r, const void *buf, size_t n)
{
    if (r->stopped || r->finished) return false;
    const unsigned char *p = buf;
    size_t i = 0;
    while (r->bom_check && i < n) {
        if (p[i] == bom[r->bom_seen]) {
            i++;
            if (++r->bom_seen == 3) {   /* skipped: counted in offsets only */
                r->bom_check = false;
                r->off += 3;
            }
        } else if (!bom_replay(r)) {
            return false;
        }
    }
    for (; i < n; i++)
        if (!step(r, p[i])) return false;
    return true;
}

bool csv_reader_finish(csv_reader *r)
{
    if (r->stopped || r->finished) return false;
    r->finished = true;
    if (r->bom_check && !bom_replay(r)) return false;
    if (r->state == AFTER_CR) return emit(r);
    if (!r->row_open) return true;
    if (r->state == QUOTED) set_problem(r, CSV_UNTERMINATED);
    end_field(r);
    return emit(r);
}
