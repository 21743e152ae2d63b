/* job.c — job states, backoff and JSON form; see job.h. */
#include "queue/job.h"

#include <string.h>

static const char *state_names[] = {"queued", "running", "succeeded", "failed", "dead"};

const char *job_state_name(job_state s) { return state_names[s]; }

bool job_state_parse(const char *s, job_state *out)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(state_names[i], s) == 0) {
            *out = (job_state)i;
            return true;
        }
    return false;
}

int64_t job_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01)
{
    if (attempt < 1) attempt = 1;
    int64_t delay = base_ms;
    for (int i = 1; i < attempt && delay < cap_ms; i++) delay *= 2;
    if (delay > cap_ms) delay = cap_ms;
    if (random01 < 0) random01 = 0;
    if (random01 >= 1) random01 = 0.999999;
    return delay / 2 + (int64_t)((double)(delay - delay / 2) * random01);
}

static json_t *text_or_null(const char *s) { return *s ? json_string(s) : json_null(); }

json_t *job_to_json(const job *j)
{
    json_t *error = *j->error_code ? json_pack("{s:s, s:s}", "code", j->error_code, "message",
                                               j->error_message)
                                   : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:o, s:s, s:o, s:o}", "id", j->id,
                     "asset_id", j->asset_id, "type", j->type, "state", state_names[j->state],
                     "attempts", j->attempts, "max_attempts", j->max_attempts, "progress",
                     j->progress, "error", error, "created", j->created, "started",
                     text_or_null(j->started), "finished", text_or_null(j->finished));
}
