/*
 * The C API from C: every function, every error path, from several threads. Built and run by
 * bindings/c/test.sh normally, under valgrind, and with -fsanitize=address,undefined.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ---------------------------------------------------------------- configuration */

static const char *CONFIG =
    "[host]\n"
    "items = []\n"
    "[evaluator]\n"
    "tick = \"50ms\"\n"
    "[[rule]]\n"
    "name = \"queue\"\n"
    "metric = \"queue_depth\"\n"
    "labels = { team = \"ops\" }\n"
    "annotations = { summary = \"queue at {{value}}\" }\n"
    "[rule.critical]\n"
    "threshold = 100\n"
    "[[rule]]\n"
    "name = \"flaky\"\n"
    "metric = \"flaky_depth\"\n"
    "labels = { team = \"flaky\" }\n"
    "[rule.major]\n"
    "threshold = 1\n"
    "[recipients]\n"
    "kim = { email = \"kim@example.com\" }\n"
    "[[channel]]\n"
    "name = \"sink\"\n"
    "address = \"email\"\n"
    "[[channel]]\n"
    "name = \"flaky-sink\"\n"
    "retry = { attempts = 3, backoff = \"10ms\" }\n"
    "[[route]]\n"
    "name = \"ops\"\n"
    "match = { team = \"ops\" }\n"
    "channels = [\"sink\"]\n"
    "recipients = [\"kim\"]\n"
    "[[route]]\n"
    "name = \"flaky\"\n"
    "match = { team = \"flaky\" }\n"
    "channels = [\"flaky-sink\"]\n";

/* ---------------------------------------------------------------- C channel */

typedef struct sink {
    atomic_int delivered;
    atomic_int attempts;
    atomic_int retry_first; /* fail the first attempt as retryable */
    atomic_int permanent;   /* fail every attempt permanently */
    atomic_int freed;
    atomic_int saw_alert_fields;
    vigilo_monitor *monitor; /* to call back into the API */
    atomic_int callback_calls_ok;
} sink;

static int sink_deliver(void *user_data, const vigilo_alert *alert, char *message,
                        size_t capacity) {
    sink *s = user_data;
    int attempt = atomic_fetch_add(&s->attempts, 1);
    if (alert && alert->rule && alert->severity && alert->json && alert->fingerprint &&
        strcmp(alert->status, "firing") == 0 && alert->has_value && alert->value > 0 &&
        alert->labels_len > 0 && alert->recipients_len == 1 &&
        strcmp(alert->recipients[0], "kim@example.com") == 0) {
        atomic_store(&s->saw_alert_fields, 1);
    }
    /* A callback may call back into the API. */
    if (s->monitor) {
        char *json = NULL;
        if (vigilo_monitor_incidents_json(s->monitor, &json) == VIGILO_STATUS_OK && json) {
            atomic_fetch_add(&s->callback_calls_ok, 1);
        }
        vigilo_string_free(json);
        /* ...but not stop its own monitor. */
        if (vigilo_monitor_stop(s->monitor, 0) == VIGILO_STATUS_STATE) {
            atomic_fetch_add(&s->callback_calls_ok, 1);
        }
    }
    if (atomic_load(&s->permanent)) {
        snprintf(message, capacity, "no such queue");
        return VIGILO_DELIVERY_PERMANENT;
    }
    if (atomic_load(&s->retry_first) && attempt == 0) {
        snprintf(message, capacity, "busy, try later");
        return VIGILO_DELIVERY_RETRYABLE;
    }
    atomic_fetch_add(&s->delivered, 1);
    return VIGILO_DELIVERED;
}

static void sink_free(void *user_data) {
    sink *s = user_data;
    atomic_store(&s->freed, 1);
}

/* ---------------------------------------------------------------- events */

#define MAX_EVENTS 4096
typedef struct event_log {
    pthread_mutex_t lock;
    char kinds[MAX_EVENTS][32];
    char channels[MAX_EVENTS][32];
    int n;
    atomic_int freed;
    atomic_int slow_ms;        /* sleep this long in each callback */
    atomic_int in_callback;    /* set while a callback runs */
    atomic_int callback_done_before_free;
    vigilo_monitor *monitor;   /* to call back into the API */
    atomic_int refused_own_free;
} event_log;

