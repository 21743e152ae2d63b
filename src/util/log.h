/* log.h — the process logger: JSON lines on stderr.
 *
 * One of the two pieces of global state assetd allows (the other is the
 * config).  Every line is a single JSON object with "ts", "level", "msg" and
 * any number of string fields, so operators can pipe it to jq or a log
 * shipper.  Fields are given as NULL-terminated key/value string pairs:
 *
 *     log_info("listening", "addr", "127.0.0.1:8080", NULL);
 *
 * Thread-safe: each line is written with one write(2) call.
 */
#ifndef ASSETD_LOG_H
#define ASSETD_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level min);
void log_kv(log_level level, const char *msg, ...);

#define log_debug(...) log_kv(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_kv(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_kv(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_kv(LOG_ERROR, __VA_ARGS__)

#endif
