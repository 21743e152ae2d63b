/* sigv4_tool.c — a command-line face on core/sigv4 for tests/s3/crosscheck.py,
 * which compares it with botocore (an independent SigV4 implementation)
 * and sends its URLs and forms to moto.  Not part of assetd.
 *
 *   sigv4-tool url METHOD ENDPOINT BUCKET|- KEY NOW EXPIRES AK SK REGION TOKEN|- [NAME=VALUE...]
 *       prints the presigned URL
 *   sigv4-tool post BUCKET KEY SIZE TYPE|- NOW EXPIRES AK SK REGION TOKEN|-
 *       prints the form fields, one "name<TAB>value" a line
 *   sigv4-tool verify-url METHOD HOST PATH NOW AK SK REGION TOKEN|- < raw query
 *   sigv4-tool verify-post BUCKET SIZE NOW AK SK REGION TOKEN|- < "name<TAB>value" lines
 *       print the status (sigv4_status_str) and exit 0 only for "ok"
 */
#include "core/sigv4.h"
#include "core/sigv4_post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *opt(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

static int usage(void)
{
    fprintf(stderr, "usage: see the comment atop tests/s3/sigv4_tool.c\n");
    return 2;
}

static int report(sigv4_status st)
{
    printf("%s\n", sigv4_status_str(st));
    return st == SIGV4_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    static char in[1 << 16];
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "url") == 0 && argc >= 12) {
        sigv4_creds c = {argv[8], argv[9], opt(argv[11]), argv[10], NULL};
        sigv4_param extra[SIGV4_QUERY_MAX];
        size_t n = 0;
        for (int i = 12; i < argc && n < SIGV4_QUERY_MAX; i++) {
            char *eq = strchr(argv[i], '=');
            if (!eq) return usage();
            *eq = '\0';
            extra[n++] = (sigv4_param){argv[i], eq + 1};
        }
        sigv4_url_request r = {argv[2], argv[3], opt(argv[4]), argv[5], atoll(argv[6]),
                               atoll(argv[7]), extra, n};
        char *url;
        sigv4_status st = sigv4_presign_url(&c, &r, &url);
        if (st != SIGV4_OK) return report(st);
        printf("%s\n", url);
        free(url);
        return 0;
    }
    if (strcmp(cmd, "post") == 0 && argc == 12) {
        sigv4_creds c = {argv[8], argv[9], opt(argv[11]), argv[10], NULL};
        sigv4_post_request r = {.bucket = argv[2], .key = argv[3], .size = atoll(argv[4]),
                                .content_type = opt(argv[5]), .now_s = atoll(argv[6]),
                                .expires_s = atoll(argv[7])};
        sigv4_form f;
        sigv4_status st = sigv4_post_policy(&c, &r, &f);
        if (st != SIGV4_OK) return report(st);
        for (size_t i = 0; i < f.n; i++) printf("%s\t%s\n", f.field[i].name, f.field[i].value);
        sigv4_form_free(&f);
        return 0;
    }
    if (strcmp(cmd, "verify-url") == 0 && argc == 10) {
        sigv4_creds c = {argv[6], argv[7], opt(argv[9]), argv[8], NULL};
        size_t len = fread(in, 1, sizeof in - 1, stdin);
        in[len] = '\0';
        in[strcspn(in, "\n")] = '\0';
        sigv4_query q;
        sigv4_status st = sigv4_query_parse(in, &q);
        if (st == SIGV4_OK)
            st = sigv4_verify_url(&c, argv[2], argv[3], argv[4], q.param, q.n, atoll(argv[5]), NULL);
        sigv4_query_free(&q);
        return report(st);
    }
    if (strcmp(cmd, "verify-post") == 0 && argc == 9) {
        sigv4_creds c = {argv[5], argv[6], opt(argv[8]), argv[7], NULL};
        sigv4_param f[SIGV4_QUERY_MAX];
        size_t n = 0;
        size_t len = fread(in, 1, sizeof in - 1, stdin);
        in[len] = '\0';
        for (char *line = strtok(in, "\n"); line && n < SIGV4_QUERY_MAX; line = strtok(NULL, "\n")) {
            char *tab = strchr(line, '\t');
            if (!tab) return usage();
            *tab = '\0';
            f[n++] = (sigv4_param){line, tab + 1};
        }
        return report(sigv4_post_verify(&c, argv[2], f, n, atoll(argv[3]), atoll(argv[4]), NULL));
    }
    return usage();
}
