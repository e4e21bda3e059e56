/* In-memory storage: nothing survives a restart; appends are durable at
 * once. Used until the txn log lands and by tests of the layers above. */
#include <stdlib.h>

#include "storage/storage.h"

struct storage_mem {
	struct storage base;
	int64_t zxid_durable;
};

static int mem_append(struct storage *st, int64_t zxid_last, const void *bytes, size_t len)
{
	struct storage_mem *m = (struct storage_mem *)st;
	m->zxid_durable = zxid_last;
	return 0;
}

static int64_t mem_durable_zxid(struct storage *st)
{
	return ((struct storage_mem *)st)->zxid_durable;
}

static void mem_close(struct storage *st)
{
	free(st);
}

static const struct storage_ops mem_ops = {
	.append = mem_append,
	.durable_zxid = mem_durable_zxid,
	.close = mem_close,
};

struct storage *storage_mem_open(void)
{
	struct storage_mem *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	return &m->base;
}
