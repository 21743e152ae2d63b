/* run_report.c — see run_report.h.  Built from run_report_json so the page
 * and the JSON never disagree. */
#include "web/run_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct page {
    char *buf;
    size_t len, cap;
    bool failed;
} page;

static void put(page *p, const char *s, size_t n)
{
    if (p->failed) return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = (p->cap ? p->cap * 2 : 4096) + n;
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->failed = true;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void puts_raw(page *p, const char *s) { put(p, s, strlen(s)); }

static void puts_escaped(page *p, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': puts_raw(p, "&lt;"); break;
        case '>': puts_raw(p, "&gt;"); break;
        case '&': puts_raw(p, "&amp;"); break;
        case '"': puts_raw(p, "&quot;"); break;
        case '\'': puts_raw(p, "&#39;"); break;
        default: put(p, s, 1);
        }
    }
}

/* One line of the report: a label and a JSON value shown as text. */
static void row(page *p, const char *label, const json_t *v)
{
    char text[64];
    const char *shown = text;
    if (json_is_integer(v)) snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(text, sizeof text, "%.1f", json_real_value(v));
    else if (json_is_string(v)) shown = json_string_value(v);
    else shown = "—";
    puts_raw(p, "<tr><th>");
    puts_escaped(p, label);
    puts_raw(p, "</th><td>");
    puts_escaped(p, shown);
    puts_raw(p, "</td></tr>\n");
}

static void head(page *p, const char *title)
{
    puts_raw(p, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    puts_escaped(p, title);
    puts_raw(p, "</title><link rel=\"stylesheet\" href=\"/app.css\"></head>\n"
                "<body><main class=\"report\"><h1>");
    puts_escaped(p, title);
    puts_raw(p, "</h1>\n");
}

static char *done(page *p)
{
    puts_raw(p, "</main></body></html>\n");
    if (!p->failed) return p->buf;
    free(p->buf);
    return NULL;
}

char *run_message_html(const char *title, const char *message, const char *link)
{
    page p = {0};
    head(&p, title);
    puts_raw(&p, "<p class=\"error\" role=\"alert\">");
    puts_escaped(&p, message);
    puts_raw(&p, "</p>\n");
    if (link) {
        puts_raw(&p, "<p><a href=\"");
        puts_escaped(&p, link);
        puts_raw(&p, "\">");
        puts_escaped(&p, link);
        puts_raw(&p, "</a></p>\n");
    }
    return done(&p);
}

char *run_report_html(const run_rec *r, int64_t now_ms)
{
    json_t *o = run_report_json(r, now_ms);
    if (!o) return NULL;
    const json_t *n = json_object_get(o, "counts");
    page p = {0};
    head(&p, "Run report");
    puts_raw(&p, "<table>\n");
    row(&p, "Session", json_object_get(o, "queue"));
    row(&p, "Run", json_object_get(o, "id"));
    row(&p, "State", json_object_get(o, "state"));
    row(&p, "Mode", json_object_get(o, "mode"));
    row(&p, "Timeout (s)", json_object_get(o, "timeout"));
    row(&p, "Rows read", json_object_get(n, "read"));
    row(&p, "Rows skipped", json_object_get(n, "skipped"));
    row(&p, "Rows sent", json_object_get(n, "sent"));
    row(&p, "Rows refused by the broker", json_object_get(n, "nacked"));
    row(&p, "Received", json_object_get(n, "received"));
    row(&p, "Saved", json_object_get(n, "saved"));
    row(&p, "Duplicates", json_object_get(n, "duplicates"));
    row(&p, "Database count", json_object_get(o, "table_count"));
    row(&p, "Started", json_object_get(o, "started"));
    row(&p, "Finished", json_object_get(o, "finished"));
    row(&p, "Sent per second", json_object_get(json_object_get(o, "rates"), "sent_per_second"));
    row(&p, "Received per second",
        json_object_get(json_object_get(o, "rates"), "received_per_second"));
    puts_raw(&p, "</table>\n");
    const json_t *err = json_object_get(o, "error");
    if (json_is_object(err)) {
        puts_raw(&p, "<p class=\"error\" role=\"alert\">");
        puts_escaped(&p, json_string_value(json_object_get(err, "message")));
        puts_raw(&p, " (");
        puts_escaped(&p, json_string_value(json_object_get(err, "code")));
        puts_raw(&p, ")</p>\n");
    }
    const json_t *lines = json_object_get(o, "skipped_lines");
    if (json_array_size(lines)) {
        puts_raw(&p, "<p>Skipped lines (the first ones): ");
        for (size_t i = 0; i < json_array_size(lines); i++) {
            char t[32];
            snprintf(t, sizeof t, "%s%lld", i ? ", " : "",
                     (long long)json_integer_value(json_array_get(lines, i)));
            puts_raw(&p, t);
        }
        puts_raw(&p, "</p>\n");
    }
    json_decref(o);
    return done(&p);
}
