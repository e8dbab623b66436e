/* gw_pss.h - per-session data of the gateway's single lws protocol: a WebSocket connection
 * (conn). lws allocates and zeroes it per connection. A plain HTTP request's state
 * (struct gw_httpreq) hangs off the wsi's opaque user data instead (ws/gw_http.c), so an idle
 * WebSocket holds no pointer for it. Event-loop thread only. */
#ifndef GW_PSS_H
#define GW_PSS_H

#include <stdbool.h>

#include "chat/buf.h"

#include "ws/gw_conn.h"

struct gw_httpreq {
    struct chat_buf resp; /* response body */
    int status;
    const char *allow; /* static: the Allow header of a 405 */
    bool responded;
};

struct gw_pss {
    struct gw_conn conn;
};

#endif
