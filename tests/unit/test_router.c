#include "test.h"
#include "http/router.h"

static const char *const methods[] = {"POST", "GET", "GET", "DELETE", "GET"};
static const char *const patterns[] = {"/v1/assets", "/v1/assets", "/v1/assets/{id}",
                                       "/v1/assets/{id}", "/v1/assets/{id}/content"};

TEST(router_matches_and_extracts)
{
    router *r = router_new(5, methods, patterns);
    route_match m;
    router_match(r, "GET", "/v1/assets", &m);
    CHECK(m.route == 1);
    router_match(r, "POST", "/v1/assets", &m);
    CHECK(m.route == 0);
    router_match(r, "GET", "/v1/assets/abc", &m);
    CHECK(m.route == 2 && m.nparams == 1);
    CHECK_STR(m.params[0], "abc");
    router_match(r, "HEAD", "/v1/assets/abc/content", &m);
    CHECK(m.route == 4);
    router_match(r, "DELETE", "/v1/assets/xyz", &m);
    CHECK(m.route == 3);
    CHECK_STR(m.params[0], "xyz");
    router_free(r);
}

TEST(router_404_and_405)
{
    router *r = router_new(5, methods, patterns);
    route_match m;
    router_match(r, "GET", "/v1/nothing", &m);
    CHECK(m.route == -1 && m.allow[0] == '\0');
    router_match(r, "GET", "/v1/assets/a/b/c", &m);
    CHECK(m.route == -1 && m.allow[0] == '\0');
    /* Empty segments match nothing: "/v1/assets/" + a decoded "/" id. */
    router_match(r, "GET", "/v1/assets//", &m);
    CHECK(m.route == -1);
    router_match(r, "GET", "/v1/assets/", &m);
    CHECK(m.route == -1);
    router_match(r, "GET", "//v1/assets", &m);
    CHECK(m.route == -1);
    router_match(r, "PUT", "/v1/assets/abc", &m);
    CHECK(m.route == -1);
    CHECK_STR(m.allow, "GET, HEAD, DELETE");
    router_match(r, "DELETE", "/v1/assets", &m);
    CHECK_STR(m.allow, "POST, GET, HEAD");
    router_free(r);
}
