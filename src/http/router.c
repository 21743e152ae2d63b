/* router.c — see router.h. */
#include "http/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 8

typedef struct {
    const char *method;
    int nseg;
    const char *seg[MAX_SEGMENTS];   /* NULL marks a {param} */
    size_t seglen[MAX_SEGMENTS];
    char *storage;
} compiled_route;

struct router {
    int n;
    compiled_route *routes;
};

/* Splits "/a/b/c" into its segments.  Empty segments are kept ("/a//b",
 * "/a/"): they match nothing, so a decoded "%2F" in an id can never turn
 * "/v1/assets/{id}" into the listing "/v1/assets". */
static int split(char *s, const char **seg, size_t *len, int max)
{
    if (*s++ != '/') return -1;
    int n = 0;
    for (;;) {
        if (n == max) return -1;
        char *end = strchr(s, '/');
        size_t l = end ? (size_t)(end - s) : strlen(s);
        seg[n] = s;
        len[n++] = l;
        if (!end) return n;
        s = end + 1;
    }
}

router *router_new(int n, const char *const *methods, const char *const *patterns)
{
    router *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->n = n;
    r->routes = calloc((size_t)n, sizeof *r->routes);
    for (int i = 0; r->routes && i < n; i++) {
        compiled_route *c = &r->routes[i];
        c->method = methods[i];
        c->storage = strdup(patterns[i]);
        c->nseg = c->storage ? split(c->storage, c->seg, c->seglen, MAX_SEGMENTS) : -1;
        if (c->nseg < 0) { router_free(r); return NULL; }
        for (int s = 0; s < c->nseg; s++)
            if (c->seg[s][0] == '{') c->seg[s] = NULL;
    }
    return r;
}

void router_free(router *r)
{
    if (!r) return;
    for (int i = 0; r->routes && i < r->n; i++) free(r->routes[i].storage);
    free(r->routes);
    free(r);
}

/* Matches the path part of route c against split path segments. */
static bool path_matches(const compiled_route *c, int nseg, const char **seg,
                         const size_t *len, route_match *out)
{
    if (c->nseg != nseg) return false;
    int np = 0;
    for (int s = 0; s < nseg; s++) {
        if (c->seg[s]) {
            if (c->seglen[s] != len[s] || memcmp(c->seg[s], seg[s], len[s]) != 0) return false;
        } else {
            if (len[s] == 0 || len[s] > ROUTER_PARAM_MAX || np == ROUTER_MAX_PARAMS) return false;
            memcpy(out->params[np], seg[s], len[s]);
            out->params[np++][len[s]] = '\0';
        }
    }
    out->nparams = np;
    return true;
}

/* Lists the methods of every route whose path matches, for a 405's Allow. */
static void allow_header(const router *r, int nseg, const char **seg, const size_t *len,
                         route_match *out)
{
    route_match scratch;
    size_t used = 0;
    for (int i = 0; i < r->n; i++) {
        const char *m = r->routes[i].method;
        if (!path_matches(&r->routes[i], nseg, seg, len, &scratch) || strstr(out->allow, m))
            continue;
        used += (size_t)snprintf(out->allow + used, sizeof out->allow - used, "%s%s%s",
                                 used ? ", " : "", m, strcmp(m, "GET") == 0 ? ", HEAD" : "");
        if (used >= sizeof out->allow) break;
    }
}

void router_match(const router *r, const char *method, const char *path, route_match *out)
{
    out->route = -1;
    out->nparams = 0;
    out->allow[0] = '\0';
    const char *seg[MAX_SEGMENTS + 1];
    size_t len[MAX_SEGMENTS + 1];
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return;
    int nseg = split(buf, seg, len, MAX_SEGMENTS);
    if (nseg < 0) return;
    bool is_head = strcmp(method, "HEAD") == 0;
    bool path_known = false;
    for (int i = 0; i < r->n; i++) {
        const compiled_route *c = &r->routes[i];
        if (!path_matches(c, nseg, seg, len, out)) continue;
        path_known = true;
        if (strcmp(c->method, method) == 0 || (is_head && strcmp(c->method, "GET") == 0)) {
            out->route = i;
            return;
        }
    }
    if (path_known) allow_header(r, nseg, seg, len, out);
}
