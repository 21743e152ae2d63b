/* amqp_conn.c — see amqp_conn.h. */
#include "events/amqp_conn.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The channel a connection publishes or consumes on; the second one asks
 * about queues (a passive declare) without waiting behind deliveries. */
#define CHANNEL 1
#define INFO_CHANNEL 2
/* Frames read by one amqp_conn_confirms() call at most: the caller's loop
 * must come back to publish (and notice a stop) in bounded time. */
#define FRAMES_PER_CALL 4096

struct amqp_conn {
    amqp_connection_state_t st;
    bool dead;            /* an error happened: only close() is left */
    bool info_open;       /* INFO_CHANNEL is open */
    uint64_t next_tag;    /* the delivery tag the next publish gets */
};

/* ---------- URLs ---------- */

static bool copy_part(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

bool amqp_conn_parse_url(const char *url, amqp_conn_url *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    /* amqp_parse_url decodes in place: work on a copy, wiped after (it
     * holds the password). */
    size_t n = strlen(url);
    char *buf = n < 2048 ? malloc(n + 1) : NULL;
    if (!buf) {
        snprintf(why, cap, "the AMQP URL is too long");
        return false;
    }
    memcpy(buf, url, n + 1);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    bool ok = false;
    if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK)
        snprintf(why, cap, "the AMQP URL does not parse (amqp://USER:PASSWORD@HOST:PORT/VHOST)");
    else if (ci.ssl)
        snprintf(why, cap, "amqps:// (TLS) is not supported; use amqp://");
    else if (ci.port <= 0 || ci.port > 65535)
        snprintf(why, cap, "the AMQP URL's port must be from 1 to 65535");
    else if (!copy_part(out->user, sizeof out->user, ci.user) ||
             !copy_part(out->password, sizeof out->password, ci.password) ||
             !copy_part(out->host, sizeof out->host, ci.host) ||
             !copy_part(out->vhost, sizeof out->vhost, ci.vhost))
        snprintf(why, cap, "a part of the AMQP URL is too long");
    else
        ok = true;
    /* "amqp://host/" names the empty vhost, which no broker has: the
     * default one is what such a URL means in practice. */
    if (ok && !*out->vhost) strcpy(out->vhost, "/");
    out->port = ci.port;
    memset(buf, 0, n);
    free(buf);
    if (!ok) memset(out, 0, sizeof *out);
    return ok;
}

/* Percent-encodes all but RFC 3986's unreserved characters. */
static size_t encode(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

void amqp_conn_url_masked(const amqp_conn_url *u, char *out, size_t cap)
{
    char user[3 * sizeof u->user], host[3 * sizeof u->host], vhost[3 * sizeof u->vhost];
    encode(user, sizeof user, u->user);
    /* a name or an address, as written; an IPv6 address in brackets */
    snprintf(host, sizeof host, strchr(u->host, ':') ? "[%s]" : "%s", u->host);
    encode(vhost, sizeof vhost, u->vhost);
    snprintf(out, cap, "amqp://%s%s@%s:%d/%s", user, *u->password ? ":***" : "", host, u->port,
             vhost);
}

/* ---------- errors ---------- */

/* The text of a failed RPC; the connection is dead after any of them. */
static void describe(amqp_rpc_reply_t r, const char *what, char *why, size_t cap)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(why, cap, "%s: ok", what);
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, cap, "%s: %s", what, amqp_error_string2(r.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(why, cap, "%s: the broker closed the connection: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(why, cap, "%s: the broker closed the channel: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(why, cap, "%s: unexpected method 0x%08x from the broker", what,
                     (unsigned)r.reply.id);
        }
        return;
    default:
        snprintf(why, cap, "%s: no reply", what);
    }
}

static bool rpc_ok(amqp_conn *c, const char *what, char *why, size_t cap)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->st);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
    describe(r, what, why, cap);
    c->dead = true;
    return false;
}

/* ---------- connection ---------- */

