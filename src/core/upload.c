/* upload.c — see upload.h. */
#include "core/upload.h"

const char *upload_state_name(upload_state s)
{
    return s == UPLOAD_COMPLETE ? "complete" : "pending";
}
