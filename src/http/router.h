/* router.h — maps (method, path) to a route.
 *
 * Patterns are literal segments and `{name}` placeholders that match exactly
 * one non-empty segment: "/v1/assets/{id}/content".  Routes are tried in
 * order; the table is small and fixed, so a linear scan over pre-split
 * patterns beats anything cleverer.  GET routes also answer HEAD.
 */
#ifndef ASSETD_ROUTER_H
#define ASSETD_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_PARAM_MAX 128

typedef struct router router;

typedef struct route_match {
    int route;                       /* index into the table, or -1 */
    int nparams;
    char params[ROUTER_MAX_PARAMS][ROUTER_PARAM_MAX + 1];
    char allow[64];                  /* route == -1 but the path exists: "GET, HEAD, DELETE" */
} route_match;

/* methods[i] and patterns[i] describe route i; both are borrowed. */
router *router_new(int n, const char *const *methods, const char *const *patterns);
void router_free(router *r);
void router_match(const router *r, const char *method, const char *path, route_match *out);

#endif
