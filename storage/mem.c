/* In-memory storage: nothing survives a restart; commits are durable at
 * once. For tests of the layers above and for throwaway servers. */
#include <errno.h>
#include <stdlib.h>

#include "storage/storage.h"

struct storage_mem {
	struct storage base;
	int64_t zxid_added;
	int64_t zxid_durable;
};

static int mem_add(struct storage *st, int64_t zxid, uint32_t type, const void *payload,
		   uint32_t len)
{
	((struct storage_mem *)st)->zxid_added = zxid;
	return 0;
}

static int mem_commit(struct storage *st)
{
	struct storage_mem *m = (struct storage_mem *)st;
	m->zxid_durable = m->zxid_added;
	return 0;
}

static void mem_poll(struct storage *st)
{
}

static int64_t mem_durable_zxid(struct storage *st)
{
	return ((struct storage_mem *)st)->zxid_durable;
}

static int mem_wait_fd(struct storage *st)
{
	return -1;
}

static int mem_purge_before(struct storage *st, int64_t zxid)
{
	return 0;
}

static void mem_close(struct storage *st)
{
	free(st);
}

/* Nothing is kept, so rewinding only moves the marks. */
static int mem_truncate(struct storage *st, int64_t zxid)
{
	struct storage_mem *m = (struct storage_mem *)st;
	if (zxid < 0)
		return -EINVAL;
	if (m->zxid_added != m->zxid_durable)
		return -EBUSY; /* records added and not committed, as the WAL says */
	if (m->zxid_added > zxid)
		m->zxid_added = m->zxid_durable = zxid;
	return 0;
}

static int mem_reset(struct storage *st, int64_t zxid)
{
	struct storage_mem *m = (struct storage_mem *)st;
	if (zxid < 0)
		return -EINVAL;
	m->zxid_added = m->zxid_durable = zxid;
	return 0;
}

static int64_t mem_last_zxid(struct storage *st)
{
	return ((struct storage_mem *)st)->zxid_added;
}

static const struct storage_ops mem_ops = {
    .add = mem_add,
    .commit = mem_commit,
    .poll = mem_poll,
    .durable_zxid = mem_durable_zxid,
    .wait_fd = mem_wait_fd,
    .purge_before = mem_purge_before,
    .close = mem_close,
    .truncate = mem_truncate,
    .reset = mem_reset,
    .last_zxid = mem_last_zxid,
};

struct storage *storage_mem_open(void)
{
	struct storage_mem *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	return &m->base;
}
