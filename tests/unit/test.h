/* test.h — a minimal unit-test harness.  A test is a function registered
 * with TEST(); CHECK records a failure and carries on, so one run reports
 * every broken expectation.  main() (in main.c) prints "N passed, N failed". */
#ifndef ASSETD_TEST_H
#define ASSETD_TEST_H

#include <stdio.h>
#include <string.h>

typedef struct test_case {
    const char *name;
    void (*fn)(void);
    struct test_case *next;
} test_case;

void test_register(test_case *t);
extern int test_failures_in_current;

#define TEST(name)                                                                    \
    static void name(void);                                                           \
    static test_case name##_case = {#name, name, NULL};                               \
    __attribute__((constructor)) static void name##_register(void) {                  \
        test_register(&name##_case);                                                  \
    }                                                                                 \
    static void name(void)

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures_in_current++;                                               \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                               \
    do {                                                                              \
        const char *a_ = (a), *b_ = (b);                                              \
        if (strcmp(a_, b_) != 0) {                                                    \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_, b_); \
            test_failures_in_current++;                                               \
        }                                                                             \
    } while (0)

#endif
