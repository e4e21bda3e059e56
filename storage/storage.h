/* The storage interface the sequencer writes through: append a batch of
 * encoded txns and learn when it is durable. The in-memory implementation
 * completes at once; the txn log (O_DIRECT, group commit) implements the
 * same calls. storage/ sees txns only as bytes tagged with a zxid. */
#ifndef RK_STORAGE_H
#define RK_STORAGE_H

#include <stddef.h>
#include <stdint.h>

struct storage;

struct storage_ops {
	/* Queue a batch whose last txn has zxid_last; bytes are copied. */
	int (*append)(struct storage *st, int64_t zxid_last, const void *bytes, size_t len);
	/* The highest zxid known durable, or -errno once the store failed
	 * (ENOSPC, EIO): a failed store never reports progress again. */
	int64_t (*durable_zxid)(struct storage *st);
	void (*close)(struct storage *st);
};

struct storage {
	const struct storage_ops *ops;
};

/* A store that keeps nothing: every append is durable at once. */
struct storage *storage_mem_open(void);

#endif
