/*
 * The C boundary's promises, one check per promise: values the header does not list, stop and
 * free waiting for running callbacks, NULL arguments named, bounded error texts, callbacks that
 * end their thread. Built and run by bindings/c/test.sh normally, under valgrind, and with
 * -fsanitize=address,undefined.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/* One rule and one C channel "slow" (retried quickly), routed together. */
static const char *CONFIG =
    "[host]\n"
    "items = []\n"
    "[evaluator]\n"
    "tick = \"50ms\"\n"
    "[[rule]]\n"
    "name = \"queue\"\n"
    "metric = \"queue_depth\"\n"
    "[rule.critical]\n"
    "threshold = 100\n"
    "[[channel]]\n"
    "name = \"slow\"\n"
    "retry = { attempts = 5, backoff = \"10ms\" }\n"
    "[[route]]\n"
    "name = \"all\"\n"
    "channels = [\"slow\"]\n";

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static vigilo_monitor *new_monitor(void) {
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(CONFIG, strlen(CONFIG), "boundary.toml", &m));
    return m;
}

static int quick_deliver(void *user, const vigilo_alert *alert, char *message, size_t capacity) {
    (void)user, (void)alert, (void)message, (void)capacity;
    return VIGILO_DELIVERED;
}

/* A started monitor whose channel delivers at once. */
static vigilo_monitor *started_monitor(void) {
    vigilo_monitor *m = new_monitor();
    OK(vigilo_monitor_add_channel(m, "slow", quick_deliver, NULL, NULL));
    OK(vigilo_monitor_start(m));
    return m;
}

/* ---------------------------------------------------------------- 1. unlisted values */

static void test_values_the_header_does_not_list(void) {
    CHECK(strcmp(vigilo_status_name(VIGILO_STATUS_PANIC), "internal error") == 0);
    CHECK(strcmp(vigilo_status_name(11), "unknown status") == 0);
    CHECK(strcmp(vigilo_status_name(99), "unknown status") == 0);
    CHECK(strcmp(vigilo_status_name(-1), "unknown status") == 0);
    vigilo_monitor *m = started_monitor();
    /* A flag is 0 or 1: 2 is refused before the incident is looked up. */
    CHECK_STATUS(vigilo_monitor_ack(m, 1, "kim", NULL, 0, 2), VIGILO_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "sticky") != NULL);
    CHECK_STATUS(vigilo_monitor_ack(m, 1, "kim", NULL, 0, 1), VIGILO_STATUS_NOT_FOUND);
    /* A length that cannot be an object is refused, not read. */
    vigilo_label one[] = {{"a", "b"}};
    CHECK_STATUS(vigilo_monitor_add_counter(m, "x_total", one, (size_t)-1 / 2, 1),
                 VIGILO_STATUS_INVALID_ARGUMENT);
    /* Durations beyond any clock are capped, not overflowed. */
    OK(vigilo_monitor_settle(m, UINT64_MAX));
    uint64_t id = 0;
    OK(vigilo_monitor_silence(m, NULL, NULL, 0, UINT64_MAX, "kim", NULL, &id));
    OK(vigilo_monitor_stop(m, UINT64_MAX));
    OK(vigilo_monitor_free(m));
}

/* ---------------------------------------------------------------- 2. stop and free wait */

typedef struct slow_user {
    atomic_int started;
    atomic_int returned;
    atomic_int freed;
    atomic_int freed_after_return;
    atomic_int end_thread; /* calls left that end their thread instead of returning */
    atomic_int delivered;
    atomic_int events;
    int sleep_ms;
} slow_user;

static int slow_deliver(void *user, const vigilo_alert *alert, char *message, size_t capacity) {
    (void)alert, (void)message, (void)capacity;
    slow_user *u = user;
    atomic_store(&u->started, 1);
    if (atomic_fetch_sub(&u->end_thread, 1) > 0) pthread_exit(NULL);
    sleep_ms(u->sleep_ms);
    atomic_store(&u->returned, 1);
    atomic_fetch_add(&u->delivered, 1);
    return VIGILO_DELIVERED;
}

