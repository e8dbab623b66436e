/* r_system.c - system messages of a room (r_system.h). */
#include "r_system.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"
#include "chat/proto.h"

#include "api.h"
#include "bus/api_ids.h"
#include "bus/api_outbox.h"
#include "db/api_db.h"

/* True when a joined/left event of room is wanted: the room is small enough. */
static bool small_room(struct api *a, struct api_db *db, const char *room, bool *ok)
{
    const char *p[1] = {room};
    PGresult *res;
    bool small;

    *ok = true;
    if (a->cfg->system_joins_max == 0) /* never, even when the last member leaves */
        return false;
    res = api_db_qn(db, API_Q_room_active_members, 1, p);
    *ok = api_db_ok(res, PGRES_TUPLES_OK, "counting a room's members");
    if (!*ok)
        return false;
    small = PQntuples(res) == 1 && api_db_ll(res, 0, 0) <= a->cfg->system_joins_max;
    PQclear(res);
    return small;
}

/* The account user's nickname into buf (*nick = buf), or *nick NULL (not an account). False
 * when the statement failed. */
static bool
nickname_of(struct api_db *db, const char *user, char *buf, size_t cap, const char **nick)
{
    const char *p[1] = {user};
    size_t n = strlen(user);
    PGresult *res;

    *nick = NULL;
    if (n == 0 || n > 18 || strspn(user, "0123456789") != n)
        return true;
    res = api_db_qn(db, API_Q_user_by_id, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a nickname"))
        return false;
    if (PQntuples(res) == 1) { /* id, username, nickname, ... */
        snprintf(buf, cap, "%s", PQgetvalue(res, 0, 2));
        *nick = buf;
    }
    PQclear(res);
    return true;
}

/* The event e (id and ts set here). */
static bool system_event(struct api *a, struct api_db *db, struct chat_system_ev e)
{
    const char *room = e.room, *event = e.event, *user = e.user, *nick = e.nick;
    char nbuf[128];
    struct chat_buf b;
    bool ok = true;

    if (strcmp(event, "joined") == 0 || strcmp(event, "left") == 0) {
        if (!small_room(a, db, room, &ok))
            return ok;
    }
    if (user && !nick && !nickname_of(db, user, nbuf, sizeof(nbuf), &e.nick))
        return false;
    if (!api_ids_next(a, &e.id, &e.ts)) {
        chat_log(CHAT_LOG_WARN, "system event of a room: no id lease");
        return false;
    }
    chat_buf_init(&b, 0, 0);
    ok = chat_enc_system(&b, &e) == CHAT_OK && api_outbox_put(db, "messages", room, "system", &b);
    chat_buf_fini(&b);
    return ok;
}

bool api_system_event(struct api *a,
                      struct api_db *db,
                      const char *room,
                      const char *event,
                      const char *user,
                      const char *nick,
                      const char *text)
{
    return system_event(
        a, db,
        (struct chat_system_ev){
            .room = room, .event = event, .user = user, .nick = nick, .text = text});
}

bool api_system_event_msg(struct api *a,
                          struct api_db *db,
                          const char *room,
                          const char *event,
                          const char *user,
                          const char *message)
{
    return system_event(
        a, db,
        (struct chat_system_ev){.room = room, .event = event, .user = user, .message = message});
}
