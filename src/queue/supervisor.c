/* supervisor.c — see supervisor.h. */
#include "queue/supervisor.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100
#define RESTART_DELAY 1.0   /* seconds between a child's exit and its restart */

struct supervisor {
    int n;
    pid_t *pids;
    double *died_at;        /* 0 while running */
    char **argv;
    _Atomic bool stopping;
    pthread_t thread;
};

static pid_t spawn(supervisor *s)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The server blocked these for sigwait; a worker wants them back. */
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_UNBLOCK, &all, NULL);
        /* A worker must not outlive its server (kill -9 of serve): a new
         * serve would start its own and sweep the old ones' temp files. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(0);   /* it died before the line above */
        execv("/proc/self/exe", s->argv);
        _exit(127);
    }
    return pid;
}

static void note_exit(supervisor *s, int i, int status)
{
    char pid[16], how[32];
    snprintf(pid, sizeof pid, "%d", (int)s->pids[i]);
    if (WIFSIGNALED(status)) snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
    else snprintf(how, sizeof how, "exit %d", WEXITSTATUS(status));
    log_warn("worker exited; restarting", "pid", pid, "status", how, NULL);
    s->pids[i] = 0;
    s->died_at[i] = time_mono_seconds();
}

static void *watch(void *arg)
{
    supervisor *s = arg;
    while (!atomic_load(&s->stopping)) {
        for (int i = 0; i < s->n; i++) {
            int status;
            if (s->pids[i] > 0 && waitpid(s->pids[i], &status, WNOHANG) == s->pids[i])
                note_exit(s, i, status);
            if (s->pids[i] <= 0 && time_mono_seconds() - s->died_at[i] >= RESTART_DELAY &&
                !atomic_load(&s->stopping) && (s->pids[i] = spawn(s)) < 0)
                s->died_at[i] = time_mono_seconds();   /* fork failed: try again later */
        }
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

supervisor *supervisor_start(int workers, char *const argv[])
{
    supervisor *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    int argc = 0;
    while (argv[argc]) argc++;
    s->n = workers;
    s->pids = calloc((size_t)workers, sizeof *s->pids);
    s->died_at = calloc((size_t)workers, sizeof *s->died_at);
    s->argv = calloc((size_t)argc + 1, sizeof *s->argv);
    if (!s->pids || !s->died_at || !s->argv) goto fail;
    for (int i = 0; i < argc; i++)
        if (!(s->argv[i] = strdup(argv[i]))) goto fail;
    for (int i = 0; i < workers; i++) s->pids[i] = spawn(s);
    if (pthread_create(&s->thread, NULL, watch, s) != 0) {
        supervisor_stop(s, 0);
        return NULL;
    }
    return s;
fail:
    for (int i = 0; s->argv && s->argv[i]; i++) free(s->argv[i]);
    free(s->argv);
    free(s->pids);
    free(s->died_at);
    free(s);
    return NULL;
}

void supervisor_stop(supervisor *s, unsigned grace)
{
    if (!s) return;
    if (!atomic_exchange(&s->stopping, true) && s->thread) pthread_join(s->thread, NULL);
    for (int i = 0; i < s->n; i++)
        if (s->pids[i] > 0) kill(s->pids[i], SIGTERM);
    double deadline = time_mono_seconds() + grace;
    for (int i = 0; i < s->n; i++) {
        while (s->pids[i] > 0) {
            int status;
            pid_t r = waitpid(s->pids[i], &status, WNOHANG);
            if (r == s->pids[i] || (r < 0 && errno == ECHILD)) s->pids[i] = 0;
            else if (time_mono_seconds() > deadline) kill(s->pids[i], SIGKILL);
            else {
                struct timespec ts = {0, 20 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    for (int i = 0; s->argv[i]; i++) free(s->argv[i]);
    free(s->argv);
    free(s->pids);
    free(s->died_at);
    free(s);
}
