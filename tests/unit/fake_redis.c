/* fake_redis.c - the Redis stand-in of the unit tests (fake_redis.h). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include "fake_redis.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Reads one CRLF-terminated line's number after its type byte; false at EOF. */
static bool fake_num(FILE *in, char type, long *v)
{
    char line[64];

    if (!fgets(line, sizeof(line), in) || line[0] != type)
        return false;
    *v = strtol(line + 1, NULL, 10);
    return true;
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    int fd;
    FILE *in;
    long argc, len;

again:
    fd = accept(f->lfd, NULL, NULL);
    in = fd >= 0 ? fdopen(fd, "r") : NULL;
    atomic_fetch_add(&f->conns, in != NULL);
    while (in && fake_num(in, '*', &argc)) {
        char *cmd = calloc(1, 1);
        size_t clen = 0;
        for (long i = 0; i < argc && fake_num(in, '$', &len); i++) {
            cmd = realloc(cmd, clen + (size_t)len + 3); /* a space, the bytes, CRLF */
            if (clen)
                cmd[clen++] = ' ';
            if (fread(cmd + clen, 1, (size_t)len + 2, in) != (size_t)len + 2) /* and CRLF */
                break;
            clen += (size_t)len;
            cmd[clen] = '\0';
        }
        if (atomic_load(&f->n) < FAKE_KEEP)
            f->cmds[atomic_load(&f->n)] = cmd;
        else
            free(cmd);
        atomic_fetch_add(&f->n, 1);
        if (send(fd, ":1\r\n", 4, MSG_NOSIGNAL) != 4) /* the client gone: no SIGPIPE */
            break;
        if (atomic_load(&f->reset_after) && atomic_load(&f->n) == atomic_load(&f->reset_after)) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends a reset */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            fclose(in);
            goto again;
        }
    }
    if (in)
        fclose(in);
    return NULL;
}

void fake_start(struct fake *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10}; /* accept gives up: a client that never came fails */
    socklen_t alen = sizeof(a);

    memset(f, 0, sizeof(*f));
    f->cmds = calloc(FAKE_KEEP, sizeof(*f->cmds));
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(setsockopt(f->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

/* After the client closed its connection (ps_cache_fini). */
void fake_stop(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    for (size_t i = 0; i < FAKE_KEEP; i++)
        free(f->cmds[i]);
    free(f->cmds);
}