static void slow_event(void *user, const vigilo_event *e) {
    (void)e;
    slow_user *u = user;
    atomic_store(&u->started, 1);
    if (atomic_fetch_sub(&u->end_thread, 1) > 0) pthread_exit(NULL);
    sleep_ms(u->sleep_ms);
    atomic_store(&u->returned, 1);
    atomic_fetch_add(&u->events, 1);
}

static void slow_free(void *user) {
    slow_user *u = user;
    atomic_store(&u->freed_after_return, atomic_load(&u->returned));
    atomic_store(&u->freed, 1);
}

static void wait_started(slow_user *u) {
    for (int i = 0; i < 1000 && !atomic_load(&u->started); i++) sleep_ms(5);
    CHECK(atomic_load(&u->started) == 1);
}

/* A started monitor whose channel is `chan`'s and, if `ev`, whose events go to `ev`; the
 * rule fires at once. */
static vigilo_monitor *firing(slow_user *chan, slow_user *ev) {
    vigilo_monitor *m = new_monitor();
    OK(vigilo_monitor_add_channel(m, "slow", slow_deliver, chan, slow_free));
    if (ev) OK(vigilo_monitor_on_event(m, slow_event, ev, slow_free));
    OK(vigilo_monitor_start(m));
    OK(vigilo_monitor_set_gauge(m, "queue_depth", NULL, 0, 500.0));
    return m;
}

static void test_stop_waits_for_a_running_deliver(void) {
    slow_user *u = calloc(1, sizeof *u);
    u->sleep_ms = 1500;
    vigilo_monitor *m = firing(u, NULL);
    wait_started(u);
    /* A 100 ms deadline: the delivery running past it is waited for all the same. */
    double t0 = now_ms();
    OK(vigilo_monitor_stop(m, 100));
    CHECK(atomic_load(&u->returned) == 1);
    CHECK(atomic_load(&u->freed) == 1 && atomic_load(&u->freed_after_return) == 1);
    CHECK(now_ms() - t0 > 500);
    OK(vigilo_monitor_free(m));
    free(u); /* what the header allows once stop returned */
}

/* A free racing a stop under way on another thread waits for the running callbacks too. */
static void *stop_now(void *m) {
    vigilo_monitor_stop(m, 0);
    return NULL;
}

static void test_free_racing_a_stop_waits_for_running_callbacks(void) {
    slow_user *chan = calloc(1, sizeof *chan);
    slow_user *ev = calloc(1, sizeof *ev);
    chan->sleep_ms = 1000;
    vigilo_monitor *m = firing(chan, ev);
    wait_started(chan);
    pthread_t t;
    pthread_create(&t, NULL, stop_now, m);
    sleep_ms(50); /* the stop is under way */
    OK(vigilo_monitor_free(m));
    CHECK(atomic_load(&chan->returned) == 1);
    CHECK(atomic_load(&chan->freed) == 1 && atomic_load(&chan->freed_after_return) == 1);
    CHECK(atomic_load(&ev->freed) == 1);
    pthread_join(t, NULL);
    free(ev); /* what the header allows once free returned */
    free(chan);
}

/* A second stop racing the first returns only once the first has finished. */
typedef struct stopper {
    vigilo_monitor *m;
    slow_user *u;
    int returned_seen;
} stopper;

static void *stop_too(void *arg) {
    stopper *s = arg;
    vigilo_monitor_stop(s->m, 0);
    s->returned_seen = atomic_load(&s->u->returned);
    return NULL;
}

static void test_two_stops_both_wait(void) {
    slow_user *u = calloc(1, sizeof *u);
    u->sleep_ms = 800;
    vigilo_monitor *m = firing(u, NULL);
    wait_started(u);
    pthread_t t[2];
    stopper s[2] = {{m, u, 0}, {m, u, 0}};
    pthread_create(&t[0], NULL, stop_too, &s[0]);
    pthread_create(&t[1], NULL, stop_too, &s[1]);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    CHECK(s[0].returned_seen == 1 && s[1].returned_seen == 1);
    OK(vigilo_monitor_free(m));
    free(u);
}

/* ---------------------------------------------------------------- 3. NULL arguments */

