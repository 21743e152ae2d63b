/* The HTTP server's request life cycle, against a real http_server: a
 * deferred handler's reply belongs to the work pool until it resumes the
 * request, even when the work is done before the handler has returned. */
#include "test.h"
#include "http/server.h"
#include "util/workpool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) { nanosleep(&(struct timespec){0, ms * 1000000}, NULL); }

/* The work replies at once and adds a header later; the handler returns
 * only after the reply was set, so a server that looked at the reply when
 * the handler returned would send it without that header. */
static void late_work(http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
    pause_ms(200);
    http_reply_header(r, "X-Late", "1");
}

static void late(http_req *r)
{
    http_req_defer(r, late_work);
    pause_ms(100);
}

static bool any_body(http_req *r, const char *data, size_t len) { return true; }
static bool accept_body(http_req *r) { return true; }
static bool no_auth(void *app, const char *token, char owner[OWNER_MAX + 1]) { return false; }

static const http_route routes[] = {
    {"PUT", "/late", false, late, accept_body, any_body, NULL},   /* handled after the body */
    {"DELETE", "/late", false, late, NULL, NULL, NULL},          /* handled with the head */
};

/* Sends req on a fresh connection; the response head into out. */
static bool exchange(uint16_t port, const char *req, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        ssize_t n;
        while (got < cap - 1 && !memmem(out, got, "\r\n\r\n", 4) &&
               (n = recv(fd, out + got, cap - 1 - got, 0)) > 0)
            got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
    return got > 0;
}

TEST(server_deferred_reply_waits_for_the_work)
{
    const char *err = NULL;
    workpool *pool = workpool_new(1);
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 2, .max_connections = 8,
                              .idle_timeout = 10, .header_timeout = 10, .body_timeout = 10,
                              .connection_memory = 32 * 1024, .access_log = "off"};
    http_server *s = http_server_start(&cfg, routes, 2, NULL, no_auth, pool, &err);
    CHECK(s != NULL);
    if (!s) return;
    char head[4096];
    CHECK(exchange(http_server_port(s), "PUT /late HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                   head, sizeof head));
    CHECK(strncmp(head, "HTTP/1.1 200 ", 13) == 0 && strstr(head, "\r\nX-Late: 1\r\n"));
    CHECK(exchange(http_server_port(s), "DELETE /late HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                   head, sizeof head));
    CHECK(strncmp(head, "HTTP/1.1 200 ", 13) == 0 && strstr(head, "\r\nX-Late: 1\r\n"));
    workpool_free(pool);
    http_server_stop(s);
}
