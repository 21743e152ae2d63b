/* notify.c — see notify.h. */
#include "events/notify.h"
#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct notify_listener {
    int fd;
    struct sockaddr_un addr;
};

struct notifier {
    int fd;
    struct sockaddr_un addr;
    bool usable;
};

static bool socket_address(const char *data_dir, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path, sizeof addr->sun_path, "%s/events.sock", data_dir);
    return n > 0 && (size_t)n < sizeof addr->sun_path;
}

notify_listener *notify_listen(const char *data_dir)
{
    notify_listener *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    if (!socket_address(data_dir, &l->addr)) {
        log_warn("data directory path too long for the event wake-up socket; polling only",
                 "dir", data_dir, NULL);
        free(l);
        return NULL;
    }
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(l->addr.sun_path);   /* a stale socket from a previous run */
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&l->addr, sizeof l->addr) != 0) {
        log_warn("cannot bind the event wake-up socket; polling only", "error",
                 strerror(errno), NULL);
        if (l->fd >= 0) close(l->fd);
        free(l);
        return NULL;
    }
    return l;
}

int notify_listener_fd(const notify_listener *l) { return l->fd; }

void notify_listener_drain(notify_listener *l)
{
    char buf[16];
    while (recv(l->fd, buf, sizeof buf, 0) >= 0) {}
}

void notify_listener_close(notify_listener *l)
{
    if (!l) return;
    close(l->fd);
    unlink(l->addr.sun_path);
    free(l);
}

notifier *notifier_open(const char *data_dir)
{
    notifier *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->usable = socket_address(data_dir, &n->addr) &&
                (n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) >= 0;
    return n;
}

void notifier_poke(notifier *n)
{
    /* ENOENT/ECONNREFUSED (no serve running) and EAGAIN (a wake-up is
     * already pending) are all fine: the hub will look anyway. */
    if (n && n->usable)
        (void)sendto(n->fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&n->addr, sizeof n->addr);
}

void notifier_close(notifier *n)
{
    if (!n) return;
    if (n->usable) close(n->fd);
    free(n);
}
