/* Unit tests for core/csv.c: the shared corpus (<repo>/../shared/corpus/csv,
 * as the e2e tests find it), fed whole and byte by byte, resuming from a
 * saved cursor, and each rule of csv.h on small inputs. */
#include "test.h"
#include "core/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "../shared/corpus/csv/"

typedef struct row {
    int nfields;
    char *fields[4];   /* the first four, copied */
    size_t lens[4];
    uint64_t line, offset, next_offset, next_line;
    csv_problem problem;
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
    size_t stop_after;   /* 0: never stop */
} rows;

static bool collect(void *ctx, const csv_row *r)
{
    rows *rs = ctx;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
    }
    row *o = &rs->v[rs->n++];
    memset(o, 0, sizeof *o);
    o->nfields = r->nfields;
    for (int i = 0; i < r->nfields && i < 4; i++) {
        o->fields[i] = malloc(r->lens[i] + 1);
        memcpy(o->fields[i], r->fields[i], r->lens[i] + 1);
        o->lens[i] = r->lens[i];
    }
    o->line = r->line, o->offset = r->offset;
    o->next_offset = r->next_offset, o->next_line = r->next_line;
    o->problem = r->problem;
    return !rs->stop_after || rs->n < rs->stop_after;
}

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        for (int f = 0; f < 4; f++) free(rs->v[i].fields[f]);
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

/* Parses data in chunks of `chunk` bytes (0: whole). */
static rows parse_at(const char *data, size_t n, size_t chunk, size_t max_row, int max_fields,
                     uint64_t start_offset, uint64_t start_line)
{
    rows rs = {0};
    csv_reader *r = csv_reader_new(max_row, max_fields, start_offset, start_line, collect, &rs);
    CHECK(r != NULL);
    if (!r) return rs;
    if (!chunk) chunk = n ? n : 1;
    for (size_t i = 0; i < n; i += chunk) CHECK(csv_reader_feed(r, data + i, n - i < chunk ? n - i : chunk));
    CHECK(csv_reader_finish(r));
    csv_reader_free(r);
    return rs;
}

static rows parse(const char *data, size_t chunk)
{
    return parse_at(data, strlen(data), chunk, 1024, 2, 0, 1);
}

static bool row_eq(const row *a, const row *b)
{
    if (a->nfields != b->nfields || a->line != b->line || a->offset != b->offset ||
        a->next_offset != b->next_offset || a->next_line != b->next_line || a->problem != b->problem)
        return false;
    for (int i = 0; i < a->nfields && i < 4; i++)
        if (a->lens[i] != b->lens[i] || memcmp(a->fields[i], b->fields[i], a->lens[i]) != 0) return false;
    return true;
}

static bool rows_eq(const rows *a, const rows *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!row_eq(&a->v[i], &b->v[i])) return false;
    return true;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "  %s: not found (the shared corpus sits beside the repository)\n", path);
        *len = 0;
        return calloc(1, 1);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    *len = fread(buf, 1, (size_t)sz, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* The corpus's 12 well-formed rows, by line, and its 6 malformed ones. */
static const struct { uint64_t line; const char *name, *mail; } good[] = {
    {1, "Ann O'Neil", "ann.oneil@example.com"},
    {3, "Doe, Jane", "jane.doe@example.com"},
    {5, "Bob \"Bobby\" Tables", "bobby@example.com"},
    {7, "Zo\xC3\xAB \xC3\x85ngstr\xC3\xB6m", "zoe@example.com"},
    {9, "Robert'); DROP TABLE people;--", "drop@example.com"},
    {11, "Ann Again", "ann.oneil@example.com"},
    {12, "", "empty.name@example.com"},
    {13, "Multi\nLine", "multi@example.com"},
    {15, "Trailing Space ", "trail@example.com"},
    {16, "Same Mail", "jane.doe@example.com"},
    {17, "Tab\tName", "tab@example.com"},
    {18, "Last Good", "last@example.com"},
};
static const struct { uint64_t line; int nfields; csv_problem problem; } bad[] = {
    {2, 1, CSV_OK}, {4, 3, CSV_OK}, {6, 1, CSV_OK}, {8, 3, CSV_OK}, {10, 3, CSV_OK},
    {19, 1, CSV_UNTERMINATED},
};

static void check_edge_cases(const rows *rs, size_t file_len)
{
    CHECK(rs->n == 18);
    size_t ngood = 0, nbad = 0;
    uint64_t at = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const row *r = &rs->v[i];
        CHECK(r->offset == at);   /* the rows tile the file */
        at = r->next_offset;
        if (r->nfields == 2 && r->problem == CSV_OK) {
            if (ngood >= 12) { ngood++; continue; }
            CHECK(r->line == good[ngood].line);
            CHECK_STR(r->fields[0], good[ngood].name);
            CHECK_STR(r->fields[1], good[ngood].mail);
            CHECK(r->lens[0] == strlen(good[ngood].name));
            ngood++;
        } else {
            if (nbad >= 6) { nbad++; continue; }
            CHECK(r->line == bad[nbad].line);
            CHECK(r->nfields == bad[nbad].nfields);
            CHECK(r->problem == bad[nbad].problem);
            nbad++;
        }
    }
    CHECK(ngood == 12 && nbad == 6);
    CHECK(at == file_len);
    if (rs->n == 18) {
        CHECK_STR(rs->v[5].fields[0], "");                 /* the empty line */
        CHECK(rs->v[12].line == 13 && rs->v[12].next_line == 15);   /* Multi\nLine */
        CHECK_STR(rs->v[17].fields[0], "unterminated,quote@example.com");
        CHECK(rs->v[17].next_line == 19);
    }
}

