#include "chat/err.h"

#include <stdlib.h>

#include "chat/log.h"

const char *chat_strerror(int rc)
{
    switch (rc) {
#define X(name, val, msg) \
    case val:             \
        return msg;
        CHAT_ERR_MAP(X)
#undef X
    }
    return "unknown error";
}

const char *chat_errname(int rc)
{
    switch (rc) {
#define X(name, val, msg) \
    case val:             \
        return #name;
        CHAT_ERR_MAP(X)
#undef X
    }
    return "E?";
}

_Noreturn void chat__assert_fail(const char *expr, const char *file, int line)
{
    chat_log_raw(CHAT_LOG_ERROR, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
