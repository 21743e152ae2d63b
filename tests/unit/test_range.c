#include "test.h"
#include "http/range.h"

static range_result parse(const char *h, uint64_t size, uint64_t *s, uint64_t *l)
{
    *s = *l = 999;
    return range_parse(h, size, s, l);
}

TEST(range_forms)
{
    uint64_t s, l;
    CHECK(parse("bytes=0-4", 27, &s, &l) == RANGE_PARTIAL && s == 0 && l == 5);
    CHECK(parse("bytes=5-", 27, &s, &l) == RANGE_PARTIAL && s == 5 && l == 22);
    CHECK(parse("bytes=-5", 27, &s, &l) == RANGE_PARTIAL && s == 22 && l == 5);
    CHECK(parse("bytes=-100", 27, &s, &l) == RANGE_PARTIAL && s == 0 && l == 27);
    CHECK(parse("bytes=10-1000", 27, &s, &l) == RANGE_PARTIAL && s == 10 && l == 17);
    CHECK(parse("bytes=26-26", 27, &s, &l) == RANGE_PARTIAL && s == 26 && l == 1);
}

TEST(range_unsatisfiable)
{
    uint64_t s, l;
    CHECK(parse("bytes=27-", 27, &s, &l) == RANGE_UNSATISFIABLE);
    CHECK(parse("bytes=100-200", 27, &s, &l) == RANGE_UNSATISFIABLE);
    CHECK(parse("bytes=-0", 27, &s, &l) == RANGE_UNSATISFIABLE);
    CHECK(parse("bytes=0-", 0, &s, &l) == RANGE_UNSATISFIABLE);
}

TEST(range_ignored)
{
    uint64_t s, l;
    CHECK(parse(NULL, 27, &s, &l) == RANGE_NONE);
    CHECK(parse("items=0-4", 27, &s, &l) == RANGE_NONE);
    CHECK(parse("bytes=0-4,6-8", 27, &s, &l) == RANGE_NONE);
    CHECK(parse("bytes=5-4", 27, &s, &l) == RANGE_NONE);
    CHECK(parse("bytes=a-b", 27, &s, &l) == RANGE_NONE);
    CHECK(parse("bytes=99999999999999999999-", 27, &s, &l) == RANGE_NONE);
    CHECK(parse("bytes=", 27, &s, &l) == RANGE_NONE);
}
