/*
 * Thread-bound counters (vigilo_counter_local, the header's inline vigilo_local_counter_add):
 * the inline path on the maker's thread, exact counts when other threads use the same handle
 * at the same time, a handle outliving its thread, NULL arguments. Built and run by
 * bindings/c/test.sh normally, under valgrind, and with -fsanitize=address,undefined.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "vigilo.h" /* twice: the header and its inline part are guarded */

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define THREADS 8
/* Adds per thread: enough for the threads to overlap on two cores; valgrind runs one thread at
 * a time (no overlap to find) and 50 times slower, so a tenth there. */
#define PER_THREAD (RUNNING_ON_VALGRIND ? 20000 : 200000)

static const char *CONFIG = "[host]\nitems = []\n";

static void test_arguments(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    vigilo_local_counter *l = NULL;
    OK(vigilo_monitor_counter(m, "arguments_total", NULL, 0, &c));
    CHECK_STATUS(vigilo_counter_local(NULL, &l), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "counter") != NULL);
    CHECK_STATUS(vigilo_counter_local(c, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "out") != NULL);
    /* NULL handles: adding is a no-op, the value 0, freeing nothing. */
    vigilo_local_counter_add(NULL, 1);
    vigilo_local_counter_add_call(NULL, 1);
    CHECK(vigilo_local_counter_value(NULL) == 0);
    vigilo_local_counter_free(NULL);
    CHECK(vigilo_counter_value(c) == 0);
    vigilo_counter_free(c);
}

/* On the maker's thread: the inline path (where the header has one), every add counted in the
 * series, whichever handle reads it; the handle outlives the counter handle it came from. */
static void test_maker_thread(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    vigilo_local_counter *l = NULL;
    vigilo_label route[] = {{"route", "/local"}};
    OK(vigilo_monitor_counter(m, "maker_total", route, 1, &c));
    OK(vigilo_counter_local(c, &l));
#if VIGILO_LOCAL_COUNTER_INLINE
    /* The library recorded this thread as the header reads it: adds here take the inline path. */
    CHECK(l->owner != NULL && l->owner == vigilo_thread_pointer_());
    CHECK(l->cell != NULL);
#endif
    for (int i = 0; i < 1000; i++) vigilo_local_counter_add(l, 1);
    vigilo_local_counter_add(l, 5);
    vigilo_local_counter_add_call(l, 10);
    vigilo_counter_add(c, 100); /* the same thread's cell, through the any-thread handle */
    CHECK(vigilo_local_counter_value(l) == 1115);
    CHECK(vigilo_counter_value(c) == 1115);
    vigilo_counter_free(c);
    vigilo_local_counter_add(l, 1);
    CHECK(vigilo_local_counter_value(l) == 1116);
    OK(vigilo_monitor_counter(m, "maker_total", route, 1, &c));
    CHECK(vigilo_counter_value(c) == 1116);
    vigilo_local_counter_free(l);
    CHECK(vigilo_counter_value(c) == 1116); /* the series stays */
    vigilo_counter_free(c);
}

typedef struct shared {
    vigilo_local_counter *local;
    pthread_barrier_t start;
} shared;

static void *add_through(void *arg) {
    shared *s = arg;
    pthread_barrier_wait(&s->start);
    for (int i = 0; i < PER_THREAD; i++) vigilo_local_counter_add(s->local, 1);
    return NULL;
}

/* One handle, its maker and 8 other threads adding at once: none of them may write the maker's
 * cell with the inline path's plain load and store, or updates are lost. */
static void test_other_threads_count_exactly(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    OK(vigilo_monitor_counter(m, "shared_total", NULL, 0, &c));
    shared s;
    OK(vigilo_counter_local(c, &s.local));
    pthread_barrier_init(&s.start, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, add_through, &s);
    pthread_barrier_wait(&s.start);
    for (int i = 0; i < PER_THREAD; i++) vigilo_local_counter_add(s.local, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(vigilo_counter_value(c) == (uint64_t)(THREADS + 1) * PER_THREAD);
    pthread_barrier_destroy(&s.start);
    vigilo_local_counter_free(s.local);
    vigilo_counter_free(c);
}

typedef struct maker {
    const vigilo_counter *counter;
    vigilo_local_counter *local;
} maker;

static void *make_and_add(void *arg) {
    maker *mk = arg;
    if (vigilo_counter_local(mk->counter, &mk->local) == VIGILO_STATUS_OK) {
        for (int i = 0; i < PER_THREAD; i++) vigilo_local_counter_add(mk->local, 1);
    }
    return NULL;
}

static void *add_to_made(void *arg) {
    maker *mk = arg;
    for (int i = 0; i < PER_THREAD; i++) vigilo_local_counter_add(mk->local, 1);
    return NULL;
}

/* Handles that outlive the threads that made them: later threads (which may reuse the ended
 * threads' control blocks, and so pass the inline path's check) and this thread keep counting
 * exactly, all at once; this thread frees them. */
static void test_handles_outlive_their_threads(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    OK(vigilo_monitor_counter(m, "outlived_total", NULL, 0, &c));
    maker makers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        makers[i] = (maker){c, NULL};
        pthread_create(&threads[i], NULL, make_and_add, &makers[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++) CHECK(makers[i].local != NULL);
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, add_to_made, &makers[i]);
    for (int i = 0; i < THREADS; i++) vigilo_local_counter_add(makers[i].local, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(vigilo_counter_value(c) == (uint64_t)THREADS * (2 * PER_THREAD + 1));
    for (int i = 0; i < THREADS; i++) vigilo_local_counter_free(makers[i].local);
    vigilo_counter_free(c);
}

int main(void) {
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(CONFIG, strlen(CONFIG), NULL, &m));
    test_arguments(m);
    test_maker_thread(m);
    test_other_threads_count_exactly(m);
    test_handles_outlive_their_threads(m);
    OK(vigilo_monitor_free(m));
    return summary("vigilo C API, thread-bound counters");
}
