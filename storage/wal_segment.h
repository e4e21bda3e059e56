/* Segment files of the txn log (formats in storage/wal.h): checksums,
 * names, listing, creation, truncation, and the scanner that recovery
 * (storage/wal_recover.c) and ringkeeper-logdump share, so both apply the
 * same rules to the same bytes. No io_uring here: all of it is synchronous
 * and runs at open, at segment roll-over or in the tool. */
#ifndef RK_STORAGE_WAL_SEGMENT_H
#define RK_STORAGE_WAL_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

/* "log." + 16 hex digits + ".tmp" + NUL. */
#define WAL_NAME_BYTES 32

static inline uint64_t wal_block_round_up(uint64_t n)
{
	return (n + WAL_BLOCK_BYTES - 1) & ~(uint64_t)(WAL_BLOCK_BYTES - 1);
}

/* On-disk size of a record with len payload bytes (header + padded payload). */
static inline uint64_t wal_record_bytes(uint32_t len)
{
	return sizeof(struct wal_record_header) + (((uint64_t)len + 7) & ~(uint64_t)7);
}

uint64_t wal_record_checksum(const struct wal_record_header *h, const void *payload);
uint64_t wal_frame_checksum(const struct wal_frame_header *h);
uint64_t wal_segment_checksum(const struct wal_segment_header *h);

/* True when next may follow prev in the log: prev + 1, or a new epoch
 * (larger upper 32 bits). prev == 0 means nothing came before. */
bool wal_zxid_follows(int64_t prev, int64_t next);

void wal_segment_name(char name[WAL_NAME_BYTES], int64_t zxid_first);
/* "log.<16 lowercase hex>" and nothing else; the zxid must be > 0. */
bool wal_segment_name_parse(const char *name, int64_t *zxid_first);

/* The first zxids of the segments in dir_fd, ascending (the caller frees
 * *firsts). With remove_tmp, half-created "log.*.tmp" files are deleted. */
int wal_segment_list(int dir_fd, bool remove_tmp, int64_t **firsts, size_t *count);

/* Create log.<zxid_first> so that it either exists whole (header written
 * and synced, directory entry synced) or not at all: it is built as .tmp
 * and renamed. zxid_after goes into the header (0 unless the log was just
 * truncated or reset). On error *call names the failed syscall. */
int wal_segment_create(int dir_fd, int64_t zxid_first, int64_t zxid_after, uint64_t db_id,
		       uint64_t bytes, const char **call);

/* Zero the segment from off (block aligned) to its end, keeping its size,
 * and sync it: the log then ends at off. */
int wal_segment_truncate(int dir_fd, const char *name, uint64_t off, const char **call);

/* True when a segment with header h may follow a log whose last record is
 * prev (0: none): by the zxid order rule, or, when the header carries
 * zxid_after, prev <= zxid_after < zxid_first. */
bool wal_segment_follows(int64_t prev, const struct wal_segment_header *h);

/* Cut segment `name` so that it holds only the records <= zxid, durably,
 * in an order that leaves a valid log at every step of a crash: first the
 * frames after the one holding the first record > zxid are zeroed; then,
 * when that frame also holds records <= zxid, its header alone is
 * rewritten to end before it (a 48-byte write inside one sector) and
 * synced, and only then are the dropped records zeroed; else the log is
 * zeroed from that frame on. *zxid_last gets the last record kept (0:
 * none) and *end_off where the data now ends. Returns 0, -EUCLEAN when the
 * segment does not verify as far as the cut, or -errno with *call naming
 * the syscall. A segment with no record > zxid is left as it is. */
int wal_segment_cut_after(int dir_fd, const char *name, uint64_t db_id, int64_t zxid,
			  int64_t *zxid_last, uint64_t *end_off, const char **call);

/* How the scan of a segment ended. */
enum wal_scan_end {
	WAL_SCAN_CLEAN = 0, /* valid frames, then zeros to the end of the file */
	WAL_SCAN_TORN,	    /* bad or stray bytes after the last valid frame,
			     * and no valid frame after them */
	WAL_SCAN_CORRUPT,   /* a bad segment header, a zxid out of order, or bad
			     * bytes with a valid frame after them */
	WAL_SCAN_COUNT,
};

struct wal_scan {
	uint64_t db_id;		       /* in: expected, 0 = any; out: the header's */
	int64_t zxid_name;	       /* in: zxid from the file name, 0 = unchecked */
	int64_t zxid_prev;	       /* in: zxid before this segment, 0 = none;
					* out: the last valid zxid */
	struct wal_segment_header hdr; /* out */
	uint64_t file_bytes;	       /* out */
	enum wal_scan_end end;	       /* out */
	uint64_t end_off;	       /* out: end of valid data, where the next
					* frame goes or the log is cut */
	uint64_t bad_off;	       /* out: TORN/CORRUPT: the first bad byte */
	char why[160];		       /* out: TORN/CORRUPT: what was wrong */
	uint32_t frames;	       /* out: valid frames */
	uint64_t records;	       /* out: valid records */
};

struct wal_scan_ops {
	/* Every record of a frame that checked out whole, in order. A
	 * non-zero return stops the scan and is returned by it. */
	int (*record)(void *ctx, const struct wal_record_header *rh, const void *payload);
	/* For dumps, optional: each frame header that checked out, and each
	 * record read in it, whether its checksum holds or not. */
	void (*frame_seen)(void *ctx, const struct wal_frame_header *fh, uint64_t off);
	void (*record_seen)(void *ctx, const struct wal_record_header *rh, uint64_t off,
			    bool checksum_ok);
};

/* Read and check a whole segment (fd open for reading). Returns 0 with the
 * verdict in sc->end, -errno on a read error, or a callback's non-zero.
 * Torn or corrupt is the caller's call to make from sc->end and whether
 * the segment is the newest: only there may a tail be torn. */
int wal_scan_segment(int fd, struct wal_scan *sc, const struct wal_scan_ops *ops, void *ctx);

#endif
