/* office.c — see office.h. */
#include "media/office.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool office_available(void)
{
    const char *path = getenv("PATH");
    char buf[4096], candidate[4200];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(candidate, sizeof candidate, "%s/soffice", dir);
        if (access(candidate, X_OK) == 0) return true;
    }
    return false;
}

/* The extension LibreOffice's import filter detection expects. */
static const char *extension_for(const char *mime)
{
    if (strstr(mime, "openxmlformats")) return "pptx";
    if (strstr(mime, "ms-powerpoint")) return "ppt";
    if (strstr(mime, "opendocument")) return "odp";
    if (strstr(mime, "keynote") || strstr(mime, "sffkey")) return "key";
    return "bin";
}

static bool copy_fd(int from, const char *to)
{
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) return false;
    off_t offset = 0;
    ssize_t n;
    bool ok = true;
    while ((n = copy_file_range(from, &offset, out, NULL, 1 << 20, 0)) > 0) {}
    if (n < 0) {   /* across file systems on old kernels: plain copy */
        char buf[65536];
        ssize_t r;
        while (ok && (r = pread(from, buf, sizeof buf, offset)) > 0) {
            ok = write(out, buf, (size_t)r) == r;
            offset += r;
        }
        ok = ok && r == 0;
    }
    return close(out) == 0 && ok;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs soffice on input in dir; OFFICE_OK when it exited 0 in time. */
static office_status run_soffice(const char *dir, const char *input, int timeout_s)
{
    char profile[1200];
    snprintf(profile, sizeof profile, "-env:UserInstallation=file://%s/profile", dir);
    pid_t pid = fork();
    if (pid < 0) return OFFICE_IO_ERROR;
    if (pid == 0) {
        setpgid(0, 0);   /* its helpers die with it on timeout */
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
        execlp("soffice", "soffice", profile, "--headless", "--norestore", "--nolockcheck",
               "--convert-to", "pdf", "--outdir", dir, input, (char *)NULL);
        _exit(127);
    }
    double deadline = time_mono_seconds() + timeout_s;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (time_mono_seconds() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return OFFICE_TIMEOUT;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return OFFICE_MISSING;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? OFFICE_OK : OFFICE_FAILED;
}

office_status office_to_pdf(int in_fd, const char *mime, const char *work_dir, int timeout_s,
                            int *pdf_fd, char *err, size_t errcap)
{
    if (!office_available()) {
        snprintf(err, errcap, "presentations need LibreOffice: %s", OFFICE_INSTALL_HINT);
        return OFFICE_MISSING;
    }
    char dir[1100], input[1200], output[1200];
    snprintf(dir, sizeof dir, "%s/office-XXXXXX", work_dir);
    if (!mkdtemp(dir)) {
        snprintf(err, errcap, "cannot make a work directory: %s", strerror(errno));
        return OFFICE_IO_ERROR;
    }
    snprintf(input, sizeof input, "%s/in.%s", dir, extension_for(mime));
    snprintf(output, sizeof output, "%s/in.pdf", dir);
    office_status st = copy_fd(in_fd, input) ? run_soffice(dir, input, timeout_s)
                                             : OFFICE_IO_ERROR;
    *pdf_fd = st == OFFICE_OK ? open(output, O_RDONLY | O_CLOEXEC) : -1;
    if (st == OFFICE_OK && *pdf_fd < 0) st = OFFICE_FAILED;   /* exit 0, no PDF: unreadable */
    remove_tree(dir);
    if (st == OFFICE_TIMEOUT)
        snprintf(err, errcap, "LibreOffice took longer than %d s", timeout_s);
    else if (st == OFFICE_FAILED)
        snprintf(err, errcap, "LibreOffice could not read the presentation");
    else if (st == OFFICE_MISSING)
        snprintf(err, errcap, "presentations need LibreOffice: %s", OFFICE_INSTALL_HINT);
    else if (st == OFFICE_IO_ERROR)
        snprintf(err, errcap, "cannot prepare the conversion");
    return st;
}