TEST(csv_corpus_edge_cases_whole_and_byte_by_byte)
{
    size_t len;
    char *data = slurp(CORPUS "edge_cases.csv", &len);
    rows whole = parse_at(data, len, 0, 1024, 2, 0, 1);
    check_edge_cases(&whole, len);
    rows bytes = parse_at(data, len, 1, 1024, 2, 0, 1);
    CHECK(rows_eq(&whole, &bytes));
    rows sevens = parse_at(data, len, 7, 1024, 2, 0, 1);
    CHECK(rows_eq(&whole, &sevens));
    rows_free(&whole), rows_free(&bytes), rows_free(&sevens);
    free(data);
}

TEST(csv_corpus_people)
{
    size_t len;
    char *data = slurp(CORPUS "people_11273.csv", &len);
    for (size_t chunk = 0; chunk <= 4096; chunk += 4093) {   /* whole, then 4093-byte chunks */
        rows rs = parse_at(data, len, chunk, 1024, 2, 0, 1);
        CHECK(rs.n == 11273);
        size_t ok = 0;
        for (size_t i = 0; i < rs.n; i++)
            ok += rs.v[i].nfields == 2 && rs.v[i].problem == CSV_OK && rs.v[i].line == i + 1 &&
                  strchr(rs.v[i].fields[1], '@') != NULL;
        CHECK(ok == 11273);
        CHECK(rs.n && rs.v[rs.n - 1].next_offset == len && rs.v[rs.n - 1].next_line == 11274);
        rows_free(&rs);
    }
    free(data);
}

TEST(csv_resume_from_any_row_gives_the_same_rows)
{
    size_t len;
    char *data = slurp(CORPUS "edge_cases.csv", &len);
    rows whole = parse_at(data, len, 0, 1024, 2, 0, 1);
    for (size_t k = 0; k < whole.n; k++) {
        const row *at = &whole.v[k];
        rows rest = parse_at(data + at->next_offset, len - at->next_offset, 3, 1024, 2,
                             at->next_offset, at->next_line);
        CHECK(rest.n == whole.n - k - 1);
        for (size_t i = 0; i < rest.n && k + 1 + i < whole.n; i++) CHECK(row_eq(&rest.v[i], &whole.v[k + 1 + i]));
        rows_free(&rest);
    }
    rows_free(&whole);
    free(data);
}

TEST(csv_too_long_is_reported_once_and_resynchronises)
{
    /* row 2 is 40 bytes against a limit of 16, with a quoted line break
     * past the limit: the reader must still know it is inside quotes */
    const char *in = "ab,cd\n"
                     "0123456789,abcdefghij,\"x\ny\",0123456789\n"
                     "ok,row\n";
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        rows rs = parse_at(in, strlen(in), chunk, 16, 2, 0, 1);
        CHECK(rs.n == 3);
        if (rs.n == 3) {
            CHECK(rs.v[0].problem == CSV_OK);
            CHECK(rs.v[1].problem == CSV_TOO_LONG && rs.v[1].line == 2 && rs.v[1].next_line == 4);
            CHECK(rs.v[1].nfields == 2);   /* what fitted: "0123456789" and "abcde" */
            CHECK_STR(rs.v[1].fields[0], "0123456789");
            CHECK_STR(rs.v[1].fields[1], "abcde");
            CHECK(rs.v[1].next_offset == strlen("ab,cd\n0123456789,abcdefghij,\"x\ny\",0123456789\n"));
            CHECK(rs.v[2].problem == CSV_OK && rs.v[2].line == 4);
            CHECK_STR(rs.v[2].fields[0], "ok");
        }
        rows_free(&rs);
    }
    /* exactly at the limit is fine; one byte more is not */
    rows rs = parse_at("abcd,efgh\nabcd,efghi\n", 21, 0, 9, 2, 0, 1);
    CHECK(rs.n == 2 && rs.v[0].problem == CSV_OK && rs.v[1].problem == CSV_TOO_LONG);
    rows_free(&rs);
}