static void test_null_arguments_are_named(void) {
    CHECK_STATUS(vigilo_monitor_new_from_file("x.toml", NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "out is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_new("not toml [", 10, NULL, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "out is NULL") != NULL);
    vigilo_monitor *m = new_monitor();
    CHECK_STATUS(vigilo_monitor_add_channel(m, NULL, NULL, NULL, NULL),
                 VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "name is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_add_channel(m, "slow", NULL, NULL, NULL),
                 VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "deliver is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_on_event(m, NULL, NULL, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "callback is NULL") != NULL);
    OK(vigilo_monitor_add_channel(m, "slow", quick_deliver, NULL, NULL));
    OK(vigilo_monitor_start(m));
    /* No [http]: still NULL_ARGUMENT for `out`, not NOT_FOUND. */
    CHECK_STATUS(vigilo_monitor_http_address(m, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "out is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_history_json(m, 0, NULL, 10, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "out is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_ack(m, 12345, NULL, NULL, 0, 0), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "by is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_silence(m, NULL, NULL, 3, 1000, "kim", NULL, NULL),
                 VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "matchers is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_counter(NULL, "x_total", NULL, 0, NULL),
                 VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "monitor is NULL") != NULL);
    OK(vigilo_monitor_free(m));
    /* A stale handle is reported after the NULL checks too. */
    CHECK_STATUS(vigilo_monitor_status_json(m, NULL), VIGILO_STATUS_NULL_ARGUMENT);
}

/* ---------------------------------------------------------------- 4. bounded errors */

static void test_a_huge_line_gives_a_short_error(void) {
    size_t n = 10 * 1000 * 1000;
    char *toml = malloc(n);
    const char *head = "x = \"";
    memcpy(toml, head, strlen(head));
    memset(toml + strlen(head), 'a', n - strlen(head));
    memcpy(toml + n / 2, "\" ; ", 4); /* a syntax error in the middle of the line */
    vigilo_monitor *m = NULL;
    CHECK_STATUS(vigilo_monitor_new(toml, n, "huge.toml", &m), VIGILO_STATUS_CONFIG);
    const char *e = vigilo_last_error();
    CHECK(strlen(e) < 2000);
    char where[64];
    snprintf(where, sizeof where, "huge.toml:1:%zu", n / 2 + 3);
    CHECK(strstr(e, where) != NULL);
    free(toml);
}

/* ---------------------------------------------------------------- 6. ending the thread */

static void test_callbacks_that_end_their_thread(void) {
    slow_user *chan = calloc(1, sizeof *chan);
    slow_user *ev = calloc(1, sizeof *ev);
    atomic_store(&chan->end_thread, 1); /* the first delivery calls pthread_exit */
    atomic_store(&ev->end_thread, 1);   /* so does the first event callback */
    vigilo_monitor *m = firing(chan, ev);
    /* The process lives on and the monitor answers; the delivery failed (not retried: the
     * channel is not called again), and so does the history say. */
    int failed = 0;
    for (int i = 0; i < 1000 && !failed; i++) {
        char *json = NULL;
        if (vigilo_monitor_history_json(m, 0, NULL, 100, &json) == VIGILO_STATUS_OK) {
            failed = strstr(json, "ended its thread") != NULL;
        }
        vigilo_string_free(json);
        if (!failed) sleep_ms(5);
    }
    CHECK(failed);
    CHECK(atomic_load(&chan->started) == 1 && atomic_load(&chan->delivered) == 0);
    OK(vigilo_monitor_set_gauge(m, "queue_depth", NULL, 0, 0.0));
    OK(vigilo_monitor_settle(m, 5000));
    CHECK(atomic_load(&ev->started) == 1 && atomic_load(&ev->events) == 0);
    OK(vigilo_monitor_free(m));
    CHECK(atomic_load(&chan->freed) == 1 && atomic_load(&ev->freed) == 1);
    free(chan);
    free(ev);
}

int main(void) {
    test_values_the_header_does_not_list();
    test_null_arguments_are_named();
    test_a_huge_line_gives_a_short_error();
    test_stop_waits_for_a_running_deliver();
    test_free_racing_a_stop_waits_for_running_callbacks();
    test_two_stops_both_wait();
    test_callbacks_that_end_their_thread();
    return summary("vigilo C boundary");
}
