/* webhooks.c — see webhooks.h. */
#include "events/webhooks.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAN_IN_BATCH 256
#define RESPONSE_MAX (64 * 1024)

struct webhooks {
    db *db;
    webhooks_config cfg;
    CURLM *multi;
    pthread_t thread;
    _Atomic bool stopping;
    int in_flight;
    struct transfer *transfers;   /* in flight, for webhooks_stop() */
};

/* One attempt in flight. */
typedef struct transfer {
    webhooks *w;
    CURL *easy;
    struct curl_slist *headers;
    char id[DELIVERY_ID_LEN + 1];
    char webhook_id[WEBHOOK_ID_LEN + 1];
    int attempts;              /* before this one */
    int64_t created_ms;
    char *body;
    size_t received;
    bool address_refused;
    struct transfer *prev, *next;
} transfer;

static void track(webhooks *w, transfer *t)
{
    t->next = w->transfers;
    if (t->next) t->next->prev = t;
    w->transfers = t;
    w->in_flight++;
}

static void untrack(webhooks *w, transfer *t)
{
    if (t->prev) t->prev->next = t->next;
    else w->transfers = t->next;
    if (t->next) t->next->prev = t->prev;
    w->in_flight--;
}

/* ---------- one transfer ---------- */

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    transfer *t = arg;
    t->received += size * n;
    return t->received > RESPONSE_MAX ? 0 : size * n;   /* 0 aborts: we do not need it */
}

/* The connect-time check: DNS has been resolved, this is the address. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    transfer *t = arg;
    if (!webhook_address_allowed(&addr->addr, t->w->cfg.allow_local)) {
        t->address_refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void transfer_free(transfer *t)
{
    curl_slist_free_all(t->headers);
    if (t->easy) curl_easy_cleanup(t->easy);
    free(t->body);
    free(t);
}

static bool add_header(transfer *t, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *next = curl_slist_append(t->headers, line);
    if (next) t->headers = next;
    return next != NULL;
}

static bool prepare(transfer *t, const db_delivery_due *d)
{
    char ts[24], sig[96];
    int64_t now_s = time_now_ms() / 1000;
    snprintf(ts, sizeof ts, "%lld", (long long)now_s);
    size_t len = strlen(d->payload);
    if (!(t->body = strdup(d->payload)) ||
        !webhook_sign(d->secret, d->id, now_s, t->body, len, sig, sizeof sig) ||
        !add_header(t, "Content-Type", "application/json") || !add_header(t, "webhook-id", d->id) ||
        !add_header(t, "webhook-timestamp", ts) || !add_header(t, "webhook-signature", sig) ||
        !add_header(t, "User-Agent", "assetd-webhooks/" ASSETD_VERSION) ||
        !(t->easy = curl_easy_init()))
        return false;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, d->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, t->w->cfg.timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, t->w->cfg.timeout_s);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* A proxy would hide the target's address from the check above. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    return true;
}

static void start_one(void *arg, const db_delivery_due *d)
{
    webhooks *w = arg;
    transfer *t = calloc(1, sizeof *t);
    if (!t) return;   /* the lease expires and it comes back */
    t->w = w;
    snprintf(t->id, sizeof t->id, "%s", d->id);
    snprintf(t->webhook_id, sizeof t->webhook_id, "%s", d->webhook_id);
    t->attempts = d->attempts;
    t->created_ms = d->created_ms;
    if (!prepare(t, d) || curl_multi_add_handle(w->multi, t->easy) != CURLM_OK) {
        log_warn("webhook delivery could not start", "delivery", d->id, NULL);
        transfer_free(t);
        return;
    }
    track(w, t);
}

/* ---------- outcomes ---------- */

static void record(webhooks *w, transfer *t, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    char error[256] = "";
    bool delivered = rc == CURLE_OK && status >= 200 && status < 300;
    if (t->address_refused)
        snprintf(error, sizeof error, "the target address is loopback or link-local");
    else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && status))
        snprintf(error, sizeof error, "%s", curl_easy_strerror(rc));
    else if (!delivered)
        snprintf(error, sizeof error, "HTTP %ld", status);
    if (rc == CURLE_WRITE_ERROR && status >= 200 && status < 300) delivered = true;

    int64_t now = time_now_ms();
    int64_t next = now + webhook_retry_delay_ms(t->attempts + 1, w->cfg.retry_base_ms);
    bool give_up = !delivered && next - t->created_ms > w->cfg.retry_window_ms;
    delivery_state state = delivered ? DELIVERY_DELIVERED
                           : give_up ? DELIVERY_FAILED
                                     : DELIVERY_PENDING;
    if (delivered) fault_point("webhook.sent");   /* the target has it; we do not know yet */
    char reason[320];
    snprintf(reason, sizeof reason, "deliveries failed for the whole retry window (last: %s)",
             error);
    db_conn *c = db_acquire(w->db);
    if (!c || db_webhook_delivery_done(c, t->id, t->webhook_id, state, (int)status,
                                       delivered ? NULL : error, next, now,
                                       give_up ? reason : NULL) != DB_OK)
        log_warn("webhook outcome not recorded; it will be sent again", "delivery", t->id, NULL);
    db_release(w->db, c);
    if (give_up)
        log_warn("webhook endpoint disabled", "webhook", t->webhook_id, "error", error, NULL);
}

static void collect_finished(webhooks *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(w->multi, m->easy_handle);
        record(w, t, rc);
        untrack(w, t);
        transfer_free(t);
    }
}

/* ---------- the thread ---------- */

static void fan_in_and_start(webhooks *w)
{
    db_conn *c = db_acquire(w->db);
    if (!c) return;
    int created, n, batches = 0;
    while (batches++ < 16 && db_webhook_fan_in(c, time_now_ms(), FAN_IN_BATCH, &created) == DB_OK) {}
    int room = w->cfg.max_in_flight - w->in_flight;
    int64_t lease = (w->cfg.timeout_s + 30) * 1000;
    if (room > 0) db_webhook_due(c, time_now_ms(), lease, room, start_one, w, &n);
    db_release(w->db, c);
}

static void *run(void *arg)
{
    webhooks *w = arg;
    while (!atomic_load(&w->stopping)) {
        fan_in_and_start(w);
        int running;
        curl_multi_perform(w->multi, &running);
        collect_finished(w);
        curl_multi_poll(w->multi, NULL, 0, w->cfg.poll_ms, NULL);
    }
    return NULL;
}

webhooks *webhooks_start(db *d, const webhooks_config *cfg, const char **err)
{
    webhooks *w = calloc(1, sizeof *w);
    if (!w || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(w->multi = curl_multi_init())) {
        *err = "cannot initialise libcurl";
        free(w);
        return NULL;
    }
    w->db = d;
    w->cfg = *cfg;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        *err = "cannot start the webhook thread";
        curl_multi_cleanup(w->multi);
        free(w);
        return NULL;
    }
    return w;
}

void webhooks_poke(webhooks *w)
{
    if (w) curl_multi_wakeup(w->multi);
}

void webhooks_stop(webhooks *w)
{
    if (!w) return;
    atomic_store(&w->stopping, true);
    webhooks_poke(w);
    pthread_join(w->thread, NULL);
    while (w->transfers) {
        transfer *t = w->transfers;
        curl_multi_remove_handle(w->multi, t->easy);
        untrack(w, t);
        transfer_free(t);
    }
    curl_multi_cleanup(w->multi);
    curl_global_cleanup();
    free(w);
}