amqp_conn *amqp_conn_open(const amqp_conn_url *u, int timeout_ms, bool confirms, char *why,
                          size_t cap)
{
    amqp_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->st = amqp_new_connection())) {
        snprintf(why, cap, "out of memory");
        free(c);
        return NULL;
    }
    c->next_tag = 1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_socket_t *s = amqp_tcp_socket_new(c->st);
    int rc = s ? amqp_socket_open_noblock(s, u->host, u->port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, cap, "connect: %s", amqp_error_string2(rc));
        c->dead = true;
        amqp_conn_close(c);
        return NULL;
    }
    /* Bounded RPCs: a broker that accepts the socket and then says nothing
     * must not hold the thread.  Heartbeats stay off (0): rabbitmq-c only
     * services them inside its own calls, and the caller may sit in poll();
     * it bounds the wait for confirmations itself instead. */
    amqp_set_handshake_timeout(c->st, &tv);
    amqp_set_rpc_timeout(c->st, &tv);
    amqp_rpc_reply_t r = amqp_login(c->st, u->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                                    AMQP_SASL_METHOD_PLAIN, u->user, u->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe(r, "login", why, cap);
        c->dead = true;
        amqp_conn_close(c);
        return NULL;
    }
    amqp_channel_open(c->st, CHANNEL);
    if (!rpc_ok(c, "channel.open", why, cap)) goto fail;
    if (confirms) {
        amqp_confirm_select(c->st, CHANNEL);
        if (!rpc_ok(c, "confirm.select", why, cap)) goto fail;
    }
    amqp_maybe_release_buffers(c->st);
    return c;
fail:
    amqp_conn_close(c);
    return NULL;
}

bool amqp_conn_declare_exchange(amqp_conn *c, const char *name, const char *type, bool durable,
                                char *why, size_t cap)
{
    amqp_exchange_declare(c->st, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0,
                          durable, 0, 0, amqp_empty_table);
    bool ok = rpc_ok(c, "exchange.declare", why, cap);
    amqp_maybe_release_buffers(c->st);
    return ok;
}

bool amqp_conn_publish(amqp_conn *c, const amqp_conn_message *m, uint64_t *tag, char *why,
                       size_t cap)
{
    if (c->dead) {
        snprintf(why, cap, "publish: the connection is closed");
        return false;
    }
    amqp_basic_properties_t p = {0};
    if (m->content_type) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = amqp_cstring_bytes(m->content_type);
    }
    if (m->message_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(m->message_id);
    }
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = m->persistent ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT;
    amqp_bytes_t body = {m->len, (void *)m->body};
    int rc = amqp_basic_publish(c->st, CHANNEL, amqp_cstring_bytes(m->exchange),
                                amqp_cstring_bytes(m->routing_key), 0, 0, &p, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, cap, "publish: %s", amqp_error_string2(rc));
        c->dead = true;
        return false;
    }
    /* Invariant: in confirm mode the broker numbers publishes on the
     * channel from 1 in the order sent, so the tag is a count, not a reply. */
    *tag = c->next_tag++;
    return true;
}

int amqp_conn_fd(const amqp_conn *c)
{
    return amqp_get_sockfd(c->st);
}

bool amqp_conn_buffered(const amqp_conn *c)
{
    return amqp_frames_enqueued(c->st) || amqp_data_in_buffer(c->st);
}

/* The broker closed the channel or the connection: say why, answer with
 * the close-ok it waits for, and mark the connection dead. */
static void closed_by_broker(amqp_conn *c, const amqp_frame_t *f, char *why, size_t cap)
{
    amqp_method_number_t id = f->payload.method.id;
    if (id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "the broker closed the channel: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(c->st, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "the broker closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(c->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    c->dead = true;
}

int amqp_conn_confirms(amqp_conn *c, int wait_ms, amqp_conn_confirm_fn fn, void *arg, char *why,
                       size_t cap)
{
    if (c->dead) {
        snprintf(why, cap, "the connection is closed");
        return -1;
    }
    struct timeval first = {wait_ms / 1000, (wait_ms % 1000) * 1000}, none = {0, 0};
    int n = 0;
    for (int i = 0; i < FRAMES_PER_CALL; i++) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(c->st, &f, i == 0 ? &first : &none);
        if (rc == AMQP_STATUS_TIMEOUT) break;
        if (rc != AMQP_STATUS_OK) {
            snprintf(why, cap, "%s", amqp_error_string2(rc));
            c->dead = true;
            return -1;
        }
        /* Only methods matter to a publisher; there is no consumer on
         * this channel, so no content frames come. */
        if (f.frame_type != AMQP_FRAME_METHOD) continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            fn(arg, a->delivery_tag, a->multiple, true);
            n++;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *a = f.payload.method.decoded;
            fn(arg, a->delivery_tag, a->multiple, false);
            n++;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            closed_by_broker(c, &f, why, cap);
            amqp_maybe_release_buffers(c->st);
            return -1;
        default:
            break;   /* basic.return needs mandatory, which we never set */
        }
        amqp_maybe_release_buffers(c->st);
    }
    return n;
}

/* ---------- queues ---------- */

static bool usable(amqp_conn *c, const char *what, char *why, size_t cap)
{
    if (c->dead) snprintf(why, cap, "%s: the connection is closed", what);
    return !c->dead;
}

