/* Recovery of the txn log at open: scan every segment in zxid order, replay
 * the valid frames, cut a torn tail, refuse (or, when asked, cut) corrupt
 * data. The rules are in docs/storage.md; the scanner that applies them to
 * one segment is storage/wal_segment.c. */
#ifndef RK_STORAGE_WAL_RECOVER_H
#define RK_STORAGE_WAL_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* A segment of an open log. */
struct wal_segment {
	int64_t zxid_first;
	int64_t zxid_last; /* zxid_first - 1 while it holds no record */
};

struct wal_recovery {
	uint64_t db_id;		  /* 0: the log never had a segment */
	struct wal_segment *segs; /* oldest first; the caller frees */
	size_t count;
	bool tail_open;	     /* the newest segment takes the next frame */
	uint64_t tail_off;   /* ... at this offset */
	uint64_t tail_bytes; /* ... and is this long */
	int64_t zxid_last;   /* 0: no record */
};

/* Recover the log in dir_fd (dir is for messages). A newest segment left
 * with no record is deleted (its database id is kept in out->db_id), so
 * every segment that remains starts with its first record. Returns 0, or
 * -errno with err saying which file, offset and why. */
int wal_recover(int dir_fd, const char *dir, bool truncate_corrupt, storage_replay_fn replay,
		void *ctx, struct wal_recovery *out, char *err, size_t errlen);

#endif
