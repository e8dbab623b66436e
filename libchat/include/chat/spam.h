/* chat/spam.h - the spam rule and slow mode (proto/README.md section 4, "Spam rule and slow
 * mode"), shared by the gateways (hiredis async on their loop) and chat-api (hiredis sync per
 * request thread): the options, the normalisation and hash of a message's text, and the one Redis
 * script a send runs before it is produced. Thread-safety: pure functions and constants.
 *
 * EVAL chat_spam_lua 4 LAST OFFENCES SLOW BAN  HASH SAME KEEP BAN_MS MAX_MS WINDOW_S SLOW_MS
 *   (keys: chat_spam_keys(); SLOW_MS 0: no slow mode; SAME 0: no spam rule) answers
 *   {0}                 the send may go on
 *   {1, BAN_MS, N}      it trips the rule: the user's N-th offence within the window, chat-banned
 *                       for BAN_MS (= min(BAN * 2^(N-1), MAX)); the list starts afresh
 *   {2, PTTL}           slow mode: the user sent to this room less than SLOW_MS ago; retry in PTTL
 *   {3, PTTL}           a spam-rule chat ban is in force for PTTL ms more
 * A send refused by slow mode or a ban is not counted in the list. */
#ifndef CHAT_SPAM_H
#define CHAT_SPAM_H

#include <stddef.h>
#include <stdint.h>

#include "chat/config.h"
#include "chat/err.h"

#define CHAT_SPAM_HASH_LEN 16       /* hex digits of a text's hash */
#define CHAT_SPAM_KEY_MAX  192      /* bytes of one of the script's keys, NUL included */
#define CHAT_SPAM_LIST_PX  86400000 /* the list of last hashes expires after a quiet day */
#define CHAT_SPAM_REASON   "spam"   /* the reason of a spam-rule chat ban */

/* The options (the same in the gateway and chat-api; env vars in CHAT_SPAM_CFG_OPTS). */
struct chat_spam_cfg {
    int same;      /* CHAT_SPAM_SAME: this many equal texts ... (0: the rule is off) */
    int last;      /* CHAT_SPAM_LAST: ... among the user's last this many messages trip it */
    int ban_s;     /* CHAT_SPAM_BAN_S: the first chat ban */
    int ban_max_s; /* CHAT_SPAM_BAN_MAX_S: a repeat offence doubles the ban up to this */
    int window_s;  /* CHAT_SPAM_WINDOW_S: offences this close count as repeats */
};

/* T has a `struct chat_spam_cfg F`. */
#define CHAT_SPAM_CFG_OPTS(T, F)                                                                 \
    {"spam-same",                                                                                \
     "CHAT_SPAM_SAME",                                                                           \
     CHAT_CFG_INT,                                                                               \
     0,                                                                                          \
     100,                                                                                        \
     "4",                                                                                        \
     offsetof(T, F.same),                                                                        \
     0,                                                                                          \
     "spam rule: this many equal messages among a user's last CHAT_SPAM_LAST chat-ban the user " \
     "(0: off)"},                                                                                \
        {"spam-last",                                                                            \
         "CHAT_SPAM_LAST",                                                                       \
         CHAT_CFG_INT,                                                                           \
         1,                                                                                      \
         100,                                                                                    \
         "5",                                                                                    \
         offsetof(T, F.last),                                                                    \
         0,                                                                                      \
         "spam rule: how many of a user's last messages are compared"},                          \
        {"spam-ban-s",                                                                           \
         "CHAT_SPAM_BAN_S",                                                                      \
         CHAT_CFG_INT,                                                                           \
         1,                                                                                      \
         2592000,                                                                                \
         "60",                                                                                   \
         offsetof(T, F.ban_s),                                                                   \
         0,                                                                                      \
         "spam rule: the first chat ban (s); doubled for each repeat offence"},                  \
        {"spam-ban-max-s",                                                                       \
         "CHAT_SPAM_BAN_MAX_S",                                                                  \
         CHAT_CFG_INT,                                                                           \
         1,                                                                                      \
         2592000,                                                                                \
         "86400",                                                                                \
         offsetof(T, F.ban_max_s),                                                               \
         0,                                                                                      \
         "spam rule: the longest chat ban (s)"},                                                 \
    {                                                                                            \
        "spam-window-s", "CHAT_SPAM_WINDOW_S", CHAT_CFG_INT, 1, 2592000, "3600",                 \
            offsetof(T, F.window_s), 0,                                                          \
            "spam rule: an offence within this many seconds of the last one is a repeat"         \
    }

/* The verdict of the script (see above). */
enum chat_spam_verdict {
    CHAT_SPAM_OK = 0,
    CHAT_SPAM_TRIPPED = 1,
    CHAT_SPAM_SLOW = 2,
    CHAT_SPAM_BANNED = 3,
};

extern const char chat_spam_lua[];

/* Writes the hash of text[0..len) after normalisation (surrounding white space trimmed, inner
 * runs of white space collapsed to one space, ASCII letters lower-cased; other bytes as is) as
 * CHAT_SPAM_HASH_LEN hex digits and a NUL into out (CHAT_SPAM_HASH_LEN + 1 bytes). FNV-1a 64: the
 * same in every process (a user can only make their own messages collide). */
void chat_spam_hash(const char *text, size_t len, char out[CHAT_SPAM_HASH_LEN + 1]);
/* The same hash as a number. */
uint64_t chat_spam_hash64(const char *text, size_t len);
/* The script's keys for user's send to room: keys[0..4) each CHAT_SPAM_KEY_MAX bytes. CHAT_OK or
 * CHAT_ETOOBIG. */
CHAT_NODISCARD int
chat_spam_keys(char keys[4][CHAT_SPAM_KEY_MAX], const char *user, const char *room);
/* The script's 7 arguments (hash, then the numbers) into args[i] (each 24 bytes). */
void chat_spam_args(char args[7][24],
                    const char *hash,
                    const struct chat_spam_cfg *cfg,
                    int64_t slow_ms);
/* The whole script call for one send, argv[0..CHAT_SPAM_ARGC) pointing into the struct:
 * "EVAL", the script, "4", the keys, the arguments (what gateways and chat-api send alike). */
#define CHAT_SPAM_ARGC 14
struct chat_spam_call {
    char keys[4][CHAT_SPAM_KEY_MAX], args[7][24], hash[CHAT_SPAM_HASH_LEN + 1];
    const char *argv[CHAT_SPAM_ARGC];
};
/* Fills c for user's send of text[0..len) to room (slow_ms: the room's slow mode, 0: none).
 * CHAT_OK or CHAT_ETOOBIG (user or room too long for the keys). */
CHAT_NODISCARD int chat_spam_call_init(struct chat_spam_call *c,
                                       const char *user,
                                       const char *room,
                                       const char *text,
                                       size_t len,
                                       const struct chat_spam_cfg *cfg,
                                       int64_t slow_ms);
/* Reads the script's answer: elements n of ints v[]. Returns the verdict, *ms (the ban's length
 * or the PTTL) and *offence (for CHAT_SPAM_TRIPPED); -1 when the answer is not one of the
 * script's (treat as Redis being out). */
int chat_spam_judge(const long long *v, size_t n, int64_t *ms, int *offence);

#endif