static void on_event(void *user_data, const vigilo_event *e) {
    event_log *log = user_data;
    atomic_store(&log->in_callback, 1);
    pthread_mutex_lock(&log->lock);
    if (log->n < MAX_EVENTS) {
        snprintf(log->kinds[log->n], 32, "%s", e->kind);
        snprintf(log->channels[log->n], 32, "%s", e->channel ? e->channel : "");
        log->n++;
    }
    pthread_mutex_unlock(&log->lock);
    CHECK(e->json != NULL && e->detail != NULL && e->seq > 0);
    if (log->monitor && strcmp(e->kind, "transition") == 0) {
        /* A callback may record and ask; destroying its own monitor is refused. */
        vigilo_monitor_add_counter(log->monitor, "callback_total", NULL, 0, 1);
        if (vigilo_monitor_free(log->monitor) == VIGILO_STATUS_STATE) {
            atomic_store(&log->refused_own_free, 1);
        }
    }
    int slow = atomic_load(&log->slow_ms);
    if (slow > 0) sleep_ms(slow);
    atomic_store(&log->in_callback, 0);
}

static void event_log_free(void *user_data) {
    event_log *log = user_data;
    if (!atomic_load(&log->in_callback)) atomic_store(&log->callback_done_before_free, 1);
    atomic_store(&log->freed, 1);
}

static int count_events(event_log *log, const char *kind, const char *channel) {
    int n = 0;
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->n; i++) {
        if (strcmp(log->kinds[i], kind) == 0 &&
            (channel == NULL || strcmp(log->channels[i], channel) == 0)) {
            n++;
        }
    }
    pthread_mutex_unlock(&log->lock);
    return n;
}

static int wait_for(event_log *log, const char *kind, const char *channel, int at_least) {
    for (int i = 0; i < 500; i++) {
        if (count_events(log, kind, channel) >= at_least) return 1;
        sleep_ms(10);
    }
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_version_and_errors(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", VIGILO_VERSION_MAJOR, VIGILO_VERSION_MINOR,
             VIGILO_VERSION_PATCH);
    CHECK(strcmp(vigilo_version(), expected) == 0);
    CHECK(strcmp(vigilo_status_name(VIGILO_STATUS_OK), "ok") == 0);
    CHECK(strcmp(vigilo_status_name(VIGILO_STATUS_CONFIG), "configuration error") == 0);
    CHECK(vigilo_last_error() != NULL);
}

static void test_creation_errors(void) {
    vigilo_monitor *m = NULL;
    CHECK_STATUS(vigilo_monitor_new(NULL, 10, NULL, &m), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "toml is NULL") != NULL);
    CHECK_STATUS(vigilo_monitor_new(CONFIG, strlen(CONFIG), NULL, NULL),
                 VIGILO_STATUS_NULL_ARGUMENT);
    const char bad_utf8[] = "[[rule]]\nname = \"\xff\"\n";
    CHECK_STATUS(vigilo_monitor_new(bad_utf8, sizeof bad_utf8 - 1, NULL, &m),
                 VIGILO_STATUS_INVALID_UTF8);
    const char *bad = "[[rule]]\nname = \"cpu\"\nmetrc = \"x\"\n";
    CHECK_STATUS(vigilo_monitor_new(bad, strlen(bad), "rules.toml", &m), VIGILO_STATUS_CONFIG);
    CHECK(strstr(vigilo_last_error(), "rules.toml:3:1") != NULL);
    /* A length shorter than the text: only that much is read (no NUL needed). */
    CHECK_STATUS(vigilo_monitor_new(CONFIG, 12, NULL, &m), VIGILO_STATUS_CONFIG);
    CHECK_STATUS(vigilo_monitor_new_from_file("/nonexistent/vigilo.toml", &m), VIGILO_STATUS_IO);
    CHECK_STATUS(vigilo_monitor_new_from_file(NULL, &m), VIGILO_STATUS_NULL_ARGUMENT);
    /* An empty configuration is a valid one. */
    OK(vigilo_monitor_new(NULL, 0, NULL, &m));
    OK(vigilo_monitor_free(m));
    /* Freeing twice: the stale handle is detected (the memory is not touched). */
    CHECK_STATUS(vigilo_monitor_free(m), VIGILO_STATUS_STALE_HANDLE);
    CHECK_STATUS(vigilo_monitor_start(m), VIGILO_STATUS_STALE_HANDLE);
    OK(vigilo_monitor_free(NULL));
    vigilo_string_free(NULL);
}

