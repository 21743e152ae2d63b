/* main.c — runs every registered unit test. */
#include "test.h"

#include "util/log.h"

static test_case *head, *tail;
int test_failures_in_current;

void test_register(test_case *t)
{
    if (tail) tail->next = t;
    else head = t;
    tail = t;
}

int main(void)
{
    log_set_level(LOG_ERROR + 1);  /* tests that break things on purpose stay quiet */
    int passed = 0, failed = 0;
    for (test_case *t = head; t; t = t->next) {
        test_failures_in_current = 0;
        t->fn();
        if (test_failures_in_current) {
            fprintf(stderr, "FAIL %s\n", t->name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
