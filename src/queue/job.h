/* job.h — background jobs: the unit of work of the durable queue.
 *
 * The queue lives in the metadata database (db.h: db_job_*), so a job is
 * enqueued in the same transaction as the state change that needs it and is
 * never lost or run for a change that rolled back.  Life of a job:
 *
 *   queued --claim--> running --complete--> succeeded
 *                        |  \--fail (retryable, attempts left)--> queued (after backoff)
 *                        |   \-fail (not retryable)--> failed
 *                        |    \-fail (no attempts left)--> dead
 *                        \--lease expires (worker died)--> claimable again, or dead
 *                                                          when no attempts are left
 *
 * Every claim takes a lease (renewed by heartbeats) and bumps the job's
 * fencing token.  Heartbeat, complete and fail only act if the caller's
 * token is still current, so a worker that lost its lease (paused, then
 * replaced) can neither commit output nor change the job's state.
 *
 * At most one live (queued or running) job exists per (asset, type):
 * enqueueing again is a no-op that returns the live job.
 */
#ifndef ASSETD_JOB_H
#define ASSETD_JOB_H

#include "core/asset.h"

#include <jansson.h>
#include <stdint.h>

#define JOB_TYPE_MAX 32
#define JOB_ERROR_CODE_MAX 64
#define JOB_ERROR_MESSAGE_MAX 512

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_DEAD } job_state;

typedef struct job {
    char id[ID_LEN + 1];
    char asset_id[ID_LEN + 1];
    char owner[OWNER_MAX + 1];
    char type[JOB_TYPE_MAX + 1];
    job_state state;
    int attempts, max_attempts;
    int64_t fence;           /* fencing token of the current claim */
    int64_t run_at_ms;       /* not claimable before (backoff) */
    int64_t lease_until_ms;  /* running: the lease's end */
    double progress;         /* 0..1 */
    char error_code[JOB_ERROR_CODE_MAX + 1];        /* "" when none */
    char error_message[JOB_ERROR_MESSAGE_MAX + 1];
    char created[32], started[32], finished[32];    /* "" when not yet */
} job;

const char *job_state_name(job_state s);
bool job_state_parse(const char *s, job_state *out);

/* Delay before retry number `attempt` (1 = first retry): exponential from
 * base_ms, capped at cap_ms, with "equal jitter" (half fixed, half random,
 * from `random01` in [0,1)) so that jobs failing together do not retry in
 * lockstep. */
int64_t job_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01);

/* New reference; the API form of a job. */
json_t *job_to_json(const job *j);

#endif
