/* chat/hash.h - keyed hashing for hash tables whose keys come from clients (room ids, user ids).
 *
 * An unkeyed hash (FNV and the like) lets a client pick names that all land in one bucket and
 * turn every lookup into a list walk. SipHash-2-4 with a secret random key per process (read
 * from getrandom() once, on first use) makes collisions unpredictable from outside, as Redis,
 * Python and Rust do for their dictionaries. Not for anything that must hash the same in two
 * processes (use a plain hash there, e.g. the gateway's node-number probe).
 * Thread-safety: all functions are thread-safe (the process key is set once under pthread_once). */
#ifndef CHAT_HASH_H
#define CHAT_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of data[0..len) under a 16-byte key (the reference algorithm, little-endian). */
uint64_t chat_siphash(const uint8_t key[16], const void *data, size_t len);

/* SipHash-2-4 of the NUL-terminated s under this process's secret key. */
uint64_t chat_hash_str(const char *s);

/* SipHash-2-4 of p[0..len) under this process's secret key: chat_hash_mem(s, strlen(s)) ==
 * chat_hash_str(s) (for keys that are not NUL-terminated, e.g. a Kafka record key). */
uint64_t chat_hash_mem(const void *p, size_t len);

#endif