TEST(csv_a_huge_row_is_read_in_bounded_memory)
{
    /* 64 MiB of one unquoted field, fed in 64 KiB chunks, against a
     * 1 KiB limit: the reader's buffer never grows (ASan would see it
     * overflow), and the row after it is read */
    rows rs = {0};
    csv_reader *r = csv_reader_new(1024, 2, 0, 1, collect, &rs);
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 1024; i++) CHECK(csv_reader_feed(r, chunk, sizeof chunk));
    CHECK(csv_reader_feed(r, "\nafter,it\n", 10));
    CHECK(csv_reader_finish(r));
    csv_reader_free(r);
    CHECK(rs.n == 2);
    if (rs.n == 2) {
        CHECK(rs.v[0].problem == CSV_TOO_LONG && rs.v[0].lens[0] == 1024);
        CHECK(rs.v[1].problem == CSV_OK && rs.v[1].line == 2 && rs.v[1].offset == ((64u << 20) | 1));
    }
    rows_free(&rs);
}

TEST(csv_line_ends)
{
    for (size_t chunk = 0; chunk <= 2; chunk++) {
        /* CRLF ends rows; inside quotes it is data */
        rows rs = parse("a,b\r\n\"x\r\ny\",z\r\nc,d", chunk);
        CHECK(rs.n == 3);
        if (rs.n == 3) {
            CHECK(rs.v[0].next_offset == 5 && rs.v[0].next_line == 2);
            CHECK_STR(rs.v[1].fields[0], "x\r\ny");
            CHECK(rs.v[1].line == 2 && rs.v[1].next_line == 4 && rs.v[1].next_offset == 15);
            CHECK(rs.v[2].line == 4 && rs.v[2].next_offset == 18 && rs.v[2].problem == CSV_OK);
        }
        rows_free(&rs);
        /* a lone CR ends a row too (old Mac exports), and counts as a line */
        rs = parse("a,b\rc,d\r\re,f\r", chunk);
        CHECK(rs.n == 4);
        if (rs.n == 4) {
            CHECK_STR(rs.v[1].fields[1], "d");
            CHECK(rs.v[1].line == 2 && rs.v[1].next_offset == 8);
            CHECK(rs.v[2].nfields == 1 && rs.v[2].lens[0] == 0 && rs.v[2].line == 3);
            CHECK(rs.v[3].line == 4 && rs.v[3].next_offset == 13 && rs.v[3].next_line == 5);
        }
        rows_free(&rs);
        /* empty lines are rows of one empty field; no row after the last line end */
        rs = parse("\n\r\n\"\"\n", chunk);
        CHECK(rs.n == 3);
        for (size_t i = 0; i < rs.n; i++) CHECK(rs.v[i].nfields == 1 && rs.v[i].lens[0] == 0);
        rows_free(&rs);
        /* an LF after a CRLF is a line of its own */
        rs = parse("a\r\n\nb\r\r\nc", chunk);
        CHECK(rs.n == 5);
        for (size_t i = 0; i < rs.n; i++) CHECK(rs.v[i].line == i + 1);
        rows_free(&rs);
        rs = parse("", chunk);
        CHECK(rs.n == 0);
        rows_free(&rs);
    }
}

TEST(csv_bom_at_offset_zero_is_skipped)
{
    for (size_t chunk = 0; chunk <= 2; chunk++) {
        rows rs = parse("\xEF\xBB\xBFName,mail\n", chunk);
        CHECK(rs.n == 1);
        if (rs.n) {
            CHECK_STR(rs.v[0].fields[0], "Name");
            CHECK(rs.v[0].offset == 3 && rs.v[0].next_offset == 13 && rs.v[0].line == 1);
        }
        rows_free(&rs);
        rs = parse("\xEF\xBB\xBF", chunk);   /* a BOM alone: no row */
        CHECK(rs.n == 0);
        rows_free(&rs);
        rs = parse("\xEF\xBB", chunk);        /* half a BOM is data, and not UTF-8 */
        CHECK(rs.n == 1 && rs.v[0].problem == CSV_NOT_UTF8 && rs.v[0].lens[0] == 2);
        rows_free(&rs);
        rs = parse("\xEF\xBBx,y\n", chunk);
        CHECK(rs.n == 1 && rs.v[0].problem == CSV_NOT_UTF8 && rs.v[0].offset == 0);
        rows_free(&rs);
    }
    /* only at offset 0 of the whole input: a resumed reader keeps it */
    rows rs = parse_at("\xEF\xBB\xBF,x\n", 6, 0, 64, 2, 10, 3);
    CHECK(rs.n == 1 && rs.v[0].lens[0] == 3 && rs.v[0].offset == 10 && rs.v[0].line == 3);
    rows_free(&rs);
}

