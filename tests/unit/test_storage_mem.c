/* The in-memory store: it keeps no record, but its marks follow the
 * storage interface's contract, truncate and reset included, so layers
 * above can be tested on it. */
#include <criterion/criterion.h>
#include <errno.h>

#include "storage/storage.h"

Test(storage_mem, commits_are_durable_at_once)
{
	struct storage *st = storage_mem_open();
	cr_assert_not_null(st);
	cr_assert_eq(st->ops->last_zxid(st), 0);
	cr_assert_eq(st->ops->add(st, 1, 0, NULL, 0), 0);
	cr_assert_eq(st->ops->last_zxid(st), 1);
	cr_assert_eq(st->ops->durable_zxid(st), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->durable_zxid(st), 1);
	cr_assert_eq(st->ops->wait_fd(st), -1);
	st->ops->close(st);
}

Test(storage_mem, truncate_and_reset_move_the_marks)
{
	struct storage *st = storage_mem_open();
	for (int64_t z = 1; z <= 7; z++)
		cr_assert_eq(st->ops->add(st, z, 0, NULL, 0), 0);
	cr_assert_eq(st->ops->truncate(st, 5), -EBUSY, "records added and not committed");
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->truncate(st, -1), -EINVAL);
	cr_assert_eq(st->ops->truncate(st, 5), 0);
	cr_assert_eq(st->ops->last_zxid(st), 5);
	cr_assert_eq(st->ops->durable_zxid(st), 5);
	cr_assert_eq(st->ops->truncate(st, 9), 0, "nothing above 5 to drop");
	cr_assert_eq(st->ops->last_zxid(st), 5);
	cr_assert_eq(st->ops->reset(st, -1), -EINVAL);
	cr_assert_eq(st->ops->reset(st, 0x500000010), 0);
	cr_assert_eq(st->ops->last_zxid(st), 0x500000010);
	cr_assert_eq(st->ops->durable_zxid(st), 0x500000010);
	cr_assert_eq(st->ops->add(st, 0x500000011, 0, NULL, 0), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->durable_zxid(st), 0x500000011);
	st->ops->close(st);
}
