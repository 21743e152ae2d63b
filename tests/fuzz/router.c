/* router — the route table (api/routes.c) as http/router.c matches it.
 *
 * Input: "METHOD\0PATH" (the path as the server sees it: already
 * percent-decoded by libmicrohttpd; the http target covers the decoding).
 * Properties, against a reference matcher written here from router.h's
 * rules (literal segments, {param} = one non-empty segment of at most
 * ROUTER_PARAM_MAX bytes, first route in table order wins, GET answers HEAD):
 *   - the same route is chosen, and its params put back into the pattern
 *     give the path again (so a param never holds a '/' or spans segments);
 *   - a 405's Allow lists exactly the methods of the routes whose pattern
 *     matches the path; a 404 has no such route.
 */
#include "fuzz.h"
#include "api/app.h"
#include "http/router.h"

#include <stdlib.h>
#include <string.h>

static router *table;
static const char *methods[128], *patterns[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (int i = 0; i < api_route_count; i++) {
        methods[i] = api_routes[i].method;
        patterns[i] = api_routes[i].pattern;
    }
    table = router_new(api_route_count, methods, patterns);
    return 0;
}

/* Does pattern match path?  Written apart from router.c on purpose. */
static bool ref_path_matches(const char *pattern, const char *path)
{
    if (strlen(path) >= 1024 || path[0] != '/') return false;   /* router.c's buffer */
    int segs = 1;
    for (const char *p = path + 1; *p; p++) segs += *p == '/';
    if (segs > 8) return false;
    const char *a = pattern + 1, *b = path + 1;
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (a[0] == '{') {
            if (lb == 0 || lb > ROUTER_PARAM_MAX) return false;
        } else if (la != lb || memcmp(a, b, la) != 0) {
            return false;
        }
        a += la;
        b += lb;
        if (!*a || !*b) return !*a && !*b;
        a++;
        b++;
    }
}

static bool method_fits(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* The pattern with the params put back. */
static void fill(const char *pattern, const route_match *m, char *out, size_t cap)
{
    size_t o = 0;
    int k = 0;
    for (const char *p = pattern; *p && o < cap - 1;) {
        if (*p == '{') {
            FUZZ_CHECK(k < m->nparams);
            size_t n = strlen(m->params[k]);
            if (n > cap - 1 - o) n = cap - 1 - o;
            memcpy(out + o, m->params[k++], n);
            o += n;
            p = strchr(p, '}') + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    FUZZ_CHECK(k == m->nparams);
}

/* Is method listed in allow ("GET, HEAD, DELETE")? */
static bool listed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, method, n) == 0) return true;
        p += len;
        while (*p == ',' || *p == ' ') p++;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[2], *buf;
    fuzz_split(data, size, f, 2, &buf);
    const char *method = f[0], *path = f[1];
    route_match m;
    router_match(table, method, path, &m);

    int want = -1;
    bool path_known = false;
    for (int i = 0; i < api_route_count; i++) {
        if (!ref_path_matches(patterns[i], path)) continue;
        path_known = true;
        if (want < 0 && method_fits(methods[i], method)) want = i;
    }
    FUZZ_CHECK(m.route == want);
    if (m.route >= 0) {
        char back[2048];
        fill(patterns[m.route], &m, back, sizeof back);
        FUZZ_CHECK(strcmp(back, path) == 0);
        for (int k = 0; k < m.nparams; k++)
            FUZZ_CHECK(m.params[k][0] && !strchr(m.params[k], '/'));
    } else if (path_known) {
        FUZZ_CHECK(m.allow[0] != '\0');
        for (int i = 0; i < api_route_count; i++) {
            if (!ref_path_matches(patterns[i], path)) continue;
            FUZZ_CHECK(listed(m.allow, methods[i]));
            if (strcmp(methods[i], "GET") == 0) FUZZ_CHECK(listed(m.allow, "HEAD"));
        }
        /* ... and nothing else. */
        for (const char *p = m.allow; *p;) {
            char one[16] = "";
            size_t len = strcspn(p, ",");
            FUZZ_CHECK(len < sizeof one);
            memcpy(one, p, len);
            bool known = false;
            for (int i = 0; i < api_route_count && !known; i++)
                known = ref_path_matches(patterns[i], path) && method_fits(methods[i], one);
            FUZZ_CHECK(known);
            p += len;
            while (*p == ',' || *p == ' ') p++;
        }
    } else {
        FUZZ_CHECK(m.allow[0] == '\0');
    }
    free(buf);
    return 0;
}
