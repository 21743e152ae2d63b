#include "test.h"
#include "util/parse.h"

TEST(size_suffixes)
{
    uint64_t v;
    CHECK(parse_size("4096", &v) && v == 4096);
    CHECK(parse_size("512K", &v) && v == 512u << 10);
    CHECK(parse_size("10m", &v) && v == 10u << 20);
    CHECK(parse_size("2G", &v) && v == 2ull << 30);
    CHECK(parse_size("2GiB", &v) && v == 2ull << 30);
    CHECK(parse_size("3MB", &v) && v == 3u << 20);
    CHECK(parse_size("1T", &v) && v == 1ull << 40);
    CHECK(parse_size("7B", &v) && v == 7);
}

TEST(size_rejects)
{
    uint64_t v;
    CHECK(!parse_size("", &v));
    CHECK(!parse_size(NULL, &v));
    CHECK(!parse_size("-1", &v));
    CHECK(!parse_size("1X", &v));
    CHECK(!parse_size("1Gx", &v));
    CHECK(!parse_size("G", &v));
    CHECK(!parse_size("1.5G", &v));
    CHECK(!parse_size("99999999999999999999", &v));
    CHECK(!parse_size("20000000000000T", &v));   /* overflows on the shift */
}

TEST(u64_strict)
{
    uint64_t v;
    CHECK(parse_u64("0", &v) && v == 0);
    CHECK(parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    CHECK(!parse_u64("18446744073709551616", &v));
    CHECK(!parse_u64("12a", &v));
    CHECK(!parse_u64(" 1", &v));
    CHECK(!parse_u64("+1", &v));
    CHECK(!parse_u64("", &v));
}