static void test_from_file(void) {
    char path[] = "/tmp/vigilo-c-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[host]\nitems = []\n[[rule]]\nname = \"x\"\nmetric = \"x\"\n[rule.major]\nthreshold = 1\n",
          f);
    fclose(f);
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new_from_file(path, &m));
    OK(vigilo_monitor_start(m));
    char *json = NULL;
    OK(vigilo_monitor_status_json(m, &json));
    CHECK(json && strstr(json, "\"rule\":\"x\"") == NULL); /* no series yet: no item */
    vigilo_string_free(json);
    char *address = NULL;
    CHECK_STATUS(vigilo_monitor_http_address(m, &address), VIGILO_STATUS_NOT_FOUND);
    CHECK(strstr(vigilo_last_error(), "[http]") != NULL);
    OK(vigilo_monitor_free(m));
    unlink(path);
}

static void test_http_endpoint(void) {
    const char *toml = "[host]\nitems = []\n[http]\nlisten = \"127.0.0.1:0\"\n";
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(toml, strlen(toml), NULL, &m));
    char *address = NULL;
    CHECK_STATUS(vigilo_monitor_http_address(m, &address), VIGILO_STATUS_STATE);
    OK(vigilo_monitor_start(m));
    OK(vigilo_monitor_http_address(m, &address));
    CHECK(address && strncmp(address, "127.0.0.1:", 10) == 0 && strcmp(address, "127.0.0.1:0") != 0);
    vigilo_string_free(address);
    CHECK_STATUS(vigilo_monitor_http_address(m, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    OK(vigilo_monitor_free(m));
}

static void test_metrics_errors(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    vigilo_gauge *g = NULL;
    vigilo_histogram *h = NULL;
    CHECK_STATUS(vigilo_monitor_counter(m, "bad name", NULL, 0, &c), VIGILO_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "invalid metric name") != NULL);
    CHECK_STATUS(vigilo_monitor_counter(m, NULL, NULL, 0, &c), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_counter(m, "ok_total", NULL, 0, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_counter(m, "ok_total", NULL, 2, &c), VIGILO_STATUS_NULL_ARGUMENT);
    vigilo_label bad_label[] = {{"route", "\xc3\x28"}};
    CHECK_STATUS(vigilo_monitor_counter(m, "ok_total", bad_label, 1, &c), VIGILO_STATUS_INVALID_UTF8);
    vigilo_label null_value[] = {{"route", NULL}};
    CHECK_STATUS(vigilo_monitor_counter(m, "ok_total", null_value, 1, &c), VIGILO_STATUS_NULL_ARGUMENT);
    vigilo_label dup[] = {{"a", "1"}, {"a", "2"}};
    CHECK_STATUS(vigilo_monitor_counter(m, "ok_total", dup, 2, &c), VIGILO_STATUS_INVALID_ARGUMENT);
    OK(vigilo_monitor_counter(m, "kind_total", NULL, 0, &c));
    CHECK_STATUS(vigilo_monitor_gauge(m, "kind_total", NULL, 0, &g), VIGILO_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(vigilo_last_error(), "counter") != NULL);
    CHECK_STATUS(vigilo_monitor_histogram(NULL, "h", NULL, 0, &h), VIGILO_STATUS_NULL_ARGUMENT);
    vigilo_counter_free(c);
    /* NULL handles: recording is a no-op, reading gives 0 / NaN. */
    vigilo_counter_add(NULL, 1);
    vigilo_gauge_set(NULL, 1.0);
    vigilo_gauge_add(NULL, 1.0);
    vigilo_histogram_record(NULL, 1.0);
    CHECK(vigilo_counter_value(NULL) == 0);
    CHECK(isnan(vigilo_gauge_value(NULL)));
    CHECK(vigilo_histogram_count(NULL) == 0);
    vigilo_counter_free(NULL);
    vigilo_gauge_free(NULL);
    vigilo_histogram_free(NULL);
    /* By name: NaN is refused there, dropped through a handle. */
    vigilo_label route[] = {{"route", "/api"}};
    OK(vigilo_monitor_set_gauge(m, "temperature", route, 1, 21.5));
    CHECK_STATUS(vigilo_monitor_set_gauge(m, "temperature", route, 1, NAN), VIGILO_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_record_histogram(m, "lat", NULL, 0, INFINITY), VIGILO_STATUS_INVALID_ARGUMENT);
    OK(vigilo_monitor_record_histogram(m, "lat", NULL, 0, 0.25));
    OK(vigilo_monitor_add_counter(m, "by_name_total", route, 1, 3));
    CHECK_STATUS(vigilo_monitor_add_counter(m, "by name", NULL, 0, 1), VIGILO_STATUS_INVALID_ARGUMENT);
    OK(vigilo_monitor_gauge(m, "temperature", route, 1, &g));
    CHECK(vigilo_gauge_value(g) == 21.5);
    vigilo_gauge_set(g, NAN); /* dropped and counted */
    vigilo_gauge_add(g, 0.5);
    CHECK(vigilo_gauge_value(g) == 22.0);
    vigilo_gauge_free(g);
}

#define THREADS 8
#define PER_THREAD 100000
typedef struct worker {
    vigilo_monitor *m;
    vigilo_counter *shared;
    vigilo_histogram *hist;
} worker;

static void *record(void *arg) {
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        vigilo_counter_add(w->shared, 1);
        vigilo_histogram_record(w->hist, 0.001 * (i % 100));
    }
    /* Each thread also resolves its own handle for the same series. */
    vigilo_counter *own = NULL;
    vigilo_label l[] = {{"route", "/threads"}};
    if (vigilo_monitor_counter(w->m, "requests_total", l, 1, &own) == VIGILO_STATUS_OK) {
        vigilo_counter_add(own, 5);
        vigilo_counter_free(own);
    }
    return NULL;
}

