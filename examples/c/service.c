/*
 * A small C service embedding vigilo: it records each request's latency into a histogram, and
 * is alerted on its p99 through the bundled webhook plugin (posting to the service's own
 * /alerts endpoint) and through a channel written in C (its "pager").
 *
 * Build and run: examples/c/run.sh (builds the library and the webhook plugin first).
 * Usage: service PLUGIN_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vigilo.h"

/* ------------------------------------------------------------ the service's HTTP endpoint */

static atomic_int webhook_alerts;

/* Answers every request with 200; counts the POSTs to /alerts (the webhook plugin's). */
static void *serve(void *arg) {
    int listener = *(int *)arg;
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) return NULL;
        char buf[65536];
        ssize_t got = 0, n;
        /* Read the head, then as much body as Content-Length says. */
        while ((n = read(conn, buf + got, sizeof buf - 1 - (size_t)got)) > 0) {
            got += n;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) continue;
            char *cl = strstr(buf, "Content-Length:");
            if (!cl) cl = strstr(buf, "content-length:");
            long want = cl ? strtol(cl + 15, NULL, 10) : 0;
            if ((end + 4 - buf) + want <= got) break;
        }
        if (got > 0 && strncmp(buf, "POST /alerts", 12) == 0 && strstr(buf, "latency-p99")) {
            atomic_fetch_add(&webhook_alerts, 1);
            printf("service: webhook alert received on /alerts\n");
        }
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        ssize_t w = write(conn, ok, strlen(ok));
        (void)w;
        close(conn);
    }
}

/* ------------------------------------------------------------ the C channel: a pager */

static atomic_int paged;

static int page(void *user_data, const vigilo_alert *alert, char *message, size_t capacity) {
    (void)user_data;
    (void)message;
    (void)capacity;
    const char *summary = "";
    for (size_t i = 0; i < alert->annotations_len; i++) {
        if (strcmp(alert->annotations[i].name, "summary") == 0) summary = alert->annotations[i].value;
    }
    printf("pager: [%s] %s %s: %s\n", alert->severity, alert->status, alert->rule, summary);
    if (strcmp(alert->status, "firing") == 0) atomic_fetch_add(&paged, 1);
    return VIGILO_DELIVERED;
}

static void on_event(void *user_data, const vigilo_event *e) {
    (void)user_data;
    if (strcmp(e->kind, "delivered") == 0 || strcmp(e->kind, "failed") == 0) {
        printf("event: %s on %s: %s\n", e->kind, e->channel ? e->channel : "?", e->detail);
    }
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

#define TRY(call)                                                                  \
    do {                                                                           \
        vigilo_status s_ = (call);                                                 \
        if (s_ != VIGILO_STATUS_OK) {                                              \
            fprintf(stderr, "%s: %s: %s\n", #call, vigilo_status_name(s_),        \
                    vigilo_last_error());                                          \
            return 1;                                                              \
        }                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN_DIR\n", argv[0]);
        return 2;
    }
    /* The service's HTTP endpoint, on a free port. */
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
        perror("listen");
        return 1;
    }
    int port = ntohs(addr.sin_port);
    pthread_t server;
    pthread_create(&server, NULL, serve, &listener);

    char config[4096];
    snprintf(config, sizeof config,
             "[host]\n"
             "items = []\n"
             "[evaluator]\n"
             "tick = \"250ms\"\n"
             "[plugins]\n"
             "dir = \"%s\"\n"
             "[[rule]]\n"
             "name = \"latency-p99\"\n"
             "metric = \"request_duration_seconds\"\n"
             "aggregation = \"p99\"\n"
             "window = \"5s\"\n"
             "labels = { team = \"web\" }\n"
             "annotations = { summary = \"p99 latency is {{value}} s\" }\n"
             "[rule.critical]\n"
             "threshold = 0.25\n"
             "[[channel]]\n"
             "name = \"webhook\"\n"
             "plugin = \"webhook\"\n"
             "allowed_hosts = [\"127.0.0.1:%d\"]\n"
             "config = { url = \"http://127.0.0.1:%d/alerts\" }\n"
             "[[channel]]\n"
             "name = \"pager\"\n"
             "[[route]]\n"
             "name = \"web\"\n"
             "match = { team = \"web\" }\n"
             "channels = [\"webhook\", \"pager\"]\n",
             argv[1], port, port);

    vigilo_monitor *monitor = NULL;
    TRY(vigilo_monitor_new(config, strlen(config), "service.toml", &monitor));
    TRY(vigilo_monitor_add_channel(monitor, "pager", page, NULL, NULL));
    TRY(vigilo_monitor_on_event(monitor, on_event, NULL, NULL));
    TRY(vigilo_monitor_start(monitor));
    vigilo_histogram *latency = NULL;
    vigilo_label route[] = {{"route", "/checkout"}};
    TRY(vigilo_monitor_histogram(monitor, "request_duration_seconds", route, 1, &latency));
    printf("service: listening on 127.0.0.1:%d, vigilo %s\n", port, vigilo_version());

    /* Traffic: fast at first, then the backend slows down. */
    for (int i = 0; i < 600 && (atomic_load(&webhook_alerts) == 0 || atomic_load(&paged) == 0); i++) {
        double seconds = i < 40 ? 0.02 + 0.001 * (i % 10) : 0.4 + 0.01 * (i % 10);
        vigilo_histogram_record(latency, seconds);
        sleep_ms(50);
    }
    int ok = atomic_load(&webhook_alerts) > 0 && atomic_load(&paged) > 0;
    char *incidents = NULL;
    TRY(vigilo_monitor_incidents_json(monitor, &incidents));
    printf("service: open incidents: %.200s\n", incidents);
    vigilo_string_free(incidents);
    vigilo_histogram_free(latency);
    TRY(vigilo_monitor_free(monitor));
    printf("service: %d webhook alert(s), %d page(s): %s\n", atomic_load(&webhook_alerts),
           atomic_load(&paged), ok ? "alerted through both channels" : "NOT alerted");
    return ok ? 0 : 1;
}
