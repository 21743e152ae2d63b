/* fdlimit.c — see fdlimit.h. */
#include "http/fdlimit.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

unsigned long fdlimit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long)rl.rlim_cur;
}

/* ---------- accept4 ---------- */

typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static int sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

static _Atomic(accept4_fn) next_accept4;

/* The accept4() this file hides: the C library's, or a sanitizer's wrapper
 * of it. */
static int real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    accept4_fn f = atomic_load_explicit(&next_accept4, memory_order_acquire);
    if (!f) {
        f = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
        if (!f || f == accept4) f = sys_accept4;
        atomic_store_explicit(&next_accept4, f, memory_order_release);
    }
    return f(fd, addr, len, flags);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* When this thread's last accept failed for lack of descriptors (0: never,
 * or it succeeded since). */
static _Thread_local double last_failure_ms;

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int s = real_accept4(fd, addr, len, flags);
    if (s >= 0 || (errno != EMFILE && errno != ENFILE)) {
        if (s >= 0) last_failure_ms = 0;
        return s;
    }
    int err = errno;
    double now = now_ms(), wait = last_failure_ms + ACCEPT_RETRY_MS - now;
    if (last_failure_ms > 0 && wait > 0) {   /* the thread is looping: let it rest */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e6)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        now = now_ms();
    }
    last_failure_ms = now;
    errno = err;
    return -1;
}
