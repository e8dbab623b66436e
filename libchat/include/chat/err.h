/* chat/err.h - error codes shared by every chatcluster module.
 *
 * 0 is success, failures are negative CHAT_E* values from one X-macro table; chat_strerror()
 * is generated from the same table. Thread-safety: all functions are pure. */
#ifndef CHAT_ERR_H
#define CHAT_ERR_H

#define CHAT_NODISCARD __attribute__((warn_unused_result))

#define CHAT_ERR_MAP(X)                    \
    X(OK, 0, "success")                    \
    X(ENOMEM, -1, "out of memory")         \
    X(EINVAL, -2, "invalid argument")      \
    X(ETOOBIG, -3, "size limit exceeded")  \
    X(EPROTO, -4, "malformed input")       \
    X(EAGAIN, -5, "queue full, try again") \
    X(ENOENT, -6, "not found")             \
    X(EIO, -7, "i/o error")                \
    X(ETIMEDOUT, -8, "timed out")          \
    X(EAUTH, -9, "authentication failed")  \
    X(EEXPIRED, -10, "expired")            \
    X(EUTF8, -11, "invalid UTF-8")         \
    X(EEXIST, -12, "already exists")       \
    X(ESTATE, -13, "wrong state")

enum chat_err {
#define X(name, val, msg) CHAT_##name = (val),
    CHAT_ERR_MAP(X)
#undef X
};

/* Returns a static description of rc; unknown codes give "unknown error". */
const char *chat_strerror(int rc);

/* Returns the static symbolic name ("EINVAL") of rc, or "E?" when unknown. */
const char *chat_errname(int rc);

/* Invariant check for programmer errors: logs and aborts in every build. Never for input. */
#define CHAT_ASSERT(cond)                                 \
    do {                                                  \
        if (!(cond))                                      \
            chat__assert_fail(#cond, __FILE__, __LINE__); \
    } while (0)
_Noreturn void chat__assert_fail(const char *expr, const char *file, int line);

#endif
