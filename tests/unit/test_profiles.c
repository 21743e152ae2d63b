/* Image profiles (?profile=): names and their presets. */
#include "test.h"
#include "core/asset.h"
#include "media/image.h"

TEST(profiles_parse_to_their_stored_form)
{
    char out[ASSET_PROFILE_MAX + 1] = "x";
    CHECK(asset_profile_parse(NULL, out) && out[0] == '\0');
    CHECK(asset_profile_parse("", out) && out[0] == '\0');
    CHECK(asset_profile_parse("default", out) && out[0] == '\0');
    CHECK(asset_profile_parse("cover", out));
    CHECK_STR(out, "cover");
    CHECK(asset_profile_parse("avatar", out));
    CHECK_STR(out, "avatar");
    /* the caller's own buffer may be the input (api/tus.c does so) */
    char same[ASSET_PROFILE_MAX + 1] = "avatar";
    CHECK(asset_profile_parse(same, same));
    CHECK_STR(same, "avatar");
    const char *bad[] = {"Avatar", "avatar ", " cover", "thumb", "covers", "default2",
                         "avatar\n", "a-very-long-profile-name-indeed"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(out, sizeof out, "kept");
        CHECK(!asset_profile_parse(bad[i], out));
        CHECK_STR(out, "kept");   /* unchanged on refusal */
    }
}

TEST(every_named_profile_has_presets)
{
    int n = -1;
    CHECK(image_profile_presets("", &n) == NULL && n == 0);
    CHECK(image_profile_presets("thumb", &n) == NULL);
    const image_preset *p = image_profile_presets("cover", &n);
    CHECK(p == image_cover_presets && n == 5);
    const int cover[][2] = {{1280, 720}, {640, 360}, {480, 270}, {320, 180}, {160, 90}};
    for (int i = 0; p && i < n && i < 5; i++) {
        CHECK(p[i].size == cover[i][0] && p[i].height == cover[i][1]);
        CHECK(p[i].fit == IMAGE_FIT_COVER);
        CHECK_STR(p[i].format, "jpeg");
    }
    CHECK_STR(p[0].name, "cover_large");
    CHECK_STR(p[4].name, "cover_nano");
    p = image_profile_presets("avatar", &n);
    CHECK(p && n == 4);
    const int sides[] = {256, 128, 64, 32};
    for (int i = 0; p && i < n && i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "avatar_%d", sides[i]);
        CHECK_STR(p[i].name, name);
        CHECK(p[i].size == sides[i] && p[i].height == sides[i] && p[i].fit == IMAGE_FIT_COVER);
        CHECK_STR(p[i].format, "png");
    }
    /* every name the API accepts renders something of its own */
    const char *named[] = {"cover", "avatar"};
    for (size_t i = 0; i < 2; i++) {
        char stored[ASSET_PROFILE_MAX + 1];
        CHECK(asset_profile_parse(named[i], stored));
        CHECK(image_profile_presets(stored, &n) != NULL && n > 0);
    }
}
