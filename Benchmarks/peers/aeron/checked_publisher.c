/*
 * checked_publisher: offer <messages> messages of <length> bytes on a concurrent (non-exclusive)
 * publication; message i carries i as a little-endian u64 in its first 8 bytes.
 * Written against Aeron's C client API (aeronc.h); not derived from the samples' text.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aeronc.h"
#include "aeron_agent.h" /* aeron_idle_strategy_busy_spinning_idle, as the samples use */

static volatile sig_atomic_t stop = 0;
static void on_sigint(int sig) { (void)sig; stop = 1; }

static void put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

int main(int argc, char **argv)
{
    const char *channel = "aeron:ipc", *dir = NULL;
    int32_t stream_id = 1001;
    size_t length = 64;
    uint64_t messages = 10000000, i = 0;
    int opt, rc = EXIT_FAILURE;

    while ((opt = getopt(argc, argv, "c:s:L:m:p:")) != -1)
    {
        switch (opt)
        {
            case 'c': channel = optarg; break;
            case 's': stream_id = (int32_t)strtol(optarg, NULL, 0); break;
            case 'L': length = strtoul(optarg, NULL, 0); break;
            case 'm': messages = strtoull(optarg, NULL, 0); break;
            case 'p': dir = optarg; break;
            default:
                fprintf(stderr, "usage: %s -c channel -s stream -L length -m messages -p aeron_dir\n", argv[0]);
                return EXIT_FAILURE;
        }
    }
    if (length < 8) { fprintf(stderr, "length must be >= 8\n"); return EXIT_FAILURE; }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);

    uint8_t *msg = calloc(1, length);
    aeron_context_t *ctx = NULL;
    aeron_t *aeron = NULL;
    aeron_async_add_publication_t *async = NULL;
    aeron_publication_t *pub = NULL;

    if (NULL == msg ||
        aeron_context_init(&ctx) < 0 ||
        (NULL != dir && aeron_context_set_dir(ctx, dir) < 0) ||
        aeron_init(&aeron, ctx) < 0 ||
        aeron_start(aeron) < 0 ||
        aeron_async_add_publication(&async, aeron, channel, stream_id) < 0)
    {
        fprintf(stderr, "setup: %s\n", aeron_errmsg());
        goto done;
    }
    while (NULL == pub)
    {
        if (aeron_async_add_publication_poll(&pub, async) < 0)
        {
            fprintf(stderr, "add publication: %s\n", aeron_errmsg());
            goto done;
        }
        sched_yield();
    }
    while (!stop && !aeron_publication_is_connected(pub)) { sched_yield(); }
    printf("Publication connected: %s stream %" PRId32 ", length %zu\n", channel, stream_id, length);
    fflush(stdout);

    for (i = 0; i < messages && !stop; i++)
    {
        put_le64(msg, i);
        int64_t r;
        while ((r = aeron_publication_offer(pub, msg, length, NULL, NULL)) < 0)
        {
            if (AERON_PUBLICATION_BACK_PRESSURED != r && AERON_PUBLICATION_NOT_CONNECTED != r &&
                AERON_PUBLICATION_ADMIN_ACTION != r)
            {
                fprintf(stderr, "offer of message %" PRIu64 " failed: %" PRId64 " (%s)\n", i, r,
                    AERON_PUBLICATION_CLOSED == r ? "closed" :
                    AERON_PUBLICATION_MAX_POSITION_EXCEEDED == r ? "max position exceeded" : aeron_errmsg());
                goto done;
            }
            if (stop) { goto interrupted; }
            aeron_idle_strategy_busy_spinning_idle(NULL, 0);
        }
    }
interrupted:
    rc = EXIT_SUCCESS;
    printf("sent %" PRIu64 " messages\n", i);

done:
    aeron_publication_close(pub, NULL, NULL);
    aeron_close(aeron);
    aeron_context_close(ctx);
    free(msg);
    return rc;
}