bool amqp_conn_declare_queue(amqp_conn *c, const char *name, int64_t expires_ms, char *why,
                             size_t cap)
{
    if (!usable(c, "queue.declare", why, cap)) return false;
    amqp_table_entry_t arg = {.key = amqp_cstring_bytes("x-expires"),
                              .value = {.kind = AMQP_FIELD_KIND_I64, .value = {.i64 = expires_ms}}};
    amqp_table_t args = {1, &arg};
    amqp_queue_declare(c->st, CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    bool ok = rpc_ok(c, "queue.declare", why, cap);
    amqp_maybe_release_buffers(c->st);
    return ok;
}

bool amqp_conn_delete_queue(amqp_conn *c, const char *name, char *why, size_t cap)
{
    if (!usable(c, "queue.delete", why, cap)) return false;
    amqp_queue_delete(c->st, CHANNEL, amqp_cstring_bytes(name), 0, 0);
    bool ok = rpc_ok(c, "queue.delete", why, cap);
    amqp_maybe_release_buffers(c->st);
    return ok;
}

bool amqp_conn_queue_ready(amqp_conn *c, const char *name, uint32_t *ready, char *why,
                           size_t cap)
{
    if (!usable(c, "queue.declare", why, cap)) return false;
    if (!c->info_open) {
        amqp_channel_open(c->st, INFO_CHANNEL);
        if (!rpc_ok(c, "channel.open", why, cap)) return false;
        c->info_open = true;
    }
    /* Deliveries for CHANNEL that arrive meanwhile are queued by
     * rabbitmq-c and read by the next amqp_conn_deliveries. */
    amqp_queue_declare_ok_t *r = amqp_queue_declare(c->st, INFO_CHANNEL,
                                                    amqp_cstring_bytes(name), 1, 0, 0, 0,
                                                    amqp_empty_table);
    if (!rpc_ok(c, "queue.declare passive", why, cap)) return false;
    *ready = r->message_count;
    return true;
}

/* ---------- consuming ---------- */

bool amqp_conn_consume(amqp_conn *c, const char *queue, uint16_t prefetch, char *why, size_t cap)
{
    if (!usable(c, "basic.consume", why, cap)) return false;
    amqp_basic_qos(c->st, CHANNEL, 0, prefetch, 0);
    if (!rpc_ok(c, "basic.qos", why, cap)) return false;
    amqp_basic_consume(c->st, CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    return rpc_ok(c, "basic.consume", why, cap);
}

/* A frame that is not a delivery came while consuming: a close ends the
 * connection; a consumer cancelled by the broker (its queue was deleted)
 * leaves nothing to read, so it ends it too. */
static bool other_frame(amqp_conn *c, char *why, size_t cap)
{
    amqp_frame_t f;
    struct timeval tv = {1, 0};
    int rc = amqp_simple_wait_frame_noblock(c->st, &f, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, cap, "%s", amqp_error_string2(rc));
        c->dead = true;
        return false;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) return true;
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        closed_by_broker(c, &f, why, cap);
        return false;
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(why, cap, "the broker cancelled the consumer (its queue was deleted)");
        c->dead = true;
        return false;
    default:
        return true;
    }
}

int amqp_conn_deliveries(amqp_conn *c, int wait_ms, int max, amqp_conn_delivery_fn fn, void *arg,
                         char *why, size_t cap)
{
    if (!usable(c, "consume", why, cap)) return -1;
    struct timeval first = {wait_ms / 1000, (wait_ms % 1000) * 1000}, none = {0, 0};
    int n = 0;
    while (n < max) {
        amqp_envelope_t env;
        amqp_maybe_release_buffers(c->st);
        amqp_rpc_reply_t r = amqp_consume_message(c->st, &env, n == 0 ? &first : &none, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            const amqp_basic_properties_t *p = &env.message.properties;
            bool has_id = p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG;
            fn(arg, env.delivery_tag, env.message.body.bytes, env.message.body.len,
               has_id ? p->message_id.bytes : NULL, has_id ? p->message_id.len : 0);
            amqp_destroy_envelope(&env);
            n++;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            break;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (!other_frame(c, why, cap)) return -1;
            continue;
        }
        describe(r, "consume", why, cap);
        c->dead = true;
        return -1;
    }
    return n;
}

bool amqp_conn_ack(amqp_conn *c, uint64_t tag, bool multiple, char *why, size_t cap)
{
    if (!usable(c, "basic.ack", why, cap)) return false;
    int rc = amqp_basic_ack(c->st, CHANNEL, tag, multiple);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, cap, "basic.ack: %s", amqp_error_string2(rc));
        c->dead = true;
        return false;
    }
    return true;
}

void amqp_conn_close(amqp_conn *c)
{
    if (!c) return;
    if (!c->dead) amqp_connection_close(c->st, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c->st);
    free(c);
}
