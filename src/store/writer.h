/* writer.h — appending to a file (or any sink) from a second thread.
 *
 * A large upload is received, hashed and written by one HTTP thread, and the
 * write (the copy into the page cache) is the biggest part of that work.  A
 * file_writer moves it to a thread of its own: the caller's bytes are copied
 * into a bounded ring (a cheap memcpy) and the writer thread drains the ring
 * into the file, so receiving and writing run on two cores.  When the ring
 * is full, file_writer_append() waits: memory stays bounded at RING_BYTES
 * per writer, and a slow disk slows the client down, as a blocking write
 * would.
 *
 * Writer threads are a shared budget (`slots`, owned by the caller): when it
 * is spent, file_writer_start() returns NULL and the caller writes inline.
 *
 * file_append() is the one place bytes reach the file, inline or from the
 * writer thread: it also starts writeback every few MiB (sync_file_range),
 * so the disk works during the upload and the final fsync is short.
 */
#ifndef ASSETD_WRITER_H
#define ASSETD_WRITER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct file_writer file_writer;

/* Where a file stands: bytes written, bytes handed to writeback.  With
 * sync_every > 0 the writer thread also makes the file durable (fdatasync)
 * each time that many more bytes are written, while the next ones arrive:
 * a commit's fsync then waits for the last few MiB, not for all. */
typedef struct file_pos {
    off_t written, flushed;
    off_t sync_every, synced;
} file_pos;

/* Writes all of data at the end of fd; false on an I/O error (errno set). */
bool file_append(int fd, file_pos *pos, const void *data, size_t len);

/* Takes one slot from *slots (NULL if none is left, or on failure).  From
 * then on only the writer touches fd's data and *pos until finish. */
file_writer *file_writer_start(int fd, file_pos *pos, _Atomic int *slots);
/* The same machinery for any sink (an S3 multipart upload): the writer
 * thread hands the ring's bytes to sink in order, in pieces of at most
 * 1 MiB; a false return (errno set) fails the writer. */
typedef bool (*writer_sink)(void *arg, const void *data, size_t len);
file_writer *writer_start(writer_sink sink, void *arg, _Atomic int *slots);
/* Copies data into the ring; false if an earlier write failed (errno set). */
bool file_writer_append(file_writer *w, const void *data, size_t len);
/* Drains the ring, stops the thread, returns the slot, frees w.  False if
 * any write failed (errno set). */
bool file_writer_finish(file_writer *w);

#endif
