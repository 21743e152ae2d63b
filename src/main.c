/* main.c — the assetd command line: dispatches to a subcommand. */
#include "cli/cli.h"
#include "util/fault.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "assetd — media asset server\n"
    "\n"
    "usage: assetd <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve      run the HTTP API (embedded: SQLite + local disk)\n"
    "  worker     run one worker process (serve already supervises its own)\n"
    "  keys       create, list and revoke API keys\n"
    "  gc         remove signed uploads never completed, and their bytes\n"
    "  version    print the version\n"
    "\n"
    "`assetd <command> --help` describes each command.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    fault_init(cmd);   /* a test hook, inert unless ASSETD_FAULT is set */
    if (strcmp(cmd, "serve") == 0) return cli_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "keys") == 0) return cli_keys(argc - 2, argv + 2);
    if (strcmp(cmd, "gc") == 0) return cli_gc(argc - 2, argv + 2);
    if (strcmp(cmd, "worker") == 0) return cli_worker(argc - 2, argv + 2, argv[0]);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            puts("usage: assetd version\n\nPrints the version of this binary.");
            return 0;
        }
        if (argc > 2) {
            fprintf(stderr, "assetd: version takes no arguments\n");
            return 2;
        }
        printf("assetd %s\n", ASSETD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "assetd: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
