/* amqp_conn.h — one connection to an AMQP 0-9-1 broker (RabbitMQ) over
 * rabbitmq-c: a publisher with publisher confirms, or a consumer.
 *
 * What it is for: a thread that owns the connection publishes a stream of
 * messages and must know which ones the broker has taken responsibility
 * for.  The connection opens one channel in confirm mode (confirm.select);
 * from then on the broker numbers the channel's publishes 1, 2, 3, ... (the
 * delivery tags) and answers each with basic.ack or basic.nack, possibly
 * for many at once (the `multiple` flag: every tag up to this one).  The
 * caller keeps a window of unconfirmed publishes and reads the answers with
 * amqp_conn_confirms(); rabbitmq-c 0.11 has no confirm wait of its own, so
 * this module reads frames one by one and hands each ack/nack over.
 *
 * Failure model: any error (socket, protocol, a channel or connection
 * closed by the broker) makes the connection dead for good; the caller
 * drops it (amqp_conn_close) and opens a new one, whose delivery tags start
 * at 1 again.  Unconfirmed publishes of a dead connection are unknown: the
 * caller sends them again (at least once).
 *
 * Credentials: the URL's password is kept for the login only.  Every text
 * this module produces (errors, amqp_conn_url_masked) shows the URL with
 * its password replaced by "***"; the raw URL is never echoed, not even
 * when it does not parse.
 *
 * Blocking: every call may block on the network, bounded by the timeouts
 * given (connect, login, RPCs, a send).  Use it from a thread of its own.
 * Not thread-safe: one thread per connection.
 */
#ifndef ASSETD_AMQP_CONN_H
#define ASSETD_AMQP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed amqp://user:pass@host:port/vhost URL (percent-escapes decoded;
 * the vhost of "amqp://h/" or "amqp://h" is "/"). */
typedef struct amqp_conn_url {
    char user[128];
    char password[128];
    char host[256];
    char vhost[128];
    int port;
} amqp_conn_url;

/* Parses url into *out.  false with why set (never quoting the URL) if it
 * does not parse, is amqps:// (not supported), or a part is too long. */
bool amqp_conn_parse_url(const char *url, amqp_conn_url *out, char *why, size_t cap);
/* "amqp://USER:***@HOST:PORT/VHOST" (the vhost percent-encoded), for logs. */
void amqp_conn_url_masked(const amqp_conn_url *u, char *out, size_t cap);

typedef struct amqp_conn amqp_conn;

/* Connects, logs in, opens channel 1 and, for a publisher (confirms),
 * selects confirm mode.  Each network step is bounded by timeout_ms.  NULL
 * with why set on failure. */
amqp_conn *amqp_conn_open(const amqp_conn_url *u, int timeout_ms, bool confirms, char *why,
                          size_t cap);
/* Declares a topic/direct/fanout exchange (durable: survives a broker
 * restart).  false with why set; the connection is then dead. */
bool amqp_conn_declare_exchange(amqp_conn *c, const char *name, const char *type, bool durable,
                                char *why, size_t cap);

typedef struct amqp_conn_message {
    const char *exchange;
    const char *routing_key;
    const void *body;
    size_t len;
    const char *content_type;   /* may be NULL */
    const char *message_id;     /* may be NULL */
    bool persistent;            /* delivery_mode 2: written to disk by a durable queue */
} amqp_conn_message;

/* Publishes m; *tag is its delivery tag (1, 2, ... on this connection).
 * false with why set: the connection is dead. */
bool amqp_conn_publish(amqp_conn *c, const amqp_conn_message *m, uint64_t *tag, char *why,
                       size_t cap);

/* A confirmation: ack (the broker has the message; persistent ones are on
 * disk) or nack, of `tag` alone or, with multiple, of every tag up to it. */
typedef void (*amqp_conn_confirm_fn)(void *arg, uint64_t tag, bool multiple, bool ack);

/* The socket, for poll(): readable means amqp_conn_confirms has work. */
int amqp_conn_fd(const amqp_conn *c);
/* Whether frames are already buffered (poll would not see them). */
bool amqp_conn_buffered(const amqp_conn *c);
/* Reads the frames that are ready (waiting at most wait_ms for the first)
 * and calls fn for each confirmation.  Returns the number of confirmations
 * read, or -1 with why set if the connection died (closed by the broker:
 * why gives its reply code and text). */
int amqp_conn_confirms(amqp_conn *c, int wait_ms, amqp_conn_confirm_fn fn, void *arg, char *why,
                       size_t cap);

/* ---- Queues (durable: they and their persistent messages survive a
 * broker restart).  Each is an RPC; false with why set: the connection is
 * dead. ---- */
/* Declares a durable queue that the broker deletes by itself once nobody
 * used it for expires_ms (x-expires), so a queue its owner could not
 * delete does not stay forever. */
bool amqp_conn_declare_queue(amqp_conn *c, const char *name, int64_t expires_ms, char *why,
                             size_t cap);
bool amqp_conn_delete_queue(amqp_conn *c, const char *name, char *why, size_t cap);
/* The messages ready in a queue (not counting those delivered and not yet
 * acked).  Asked on a second channel, so it works while consuming. */
bool amqp_conn_queue_ready(amqp_conn *c, const char *name, uint32_t *ready, char *why,
                           size_t cap);

/* ---- Consuming (a connection opened without confirms) ---- */
/* Starts a consumer on the queue with manual acks and at most prefetch
 * unacked deliveries. */
bool amqp_conn_consume(amqp_conn *c, const char *queue, uint16_t prefetch, char *why, size_t cap);
/* A delivery: borrowed bytes, valid during the call. */
typedef void (*amqp_conn_delivery_fn)(void *arg, uint64_t tag, const void *body, size_t len,
                                      const char *message_id, size_t message_id_len);
/* Reads up to max deliveries that are ready (waiting at most wait_ms for
 * the first).  Returns how many, or -1 with why set if the connection or
 * channel died (the broker closed it, or cancelled the consumer because
 * its queue was deleted). */
int amqp_conn_deliveries(amqp_conn *c, int wait_ms, int max, amqp_conn_delivery_fn fn, void *arg,
                         char *why, size_t cap);
/* Acknowledges tag, or with multiple every delivery up to it. */
bool amqp_conn_ack(amqp_conn *c, uint64_t tag, bool multiple, char *why, size_t cap);

/* Closes politely if the connection is alive, then frees it.  NULL is a no-op. */
void amqp_conn_close(amqp_conn *c);

#endif
