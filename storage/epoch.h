/* The epoch files of a ZAB peer, as ZooKeeper keeps them in dataDir:
 * acceptedEpoch (the last epoch this server accepted from a prospective
 * leader) and currentEpoch (the epoch of the last NEWLEADER it
 * acknowledged). Election and sync must find them again after a crash, so
 * a write is durable before it returns.
 *
 * On disk: the value as decimal ASCII digits and nothing else, as
 * ZooKeeper writes it (Long.toString), so either server reads the other's
 * files. A reader also takes one trailing "\n" or "\r\n" (a hand-edited
 * file). A write goes to <name>.tmp, is fsync'ed, renamed over <name>, and
 * the directory is fsync'ed: the file holds the old value or the new one,
 * never a mix. One writer per file at a time (the peer thread). */
#ifndef RK_STORAGE_EPOCH_H
#define RK_STORAGE_EPOCH_H

#include <stdint.h>

#define EPOCH_ACCEPTED "acceptedEpoch"
#define EPOCH_CURRENT  "currentEpoch"

/* Reads dir/name into *out. A missing file is epoch 0 (a new server):
 * returns 0 with *out = 0. Returns -EBADMSG (logged) when the file is not
 * a decimal number in 0..UINT32_MAX, or -errno when it cannot be read. */
int epoch_read(const char *dir, const char *name, uint32_t *out);

/* Replaces dir/name with v, durably. dir must exist. Returns 0 or -errno
 * (logged with the failed syscall). A failure leaves no temporary file and
 * the old value in place, except a failure of the last step, the directory
 * fsync: the new value is then in place but may not survive a crash. */
int epoch_write(const char *dir, const char *name, uint32_t v);

#endif
