/*
 * checked_subscriber: poll a subscription (fragment limit 10, through a fragment assembler); every
 * message is memcpy'd whole into a local buffer and its first 8 bytes (little-endian u64) are checked
 * against the expected next sequence number. A reporter thread prints one line per second:
 *   rate <msgs/s> msgs/s <MB/s> MB/s
 * and stops the run -d full 1-s reports after the first report that saw traffic (that first one covers
 * a partial interval). At the end: "checked <n> messages, <k> out of sequence"; exit 1 if k > 0.
 * Written against Aeron's C client API (aeronc.h); not derived from the samples' text.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aeronc.h"
#include "aeron_agent.h" /* aeron_idle_strategy_busy_spinning_idle, as the samples use */

typedef struct
{
    uint8_t *copy;          /* the receiver's own buffer */
    size_t capacity;
    uint64_t expected;      /* next expected sequence number */
    uint64_t messages;      /* written by the poller only, read by the reporter */
    uint64_t bytes;
    uint64_t out_of_sequence;
    uint64_t bad_length;
} checker_t;

static volatile int running = 1;
static void on_sigint(int sig) { (void)sig; __atomic_store_n(&running, 0, __ATOMIC_RELEASE); }

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void on_message(void *clientd, const uint8_t *buffer, size_t length, aeron_header_t *header)
{
    checker_t *c = (checker_t *)clientd;
    (void)header;
    if (length < 8 || length > c->capacity)
    {
        c->bad_length++;
    }
    else
    {
        memcpy(c->copy, buffer, length);
        uint64_t seq = get_le64(c->copy);
        if (seq != c->expected)
        {
            c->out_of_sequence++;
        }
        c->expected = seq + 1;   /* resynchronise so one gap counts once */
    }
    /* single writer: plain increment published with release stores (no locked RMW) */
    __atomic_store_n(&c->bytes, c->bytes + length, __ATOMIC_RELEASE);
    __atomic_store_n(&c->messages, c->messages + 1, __ATOMIC_RELEASE);
}

typedef struct { checker_t *c; int seconds; } reporter_args_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *reporter(void *arg)
{
    reporter_args_t *a = (reporter_args_t *)arg;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    int64_t last_ns = now_ns();
    uint64_t last_msgs = 0, last_bytes = 0;
    int traffic_reports = 0;

    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE))
    {
        tick.tv_sec += 1;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL) != 0) { }
        if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE)) { break; }
        uint64_t msgs = __atomic_load_n(&a->c->messages, __ATOMIC_ACQUIRE);
        uint64_t bytes = __atomic_load_n(&a->c->bytes, __ATOMIC_ACQUIRE);
        int64_t t = now_ns();
        double secs = (double)(t - last_ns) / 1e9;
        printf("rate %.0f msgs/s %.2f MB/s\n", (double)(msgs - last_msgs) / secs,
            (double)(bytes - last_bytes) / secs / 1e6);
        fflush(stdout);
        last_ns = t; last_msgs = msgs; last_bytes = bytes;
        if (msgs > 0 && ++traffic_reports > a->seconds)
        {
            __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *channel = "aeron:ipc", *dir = NULL;
    int32_t stream_id = 1001;
    size_t length = 64;
    int seconds = 5, opt, rc = EXIT_FAILURE, reporter_started = 0;
    pthread_t reporter_thread;

    while ((opt = getopt(argc, argv, "c:s:L:p:d:")) != -1)
    {
        switch (opt)
        {
            case 'c': channel = optarg; break;
            case 's': stream_id = (int32_t)strtol(optarg, NULL, 0); break;
            case 'L': length = strtoul(optarg, NULL, 0); break;
            case 'p': dir = optarg; break;
            case 'd': seconds = atoi(optarg); break;
            default:
                fprintf(stderr, "usage: %s -c channel -s stream -L length -p aeron_dir -d seconds\n", argv[0]);
                return EXIT_FAILURE;
        }
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);

    checker_t checker = { .copy = malloc(length), .capacity = length };
    reporter_args_t rargs = { &checker, seconds };
    aeron_context_t *ctx = NULL;
    aeron_t *aeron = NULL;
    aeron_async_add_subscription_t *async = NULL;
    aeron_subscription_t *sub = NULL;
    aeron_fragment_assembler_t *assembler = NULL;

    if (NULL == checker.copy ||
        aeron_context_init(&ctx) < 0 ||
        (NULL != dir && aeron_context_set_dir(ctx, dir) < 0) ||
        aeron_init(&aeron, ctx) < 0 ||
        aeron_start(aeron) < 0 ||
        aeron_async_add_subscription(&async, aeron, channel, stream_id, NULL, NULL, NULL, NULL) < 0)
    {
        fprintf(stderr, "setup: %s\n", aeron_errmsg());
        goto done;
    }
    while (NULL == sub)
    {
        if (aeron_async_add_subscription_poll(&sub, async) < 0)
        {
            fprintf(stderr, "add subscription: %s\n", aeron_errmsg());
            goto done;
        }
        sched_yield();
    }
    if (aeron_fragment_assembler_create(&assembler, on_message, &checker) < 0)
    {
        fprintf(stderr, "fragment assembler: %s\n", aeron_errmsg());
        goto done;
    }
    printf("Subscription ready: %s stream %" PRId32 ", length %zu\n", channel, stream_id, length);
    fflush(stdout);
    if (pthread_create(&reporter_thread, NULL, reporter, &rargs) != 0)
    {
        fprintf(stderr, "pthread_create failed\n");
        goto done;
    }
    reporter_started = 1;

    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE))
    {
        int n = aeron_subscription_poll(sub, aeron_fragment_assembler_handler, assembler, 10);
        if (n < 0)
        {
            fprintf(stderr, "poll: %s\n", aeron_errmsg());
            goto done;
        }
        aeron_idle_strategy_busy_spinning_idle(NULL, n);
    }

    printf("checked %" PRIu64 " messages, %" PRIu64 " out of sequence\n", checker.messages, checker.out_of_sequence);
    if (checker.bad_length > 0)
    {
        fprintf(stderr, "%" PRIu64 " messages had a length other than 8..%zu\n", checker.bad_length, length);
    }
    rc = (checker.out_of_sequence > 0 || checker.bad_length > 0) ? EXIT_FAILURE : EXIT_SUCCESS;

done:
    __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
    if (reporter_started) { pthread_join(reporter_thread, NULL); }
    aeron_subscription_close(sub, NULL, NULL);
    aeron_close(aeron);
    aeron_context_close(ctx);
    aeron_fragment_assembler_delete(assembler);
    free(checker.copy);
    return rc;
}