TEST(csv_problems)
{
    static const struct { const char *in; csv_problem p; } cases[] = {
        {"\"abc\"d,x\n", CSV_STRAY_QUOTE},     /* after a closing quote */
        {"\"abc\" ,x\n", CSV_STRAY_QUOTE},
        {"ab\"c,x\n", CSV_STRAY_QUOTE},        /* inside an unquoted field */
        {"\"a\"\"b\",x\n", CSV_OK},            /* doubled: one quote */
        {"\"\",\"\"\n", CSV_OK},
        {"\"open,x\nmore\n", CSV_UNTERMINATED},
        {"\xC0\xAF,x\n", CSV_NOT_UTF8},        /* overlong '/' */
        {"\xED\xA0\x80,x\n", CSV_NOT_UTF8},    /* a surrogate */
        {"\xF4\x90\x80\x80,x\n", CSV_NOT_UTF8},/* past U+10FFFF */
        {"\xC3,\xA9\n", CSV_NOT_UTF8},         /* a sequence cut by a comma */
        {"\"\xC3\"\"\xA9\",x\n", CSV_NOT_UTF8},/* ... or by a quote */
        {"\xF0\x9F\x93\xB7,\xEF\xBF\xBD\n", CSV_OK},
        {"ab\"c\"d\n", CSV_STRAY_QUOTE},       /* the first problem wins */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (size_t chunk = 0; chunk <= 1; chunk++) {
            rows rs = parse(cases[i].in, chunk);
            CHECK(rs.n >= 1);
            if (rs.n && rs.v[0].problem != cases[i].p)
                fprintf(stderr, "  case %zu: %s, not %s\n", i, csv_problem_name(rs.v[0].problem),
                        csv_problem_name(cases[i].p));
            CHECK(rs.n && rs.v[0].problem == cases[i].p);
            rows_free(&rs);
        }
    }
    /* a NUL is refused like invalid UTF-8: fields are C strings */
    rows rs = parse_at("a\0b,x\n", 6, 0, 64, 2, 0, 1);
    CHECK(rs.n == 1 && rs.v[0].problem == CSV_NOT_UTF8);
    rows_free(&rs);
    /* a stray quote opens nothing: the next line is its own row */
    rs = parse("a\"b,c\nd,e\n", 0);
    CHECK(rs.n == 2 && rs.v[1].problem == CSV_OK && rs.v[1].line == 2);
    rows_free(&rs);
    CHECK_STR(csv_problem_name(CSV_UNTERMINATED), "unterminated_quote");
    CHECK_STR(csv_problem_name(CSV_TOO_LONG), "row_too_long");
}

TEST(csv_fields_past_the_limit_are_counted_not_kept)
{
    rows rs = parse("a,b,c,d,e,f,g\nh,i\n", 0);   /* max_fields 2 */
    CHECK(rs.n == 2);
    if (rs.n == 2) {
        CHECK(rs.v[0].nfields == 3 && rs.v[0].problem == CSV_OK);
        CHECK_STR(rs.v[0].fields[2], "c");
        CHECK(rs.v[1].nfields == 2);
    }
    rows_free(&rs);
}

TEST(csv_the_callback_stops_the_reader)
{
    rows rs = {.stop_after = 2};
    csv_reader *r = csv_reader_new(64, 2, 0, 1, collect, &rs);
    CHECK(!csv_reader_feed(r, "a,b\nc,d\ne,f\n", 12));
    CHECK(rs.n == 2);
    CHECK(!csv_reader_feed(r, "g,h\n", 4));
    CHECK(!csv_reader_finish(r));
    CHECK(rs.n == 2);
    csv_reader_free(r);
    rows_free(&rs);
    CHECK(csv_reader_new(0, 2, 0, 1, collect, NULL) == NULL);
    CHECK(csv_reader_new(64, 0, 0, 1, collect, NULL) == NULL);
}
