#include "test.h"
#include "store/writer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(writer_thread_writes_every_byte_in_order)
{
    char path[] = "/tmp/assetd-writer-XXXXXX";
    int fd = mkstemp(path);
    _Atomic int slots = 1;
    file_pos pos = {.sync_every = 6 << 20};   /* durable as it goes, as a tus PATCH */
    file_writer *w = file_writer_start(fd, &pos, &slots);
    CHECK(w != NULL && slots == 0);
    CHECK(file_writer_start(fd, &pos, &slots) == NULL);   /* budget spent */
    /* 20 MiB in odd-sized pieces: wraps the 8 MiB ring several times. */
    static unsigned char chunk[65537];
    size_t total = 0;
    for (int i = 0; total < (20u << 20); i++) {
        for (size_t j = 0; j < sizeof chunk; j++) chunk[j] = (unsigned char)((total + j) * 31 % 251);
        CHECK(file_writer_append(w, chunk, sizeof chunk));
        total += sizeof chunk;
    }
    CHECK(file_writer_finish(w));
    CHECK(slots == 1 && pos.written == (off_t)total);
    /* made durable at least every 6 MiB: no more than that is left to fsync */
    CHECK(pos.synced >= (off_t)(18u << 20) && pos.written - pos.synced < (off_t)(6u << 20));
    unsigned char back[65537];
    size_t seen = 0, bad = 0;
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, back, sizeof back)) > 0) {
        for (ssize_t j = 0; j < n; j++) bad += back[j] != (unsigned char)((seen + (size_t)j) * 31 % 251);
        seen += (size_t)n;
    }
    CHECK(seen == total && bad == 0);
    close(fd);
    unlink(path);
}

TEST(writer_reports_write_errors)
{
    char path[] = "/tmp/assetd-writer-XXXXXX";
    int fd = mkstemp(path);
    int ro = open(path, O_RDONLY);   /* writes to it fail with EBADF */
    _Atomic int slots = 1;
    file_pos pos = {0};
    file_writer *w = file_writer_start(ro, &pos, &slots);
    static char data[1 << 20];
    bool ok = true;
    for (int i = 0; i < 32 && ok; i++) ok = file_writer_append(w, data, sizeof data);
    CHECK(!ok);                      /* 32 MiB > the ring: the producer saw it */
    CHECK(!file_writer_finish(w));   /* and finish reports it too */
    CHECK(slots == 1);
    close(ro);
    close(fd);
    unlink(path);
}
