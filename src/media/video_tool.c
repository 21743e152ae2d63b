/* video_tool.c — see video_tool.h. */
#include "media/video_tool.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


static void progress_line(tool_out *o, const video_ctl *ctl)
{
    long long us;
    if (o->duration > 0 && ctl->progress && sscanf(o->line, "out_time_us=%lld", &us) == 1 &&
        us > 0) {
        double f = (double)us / 1e6 / o->duration;
        ctl->progress(ctl->arg, f > 1 ? 1 : f);
    }
}

static void take_output(tool_out *o, const video_ctl *ctl, const char *data, size_t n)
{
    if (o->duration > 0) {
        for (size_t i = 0; i < n; i++) {
            if (data[i] == '\n') {
                o->line[o->line_len] = '\0';
                progress_line(o, ctl);
                o->line_len = 0;
            } else if (o->line_len + 1 < sizeof o->line) {
                o->line[o->line_len++] = data[i];
            }
        }
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 16384;
        while (cap < o->len + n + 1) cap *= 2;
        if (cap > PROBE_OUTPUT_MAX) return;   /* parse fails: corrupt */
        char *b = realloc(o->buf, cap);
        if (!b) return;
        o->buf = b, o->cap = cap;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* The last line ffmpeg wrote to stderr (-loglevel error), for messages. */
static void stderr_tail(int fd, char *err, size_t errcap, const char *what)
{
    char buf[512];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    buf[n > 0 ? n : 0] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    char *last = strrchr(buf, '\n');
    snprintf(err, errcap, "%s: %s", what, last ? last + 1 : buf[0] ? buf : "failed");
}

static bool on_path(const char *tool)
{
    const char *path = getenv("PATH");
    char buf[4096], candidate[4200];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(candidate, sizeof candidate, "%s/%s", dir, tool);
        if (access(candidate, X_OK) == 0) return true;
    }
    return false;
}

video_status run_tool(char *const argv[], int in_fd, const char *work_dir, const video_ctl *ctl,
                      tool_out *o, char *err, size_t errcap)
{
    if (!on_path(argv[0])) {
        snprintf(err, errcap, "video needs %s: " VIDEO_INSTALL_HINT, argv[0]);
        return VIDEO_MISSING;
    }
    char logpath[1200];
    snprintf(logpath, sizeof logpath, "%s/stderr-XXXXXX", work_dir);
    int logfd = mkostemp(logpath, O_CLOEXEC);
    if (logfd < 0) {
        snprintf(err, errcap, "cannot make a scratch file: %s", strerror(errno));
        return VIDEO_IO_ERROR;
    }
    unlink(logpath);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(logfd);
        snprintf(err, errcap, "cannot make a pipe: %s", strerror(errno));
        return VIDEO_IO_ERROR;
    }
    /* Everything the child needs is ready before fork: after it, only
     * async-signal-safe calls (the worker has other threads). */
    static char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "MALLOC_ARENA_MAX=2",
                                "LC_ALL=C", NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd), close(out[0]), close(out[1]);
        snprintf(err, errcap, "cannot fork: %s", strerror(errno));
        return VIDEO_IO_ERROR;
    }
    if (pid == 0) {
        setpgid(0, 0);   /* killed as a group: ffmpeg's helpers go with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);   /* the worker ignores it; exec keeps that */
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in_fd, 0) < 0 || dup2(out[1], 1) < 0 || dup2(logfd, 2) < 0) _exit(126);
        lseek(0, 0, SEEK_SET);
        execvpe(argv[0], argv, env);
        _exit(127);
    }
    setpgid(pid, pid);   /* also here: no window where a kill misses it */
    if (ctl->child_pgid) atomic_store(ctl->child_pgid, pid);
    close(out[1]);
    double deadline = time_mono_seconds() + ctl->timeout_s;
    video_status st = VIDEO_OK;
    char buf[8192];
    for (;;) {
        struct pollfd p = {out[0], POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r > 0) {
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n == 0) break;   /* EOF: it exited (or closed stdout) */
            if (n > 0) take_output(o, ctl, buf, (size_t)n);
        }
        if (time_mono_seconds() > deadline) st = VIDEO_TIMEOUT;
        else if (ctl->cancelled && ctl->cancelled(ctl->arg)) st = VIDEO_CANCELLED;
        else if (ctl->tick) ctl->tick(ctl->arg);
        if (st != VIDEO_OK) {
            kill(-pid, SIGKILL);
            break;
        }
    }
    close(out[0]);
    int status = 0;
    /* stdout closed: it is exiting; a child that closed stdout early and
     * hangs still meets the deadline here */
    while (st == VIDEO_OK && waitpid(pid, &status, WNOHANG) == 0) {
        if (time_mono_seconds() > deadline) {
            kill(-pid, SIGKILL);
            st = VIDEO_TIMEOUT;
            break;
        }
        usleep(20000);
    }
    if (st != VIDEO_OK) waitpid(pid, &status, 0);
    kill(-pid, SIGKILL);   /* stragglers of the group, if any */
    if (ctl->child_pgid) atomic_store(ctl->child_pgid, 0);
    if (st == VIDEO_TIMEOUT)
        snprintf(err, errcap, "%s took longer than %.0f s", argv[0], ctl->timeout_s);
    else if (st == VIDEO_CANCELLED)
        snprintf(err, errcap, "the job was abandoned");
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        snprintf(err, errcap, "cannot run %s: " VIDEO_INSTALL_HINT, argv[0]);
        st = VIDEO_MISSING;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        stderr_tail(logfd, err, errcap, argv[0]);
        st = VIDEO_CORRUPT;
    }
    close(logfd);
    return st;
}