static void test_threads(vigilo_monitor *m) {
    vigilo_counter *c = NULL;
    vigilo_histogram *h = NULL;
    vigilo_label l[] = {{"route", "/threads"}};
    OK(vigilo_monitor_counter(m, "requests_total", l, 1, &c));
    OK(vigilo_monitor_histogram(m, "request_seconds", l, 1, &h));
    pthread_t threads[THREADS];
    worker w = {m, c, h};
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, record, &w);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(vigilo_counter_value(c) == (uint64_t)THREADS * PER_THREAD + 5 * THREADS);
    CHECK(vigilo_histogram_count(h) == (uint64_t)THREADS * PER_THREAD);
    vigilo_counter_free(c);
    vigilo_histogram_free(h);
}

static void test_pipeline(void) {
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(CONFIG, strlen(CONFIG), "c-test.toml", &m));

    /* Queries need a running monitor. */
    char *json = NULL;
    CHECK_STATUS(vigilo_monitor_status_json(m, &json), VIGILO_STATUS_STATE);
    CHECK_STATUS(vigilo_monitor_settle(m, 10), VIGILO_STATUS_STATE);

    static sink ok_sink, flaky_sink;
    memset(&ok_sink, 0, sizeof ok_sink);
    memset(&flaky_sink, 0, sizeof flaky_sink);
    ok_sink.monitor = m;
    atomic_store(&flaky_sink.retry_first, 1);
    CHECK_STATUS(vigilo_monitor_add_channel(m, "nope", sink_deliver, &ok_sink, NULL), VIGILO_STATUS_CONFIG);
    CHECK_STATUS(vigilo_monitor_add_channel(m, "sink", NULL, &ok_sink, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_add_channel(m, NULL, sink_deliver, &ok_sink, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    OK(vigilo_monitor_add_channel(m, "sink", sink_deliver, &ok_sink, sink_free));
    CHECK_STATUS(vigilo_monitor_add_channel(m, "sink", sink_deliver, &ok_sink, NULL), VIGILO_STATUS_INVALID_ARGUMENT);

    static event_log log;
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    log.monitor = m;
    CHECK_STATUS(vigilo_monitor_on_event(m, NULL, &log, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    OK(vigilo_monitor_on_event(m, on_event, &log, event_log_free));

    /* A configured C channel not added: the start is refused, and can be tried again. */
    CHECK_STATUS(vigilo_monitor_start(m), VIGILO_STATUS_CONFIG);
    CHECK(strstr(vigilo_last_error(), "flaky-sink") != NULL);
    OK(vigilo_monitor_add_channel(m, "flaky-sink", sink_deliver, &flaky_sink, sink_free));
    OK(vigilo_monitor_start(m));
    CHECK_STATUS(vigilo_monitor_start(m), VIGILO_STATUS_STATE);
    CHECK_STATUS(vigilo_monitor_add_channel(m, "sink", sink_deliver, &ok_sink, NULL), VIGILO_STATUS_STATE);

    test_metrics_errors(m);
    test_threads(m);

    /* A crossing: the transition and the delivery reach C. */
    vigilo_gauge *queue = NULL;
    OK(vigilo_monitor_gauge(m, "queue_depth", NULL, 0, &queue));
    vigilo_gauge_set(queue, 250.0);
    CHECK(wait_for(&log, "delivered", "sink", 1));
    CHECK(wait_for(&log, "transition", NULL, 1));
    OK(vigilo_monitor_settle(m, 5000));
    CHECK(atomic_load(&ok_sink.delivered) >= 1);
    CHECK(atomic_load(&ok_sink.saw_alert_fields) == 1);
    CHECK(atomic_load(&ok_sink.callback_calls_ok) >= 2);
    CHECK(atomic_load(&log.refused_own_free) == 1);

    /* A retryable failure is retried, then delivered. */
    vigilo_gauge *flaky = NULL;
    OK(vigilo_monitor_gauge(m, "flaky_depth", NULL, 0, &flaky));
    vigilo_gauge_set(flaky, 5.0);
    CHECK(wait_for(&log, "retrying", "flaky-sink", 1));
    CHECK(wait_for(&log, "delivered", "flaky-sink", 1));
    CHECK(atomic_load(&flaky_sink.attempts) >= 2);

    /* Incidents: list, ack, unack, silence, history, status, coverage. */
    OK(vigilo_monitor_incidents_json(m, &json));
    CHECK(json && strstr(json, "queue") != NULL);
    vigilo_string_free(json);
    CHECK_STATUS(vigilo_monitor_incidents_json(m, NULL), VIGILO_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_ack(m, 999999, "kim", NULL, 0, false), VIGILO_STATUS_NOT_FOUND);
    CHECK_STATUS(vigilo_monitor_ack(m, 1, NULL, NULL, 0, false), VIGILO_STATUS_NULL_ARGUMENT);
    OK(vigilo_monitor_ack(m, 1, "kim", "looking", 60000, true));
    CHECK(wait_for(&log, "acked", NULL, 1));
    OK(vigilo_monitor_unack(m, 1));
    CHECK_STATUS(vigilo_monitor_unack(m, 999999), VIGILO_STATUS_NOT_FOUND);
    uint64_t silence = 0;
    vigilo_label matchers[] = {{"team", "ops"}};
    CHECK_STATUS(vigilo_monitor_silence(m, "queue", matchers, 1, 0, "kim", NULL, &silence),
                 VIGILO_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(vigilo_monitor_silence(m, "queue", matchers, 1, 60000, NULL, NULL, &silence),
                 VIGILO_STATUS_NULL_ARGUMENT);
    OK(vigilo_monitor_silence(m, "queue", matchers, 1, 60000, "kim", "maintenance", &silence));
    CHECK(silence > 0);
    OK(vigilo_monitor_expire_silence(m, silence));
    CHECK_STATUS(vigilo_monitor_expire_silence(m, 999999), VIGILO_STATUS_NOT_FOUND);
    OK(vigilo_monitor_history_json(m, 1, NULL, 50, &json));
    CHECK(json && strstr(json, "\"kind\":\"opened\"") != NULL);
    vigilo_string_free(json);
    OK(vigilo_monitor_history_json(m, 0, "flaky", 10, &json));
    CHECK(json && strstr(json, "flaky") != NULL);
    vigilo_string_free(json);
    OK(vigilo_monitor_status_json(m, &json));
    CHECK(json && strstr(json, "\"queue\"") != NULL);
    vigilo_string_free(json);
    OK(vigilo_monitor_coverage_json(m, &json));
    CHECK(json && strstr(json, "expected") != NULL);
    vigilo_string_free(json);

    /* Stop, then nothing runs; stopping twice is fine; free frees everything once. */
    OK(vigilo_monitor_stop(m, 2000));
    OK(vigilo_monitor_stop(m, 2000));
    CHECK_STATUS(vigilo_monitor_incidents_json(m, &json), VIGILO_STATUS_STATE);
    CHECK(atomic_load(&log.freed) == 1);
    /* Handles outlive the monitor's run. */
    vigilo_gauge_set(queue, 1.0);
    vigilo_gauge_free(queue);
    vigilo_gauge_free(flaky);
    OK(vigilo_monitor_free(m));
    CHECK(atomic_load(&ok_sink.freed) == 1);
    CHECK(atomic_load(&flaky_sink.freed) == 1);
    pthread_mutex_destroy(&log.lock);
}

/* Destroying a monitor from another thread while its callback runs waits for the callback. */
typedef struct destroyer {
    vigilo_monitor *m;
    vigilo_status status;
} destroyer;

static void *destroy(void *arg) {
    destroyer *d = arg;
    d->status = vigilo_monitor_free(d->m);
    return NULL;
}

static void test_destroy_while_a_callback_runs(void) {
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(CONFIG, strlen(CONFIG), NULL, &m));
    static sink s1, s2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    OK(vigilo_monitor_add_channel(m, "sink", sink_deliver, &s1, sink_free));
    OK(vigilo_monitor_add_channel(m, "flaky-sink", sink_deliver, &s2, sink_free));
    static event_log log;
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    atomic_store(&log.slow_ms, 300);
    OK(vigilo_monitor_on_event(m, on_event, &log, event_log_free));
    OK(vigilo_monitor_start(m));
    OK(vigilo_monitor_set_gauge(m, "queue_depth", NULL, 0, 500.0));
    for (int i = 0; i < 300 && !atomic_load(&log.in_callback); i++) sleep_ms(5);
    CHECK(atomic_load(&log.in_callback) == 1);
    pthread_t t;
    destroyer d = {m, VIGILO_STATUS_PANIC};
    pthread_create(&t, NULL, destroy, &d);
    pthread_join(t, NULL);
    CHECK(d.status == VIGILO_STATUS_OK);
    CHECK(atomic_load(&log.freed) == 1);
    CHECK(atomic_load(&log.callback_done_before_free) == 1);
    CHECK(atomic_load(&s1.freed) == 1 && atomic_load(&s2.freed) == 1);
    pthread_mutex_destroy(&log.lock);
}

/* A monitor never started frees the user data it was given. */
static void test_unstarted_frees(void) {
    vigilo_monitor *m = NULL;
    OK(vigilo_monitor_new(CONFIG, strlen(CONFIG), NULL, &m));
    static sink s;
    memset(&s, 0, sizeof s);
    OK(vigilo_monitor_add_channel(m, "sink", sink_deliver, &s, sink_free));
    static event_log log;
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    OK(vigilo_monitor_on_event(m, on_event, &log, event_log_free));
    /* Failing calls free what they were given too. */
    static sink rejected;
    memset(&rejected, 0, sizeof rejected);
    CHECK_STATUS(vigilo_monitor_add_channel(m, "nope", sink_deliver, &rejected, sink_free),
                 VIGILO_STATUS_CONFIG);
    CHECK(atomic_load(&rejected.freed) == 1);
    OK(vigilo_monitor_free(m));
    CHECK(atomic_load(&s.freed) == 1 && atomic_load(&log.freed) == 1);
    pthread_mutex_destroy(&log.lock);
}

int main(void) {
    test_version_and_errors();
    test_creation_errors();
    test_from_file();
    test_http_endpoint();
    test_pipeline();
    test_destroy_while_a_callback_runs();
    test_unstarted_frees();
    return summary("vigilo C API");
}
