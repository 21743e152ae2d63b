/* AMQP URLs (events/amqp_conn.h): parsed into their parts, masked for logs,
 * refused without ever quoting the password. */
#include "test.h"
#include "events/amqp_conn.h"

TEST(amqp_url_parses_into_its_parts)
{
    amqp_conn_url u;
    char why[160];
    CHECK(amqp_conn_parse_url("amqp://alice:s3cr%40t@mq.example:5673/prod", &u, why, sizeof why));
    CHECK_STR(u.user, "alice");
    CHECK_STR(u.password, "s3cr@t");   /* percent-escapes decoded */
    CHECK_STR(u.host, "mq.example");
    CHECK_STR(u.vhost, "prod");
    CHECK(u.port == 5673);
    /* the default vhost, spelled each way, and the default port */
    const char *slash[] = {"amqp://guest:guest@127.0.0.1:5672/%2f", "amqp://guest:guest@127.0.0.1/",
                           "amqp://guest:guest@127.0.0.1", NULL};
    for (int i = 0; slash[i]; i++) {
        CHECK(amqp_conn_parse_url(slash[i], &u, why, sizeof why));
        CHECK_STR(u.vhost, "/");
        CHECK(u.port == 5672);
    }
}

TEST(amqp_url_masked_hides_the_password_only)
{
    amqp_conn_url u;
    char why[160], out[600];
    CHECK(amqp_conn_parse_url("amqp://alice:hunter2@mq:5672/%2f", &u, why, sizeof why));
    amqp_conn_url_masked(&u, out, sizeof out);
    CHECK_STR(out, "amqp://alice:***@mq:5672/%2F");
    CHECK(!strstr(out, "hunter2"));
    /* reserved characters in the user and vhost stay escaped */
    CHECK(amqp_conn_parse_url("amqp://a%2Fb:pw@mq:1/v%20h", &u, why, sizeof why));
    amqp_conn_url_masked(&u, out, sizeof out);
    CHECK_STR(out, "amqp://a%2Fb:***@mq:1/v%20h");
    /* no password: rabbitmq-c's default (guest), masked all the same */
    CHECK(amqp_conn_parse_url("amqp://bob@mq:1/x", &u, why, sizeof why));
    CHECK_STR(u.password, "guest");
    amqp_conn_url_masked(&u, out, sizeof out);
    CHECK_STR(out, "amqp://bob:***@mq:1/x");
    /* an IPv6 address keeps its brackets */
    CHECK(amqp_conn_parse_url("amqp://u:p@[::1]:5672/x", &u, why, sizeof why));
    CHECK_STR(u.host, "::1");
    amqp_conn_url_masked(&u, out, sizeof out);
    CHECK_STR(out, "amqp://u:***@[::1]:5672/x");
}

TEST(amqp_url_refusals_never_quote_the_url)
{
    amqp_conn_url u;
    char why[160], long_url[3000];
    snprintf(long_url, sizeof long_url, "amqp://u:TopSecret@%0*d/", 2500, 7);
    const char *bad[] = {
        "http://u:TopSecret@mq/",          /* another scheme */
        "amqps://u:TopSecret@mq/",         /* TLS: not supported */
        "amqp://u:TopSecret@mq:0/",        /* port 0 */
        "amqp://u:TopSecret@mq:65536/",
        "amqp://u:TopSecret@mq:12ab/",
        "",
        long_url,
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        strcpy(why, "unset");
        CHECK(!amqp_conn_parse_url(bad[i], &u, why, sizeof why));
        CHECK(strcmp(why, "unset") != 0);
        CHECK(!strstr(why, "TopSecret"));
        CHECK_STR(u.password, "");   /* nothing of a refused URL is kept */
    }
}
