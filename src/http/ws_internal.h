/* ws_internal.h — what websocket.c and ws_conn.c share: the two structs and
 * the ws thread's per-connection functions.  Not for other modules: they see
 * websocket.h only.
 *
 * websocket.c owns the server (its thread, the loop, the mailboxes other
 * threads fill, the hand-over); ws_conn.c owns one connection's life on the
 * ws thread (libwslay, writing, closing, timers).  The threads-and-ownership
 * rules are written atop websocket.c; every ws_conn_* function below runs on
 * the ws thread, except ws_conn_new/free/take_socket/release_socket, which
 * also run on an HTTP thread before the connection reaches the ws thread or
 * after that thread is gone. */
#ifndef ASSETD_WS_INTERNAL_H
#define ASSETD_WS_INTERNAL_H

#include "http/websocket.h"
#include "http/ws_outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <wslay/wslay.h>

#define SWEEP_MS 1000          /* timer resolution */
#define STOP_GRACE_MS 1000     /* how long ws_server_stop waits for close replies */
#define LINGER_READS 64        /* reads per wakeup while draining a closing socket */
#define REASON_MAX 123         /* RFC 6455: a close frame's payload is at most 125 bytes */

typedef enum { CONN_OPEN, CONN_CLOSING, CONN_LINGER } conn_state;

struct ws_conn {
    ws_server *srv;
    const ws_handler *h;
    void *arg;

    /* Set by the hand-over, then the ws thread's. */
    http_upgraded *up;             /* NULL: the switch never happened */
    int fd;
    bool own_fd;                   /* fd is our duplicate; up was handed back */
    uint8_t hdr[16];               /* a frame header waiting for its payload */
    size_t hdr_len;
    char *extra;                   /* bytes read by libmicrohttpd past the request */
    size_t extra_len, extra_off;
    ws_conn *inbox_next;

    /* The ws thread's alone. */
    wslay_event_context_ptr ws;
    bool ws_read, ws_write, ws_close_sent;   /* libwslay's state: wslay_look() */
    conn_state state;
    uint32_t events;               /* the epoll mask registered */
    bool failed;                   /* libwslay could not queue: end at once */
    bool recv_failed;              /* on_wslay_recv reported EOF or an error */
    bool proto_error;              /* the client broke the protocol: its close is 1002 */
    uint8_t proto_close_off;       /* bytes of that 1002 frame written (on_wslay_send) */
    uint16_t pending_code;         /* a close waiting for queued messages to go out */
    char *pending_reason;
    ws_outbox sending;             /* messages being written */
    uint64_t heard_ms, pinged_ms, deadline_ms;
    ws_conn *prev, *next;          /* the server's connections */

    /* Shared with other threads: under lock. */
    pthread_mutex_t lock;
    bool accepting;                /* ws_conn_send_* may queue */
    bool in_ready;                 /* on the server's ready list */
    ws_conn *ready_next;           /* (the list itself is under the server's lock) */
    ws_outbox queued;              /* messages the ws thread has not taken yet */
    uint16_t close_code;           /* a close request not yet taken; 0: none */
    bool close_first;              /* ...to go ahead of queued messages (1013) */
    char *close_reason;

    _Atomic size_t queued_bytes;   /* payload in queued + sending */
    _Atomic unsigned queued_count; /* messages in queued: read by the ws thread without the lock */
};

struct ws_server {
    ws_config cfg;
    int epfd, wakefd;
    pthread_t thread;
    _Atomic int nconns;

    pthread_mutex_t lock;
    int refs;                      /* the owner + one per handshake in flight */
    bool stopping;                 /* ws_server_stop() has begun */
    bool thread_done;              /* the ws thread takes no more hand-overs */
    ws_conn *inbox;
    ws_conn *ready_head, *ready_tail;

    /* The ws thread's alone. */
    ws_conn *conns;
    bool stop_begun;
    uint64_t now_ms;               /* the loop's clock, read once per wakeup */
    char scratch[4096];            /* where lingering input is read and dropped */
};

/* websocket.c */
ws_conn *ws_conn_new(ws_server *s, const ws_handler *h, void *arg);
void ws_conn_free(ws_conn *c);
/* A copy of reason cut to REASON_MAX bytes without splitting a UTF-8
 * sequence; NULL for none or out of memory.  The caller frees it. */
char *ws_reason_copy(const char *reason);

/* ws_conn.c */
void ws_conn_register(ws_server *s, ws_conn *c);        /* a hand-over joins the epoll set */
void ws_conn_io(ws_server *s, ws_conn *c, uint32_t events);
void ws_conn_take_requests(ws_server *s, ws_conn *c);   /* c was on the ready list */
void ws_conn_tick(ws_server *s, ws_conn *c);            /* once a sweep: deadlines, pings */
void ws_conn_stop(ws_server *s, ws_conn *c);            /* the server stops: 1001 */
void ws_conn_teardown(ws_server *s, ws_conn *c);        /* the end: on_close, then freed */
void ws_conn_take_socket(ws_conn *c);
void ws_conn_release_socket(ws_conn *c);

#endif
