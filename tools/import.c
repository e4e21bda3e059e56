/* ringkeeper-import [--log-dir ZK_LOG_DIR] [--our-log-dir DIR] [--force]
 *                   ZK_DATA_DIR OUR_DATA_DIR
 * Moves a ZooKeeper 3.x server's data to Ringkeeper: reads the newest
 * ZooKeeper snapshot that verifies and the txn log after it (tools/zk/),
 * and writes the resulting tree and sessions as a Ringkeeper snapshot at the
 * same zxid into OUR_DATA_DIR/snapshots, where the server loads it at start
 * (docs/import.md). Exit 0 when imported, 1 when the ZooKeeper data is
 * refused (the file and byte offset are named), 2 for usage, an
 * OUR_DATA_DIR that already holds Ringkeeper data, or an I/O error. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/session.h"
#include "core/snapshot.h"
#include "core/tree.h"
#include "core/txn.h"
#include "storage/epoch.h"
#include "storage/snapfile.h"
#include "tools/zk/zkfiles.h"
#include "tools/zk/zktree.h"

enum verdict {
	VERDICT_OK = 0,	  /* imported */
	VERDICT_REFUSED,  /* the ZooKeeper data is damaged or inconsistent: exit 1 */
	VERDICT_UNUSABLE, /* usage, our directory, I/O: exit 2 */
	VERDICT_COUNT,
};

struct opts {
	const char *zk_dir;
	const char *zk_log_dir; /* --log-dir, or NULL */
	const char *our_dir;
	const char *our_log_dir; /* --our-log-dir, or our_dir */
	bool force;
};

/* What the summary reports. */
struct report {
	char snap_dir[PATH_MAX], log_dir[PATH_MAX];
	const struct zk_file *snap;
	unsigned snaps_skipped;
	int64_t newest_zxid; /* of any snapshot, verified or not */
	struct zklog_result log;
	size_t dead_ephemerals;
	int quotas;
	int system_added;
	uint64_t znodes, ephemerals;
	size_t sessions;
	int64_t zxid; /* imported */
	char out_path[PATH_MAX];
	uint32_t accepted_epoch, current_epoch;
	char moved[2][PATH_MAX];
};

static int usage(void)
{
	fprintf(stderr,
		"usage: ringkeeper-import [--log-dir ZK_LOG_DIR] [--our-log-dir DIR] [--force]\n"
		"                         ZK_DATA_DIR OUR_DATA_DIR\n"
		"  Reads ZooKeeper's dataDir (version-2/snapshot.* and log.*; the logs from\n"
		"  --log-dir when ZooKeeper had a dataLogDir) and writes its tree and sessions\n"
		"  as a Ringkeeper snapshot into OUR_DATA_DIR/snapshots. ZK_DATA_DIR itself\n"
		"  may be OUR_DATA_DIR: the files do not overlap. OUR_DATA_DIR must hold no\n"
		"  Ringkeeper snapshots and no txn log (OUR_DATA_DIR/txnlog, or\n"
		"  --our-log-dir/txnlog when dataLogDir is set); --force moves them aside.\n"
		"  Exit 0: imported; 1: the ZooKeeper data is refused (file and offset\n"
		"  named); 2: usage, our directory or I/O.\n");
	return VERDICT_UNUSABLE;
}

/* A path from parts; parse_args bounds the arguments, so it always fits,
 * and truncation would still only fail an open, never overrun. */
static void path_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ZooKeeper keeps its files in <dir>/version-2; take that or the
 * version-2 directory itself. */
static void zk_files_dir(const char *dir, char *out, size_t outlen)
{
	path_fmt(out, outlen, "%s/version-2", dir);
	if (!is_dir(out))
		path_fmt(out, outlen, "%s", dir);
}

/* ---- our directory ---- */

static bool dir_has_entries(const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return false;
	bool any = false;
	struct dirent *e;
	while (!any && (e = readdir(dh)))
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(dh);
	return any;
}

/* A directory of Ringkeeper data that is in the way: refused, or with
 * --force renamed to <dir>.before-import-<seconds>. */
static int clear_way(const char *dir, bool force, char *moved, size_t movedlen)
{
	moved[0] = '\0';
	if (!dir_has_entries(dir))
		return 0;
	if (!force)
		return -EEXIST; /* check_ours said so already */
	path_fmt(moved, movedlen, "%s.before-import-%lld", dir, (long long)time(NULL));
	if (rename(dir, moved) != 0) {
		int e = errno;
		fprintf(stderr, "ringkeeper-import: rename %s to %s: %s\n", dir, moved,
			strerror(e));
		return -e;
	}
	return 0;
}

/* Before anything is read: refuses a directory holding Ringkeeper data
 * unless --force, so a refusal changes nothing. */
static int check_ours(const struct opts *o, char *snaps, char *log, size_t len)
{
	path_fmt(snaps, len, "%s/snapshots", o->our_dir);
	path_fmt(log, len, "%s/txnlog", o->our_log_dir);
	bool s = dir_has_entries(snaps), l = dir_has_entries(log);
	if (o->force || (!s && !l))
		return 0;
	fprintf(stderr,
		"ringkeeper-import: %s already holds Ringkeeper data (%s%s%s); refusing to "
		"import over it (--force moves it aside)\n",
		o->our_dir, s ? snaps : "", s && l ? ", " : "", l ? log : "");
	return -EEXIST;
}

/* Once the input is known good: creates our directory and moves earlier
 * data aside (--force). */
static int prepare_ours(const struct opts *o, const char *snaps, const char *log, struct report *r)
{
	if (mkdir(o->our_dir, 0755) != 0 && errno != EEXIST) {
		int e = errno;
		fprintf(stderr, "ringkeeper-import: mkdir %s: %s\n", o->our_dir, strerror(e));
		return -e;
	}
	int rc = clear_way(snaps, o->force, r->moved[0], sizeof r->moved[0]);
	return rc ? rc : clear_way(log, o->force, r->moved[1], sizeof r->moved[1]);
}

/* ---- reading ZooKeeper's data ---- */

static void print_fault(const char *prefix, const struct zk_fault *f)
{
	fprintf(stderr, "ringkeeper-import: %s%s: corrupt at offset %" PRIu64 ": %s\n", prefix,
		f->file, f->off, f->what);
}

/* The newest snapshot that loads and verifies, as ZooKeeper picks it. */
static enum verdict load_snapshot(const struct zk_listing *l, struct report *r, struct zktree **out)
{
	r->newest_zxid = l->n_snaps ? l->snaps[0].zxid : -1;
	for (size_t i = 0; i < l->n_snaps; i++) {
		struct zktree *t = zktree_create();
		struct zk_fault f = {0};
		int rc = t ? zksnap_load(&l->snaps[i], t, &f) : -ENOMEM;
		if (rc == 0) {
			r->snap = &l->snaps[i];
			*out = t;
			return VERDICT_OK;
		}
		zktree_destroy(t);
		if (rc == -ENOMEM) {
			fprintf(stderr, "ringkeeper-import: out of memory\n");
			return VERDICT_UNUSABLE;
		}
		const char *prefix = i + 1 < l->n_snaps ? "skipping " : "";
		if (rc == -EBADMSG)
			print_fault(prefix, &f);
		else /* compressed, or unreadable: ZooKeeper skips those too */
			fprintf(stderr, "ringkeeper-import: %s%s: %s\n", prefix, f.file, f.what);
		r->snaps_skipped++;
	}
	if (l->n_snaps == 0)
		fprintf(stderr,
			"ringkeeper-import: no ZooKeeper snapshot in %s (ZooKeeper itself will not "
			"start from a txn log alone)\n",
			r->snap_dir);
	else
		fprintf(stderr, "ringkeeper-import: none of the %zu snapshots in %s verifies\n",
			l->n_snaps, r->snap_dir);
	return VERDICT_REFUSED;
}

static enum verdict replay_log(const struct zk_listing *l, struct zktree *t, struct report *r)
{
	struct zk_fault f = {0};
	int rc = zklog_replay(l, r->snap->zxid, t, &r->log, &f);
	if (rc == -EBADMSG) {
		print_fault("", &f);
		return VERDICT_REFUSED;
	}
	if (rc) {
		fprintf(stderr, "ringkeeper-import: %s: %s\n", f.file, f.what);
		return VERDICT_UNUSABLE;
	}
	/* A newer snapshot that did not verify still shows how far the data
	 * went: the log must reach it. */
	if (zktree_zxid(t) < r->newest_zxid) {
		fprintf(stderr,
			"ringkeeper-import: the txn log in %s ends at zxid 0x%" PRIx64
			" but a newer snapshot reached 0x%" PRIx64 ": txns are missing\n",
			r->log_dir, (uint64_t)zktree_zxid(t), (uint64_t)r->newest_zxid);
		return VERDICT_REFUSED;
	}
	return VERDICT_OK;
}

struct session_check {
	int64_t bad;
	const char *why;
};

static int check_session(void *ctx, int64_t id, int32_t timeout)
{
	struct session_check *c = ctx;
	if (id == 0)
		c->why = "session id 0";
	else if (!zktree_owner_is_session(id))
		c->why = "a session id of server 255, which Ringkeeper reads as a TTL node's owner";
	else if (timeout <= 0)
		c->why = "a session timeout that is not positive";
	else
		return 0;
	c->bad = id;
	return 1;
}

/* What ZooKeeper does once it has loaded, then what Ringkeeper's image
 * needs that a ZooKeeper tree may lack. */
static enum verdict finish_tree(struct zktree *t, struct report *r)
{
	r->dead_ephemerals = zktree_kill_dead_owners(t);
	r->quotas = zktree_recount_quotas(t);
	r->system_added = zktree_add_system_nodes(t);
	if (r->quotas < 0 || r->system_added < 0) {
		fprintf(stderr, "ringkeeper-import: out of memory\n");
		return VERDICT_UNUSABLE;
	}
	const struct zknode *bad;
	if (zktree_check_acls(t, &bad)) {
		fprintf(stderr,
			"ringkeeper-import: %s: node %s refers to ACL %" PRId64
			", which neither the snapshot's ACL cache nor the log defines\n",
			r->snap->path, bad->path[0] ? bad->path : "/", bad->acl_id);
		return VERDICT_REFUSED;
	}
	struct session_check c = {0};
	if (zktree_foreach_session(t, check_session, &c)) {
		fprintf(stderr, "ringkeeper-import: session 0x%" PRIx64 ": %s\n", (uint64_t)c.bad,
			c.why);
		return VERDICT_REFUSED;
	}
	return VERDICT_OK;
}

/* ---- writing ours ---- */

/* Every node, parents first (an explicit stack: no depth limit). */
static int restore_nodes(const struct zktree *zt, struct tree *t, struct report *r)
{
	size_t cap = 1024, n = 0;
	const struct zknode **stack = malloc(cap * sizeof *stack);
	if (!stack)
		return -ENOMEM;
	stack[n++] = zktree_root(zt);
	int rc = 0;
	while (n && !rc) {
		const struct zknode *z = stack[--n];
		const char *path = z->path_len ? z->path : "/";
		size_t len = z->path_len ? z->path_len : 1;
		if (z->path_len && !txn_path_valid(path, len)) {
			fprintf(stderr,
				"ringkeeper-import: znode path %s is not valid in ZooKeeper\n",
				path);
			rc = -EINVAL;
			break;
		}
		struct zk_stat st = {.czxid = z->st.czxid,
				     .mzxid = z->st.mzxid,
				     .ctime = z->st.ctime,
				     .mtime = z->st.mtime,
				     .version = z->st.version,
				     .cversion = z->st.cversion,
				     .aversion = z->st.aversion,
				     .ephemeral_owner = z->st.ephemeral_owner,
				     .data_length = z->data_len > 0 ? z->data_len : 0,
				     .num_children = (int32_t)z->n_kids,
				     .pzxid = z->st.pzxid};
		/* Empty data is not null data: hand over a pointer for it. */
		const void *data = z->data_len == 0 ? (const void *)"" : (const void *)z->data;
		rc = tree_node_restore(t, path, len, &st, data, z->data_len, z->acl);
		r->znodes++;
		r->ephemerals += zktree_owner_is_session(z->st.ephemeral_owner);
		if (n + z->n_kids > cap) {
			while (n + z->n_kids > cap)
				cap *= 2;
			const struct zknode **v = realloc(stack, cap * sizeof *v);
			if (!v) {
				rc = -ENOMEM;
				break;
			}
			stack = v;
		}
		for (uint32_t i = z->n_kids; i > 0; i--)
			stack[n++] = z->kids[i - 1];
	}
	free(stack);
	return rc;
}

struct session_list {
	struct snap_session *v;
	size_t n;
};

static int add_session(void *ctx, int64_t id, int32_t timeout)
{
	struct session_list *l = ctx;
	struct snap_session *s = &l->v[l->n++];
	s->id = (uint64_t)id;
	s->timeout_ms = timeout;
	zk_session_password(id, s->passwd);
	return 0;
}

/* Reads the file back as the server will and compares it with what was
 * meant to go in. */
static int verify_written(const char *path, const struct tree_version *v, size_t n_sessions)
{
	struct snapfile_image img;
	struct snapfile_fault ff;
	int rc = snapfile_read(path, &img, &ff);
	if (rc) {
		fprintf(stderr, "ringkeeper-import: reading back %s: %s\n", path,
			rc == -EBADMSG ? ff.what : strerror(-rc));
		return rc;
	}
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(0, 0);
	struct snap_fault sf = {0};
	int64_t zxid = -1;
	rc = t && st ? snapshot_decode_report(img.body, img.body_len, t, st, &zxid, &sf) : -ENOMEM;
	if (rc)
		fprintf(stderr, "ringkeeper-import: %s does not decode at body offset %zu: %s\n",
			path, sf.off, sf.what ? sf.what : strerror(-rc));
	else if (zxid != v->zxid || tree_digest(tree_working(t)) != tree_digest(v) ||
		 session_count(st) != n_sessions) {
		fprintf(stderr,
			"ringkeeper-import: %s reads back different from what was written\n", path);
		rc = -EIO;
	}
	session_table_destroy(st);
	tree_destroy(t);
	snapfile_image_free(&img);
	return rc;
}

static int write_snapshot(const char *dir, const struct tree_version *v,
			  const struct session_list *sl, struct report *r)
{
	struct snapfile_writer *w;
	int rc = snapfile_begin(dir, v->zxid, 0, &w);
	if (rc)
		return rc;
	rc = snapshot_encode(v, sl->v, sl->n, snapfile_write_cb, w);
	if (rc) {
		snapfile_abort(w);
		return rc;
	}
	if ((rc = snapfile_commit(w)))
		return rc;
	path_fmt(r->out_path, sizeof r->out_path, "%s/snapshot.%016" PRIx64, dir,
		 (uint64_t)v->zxid);
	return verify_written(r->out_path, v, sl->n);
}

/* The epochs a ZAB peer keeps: at least the zxid's, and what ZooKeeper's
 * own files (in version-2) say when they say more. */
static int write_epochs(const struct opts *o, int64_t zxid, struct report *r)
{
	uint32_t zk_accepted = 0, zk_current = 0, epoch = (uint32_t)((uint64_t)zxid >> 32);
	epoch_read(r->snap_dir, EPOCH_ACCEPTED, &zk_accepted);
	epoch_read(r->snap_dir, EPOCH_CURRENT, &zk_current);
	r->current_epoch = zk_current > epoch ? zk_current : epoch;
	r->accepted_epoch = zk_accepted > r->current_epoch ? zk_accepted : r->current_epoch;
	int rc = epoch_write(o->our_dir, EPOCH_ACCEPTED, r->accepted_epoch);
	return rc ? rc : epoch_write(o->our_dir, EPOCH_CURRENT, r->current_epoch);
}

/* Takes *ztp: ZooKeeper's tree goes as soon as ours is built, so a large
 * import holds two trees at most (ours and the read-back check's). */
static enum verdict write_ours(const struct opts *o, struct zktree **ztp, struct report *r)
{
	struct zktree *zt = *ztp;
	struct tree *t = tree_create();
	struct session_list sl = {.v = calloc(zktree_session_count(zt) + 1, sizeof *sl.v)};
	int rc = t && sl.v ? restore_nodes(zt, t, r) : -ENOMEM;
	r->zxid = zktree_zxid(zt);
	if (!rc) {
		zktree_foreach_session(zt, add_session, &sl);
		r->sessions = sl.n;
	}
	zktree_destroy(zt);
	*ztp = NULL;
	if (!rc) {
		tree_set_zxid(t, r->zxid);
		tree_publish(t);
		char dir[PATH_MAX];
		path_fmt(dir, sizeof dir, "%s/snapshots", o->our_dir);
		rc = write_snapshot(dir, tree_acquire(t), &sl, r);
	}
	if (!rc)
		rc = write_epochs(o, r->zxid, r);
	free(sl.v);
	tree_destroy(t);
	if (rc == -EINVAL)
		return VERDICT_REFUSED;
	if (rc)
		fprintf(stderr, "ringkeeper-import: writing %s failed: %s\n", o->our_dir,
			strerror(-rc));
	return rc ? VERDICT_UNUSABLE : VERDICT_OK;
}

/* ---- summary ---- */

static void print_logs(const struct zk_listing *l, const struct report *r)
{
	int64_t from = 0;
	for (size_t i = 0; i < l->n_logs; i++)
		if (l->logs[i].zxid <= r->snap->zxid && l->logs[i].zxid > from)
			from = l->logs[i].zxid;
	for (size_t i = 0; i < l->n_logs; i++)
		if (l->logs[i].zxid >= from)
			printf("  txn log    %s\n", l->logs[i].path);
}

static void print_summary(const struct zk_listing *l, const struct report *r)
{
	int64_t zxid = r->zxid;
	printf("ringkeeper-import: imported zxid 0x%" PRIx64 " (epoch %u, counter %u)\n",
	       (uint64_t)zxid, (unsigned)((uint64_t)zxid >> 32), (unsigned)(zxid & 0xffffffff));
	printf("  snapshot   %s (zxid 0x%" PRIx64 ")%s\n", r->snap->path, (uint64_t)r->snap->zxid,
	       r->snaps_skipped ? ", newer ones skipped (see above)" : "");
	print_logs(l, r);
	printf("  records    %" PRIu64 " applied", r->log.applied);
	if (r->log.applied)
		printf(" (zxid 0x%" PRIx64 "..0x%" PRIx64 ")", (uint64_t)r->log.first_applied,
		       (uint64_t)zxid);
	printf(", %" PRIu64 " verified in %zu file(s)\n", r->log.records, r->log.files_read);
	if (r->log.torn)
		printf("  torn tail  %s at offset %" PRIu64 " (%s): %" PRIu64
		       " non-zero bytes after the last whole record ignored\n",
		       r->log.torn_file, r->log.torn_off, r->log.torn_why, r->log.torn_bytes);
	printf("  znodes     %" PRIu64 " (%" PRIu64 " ephemeral)\n", r->znodes, r->ephemerals);
	printf("  sessions   %zu\n", r->sessions);
	if (r->dead_ephemerals)
		printf("  removed    %zu ephemerals of sessions that had ended, as ZooKeeper does "
		       "when it loads\n",
		       r->dead_ephemerals);
	if (r->quotas)
		printf("  quotas     %d stats node(s) recounted, as ZooKeeper does when it loads\n",
		       r->quotas);
	if (r->system_added)
		printf("  added      %d system node(s) this snapshot lacked\n", r->system_added);
	for (int i = 0; i < 2; i++)
		if (r->moved[i][0])
			printf("  moved      earlier Ringkeeper data aside to %s\n", r->moved[i]);
	printf("  written    %s (verified)\n", r->out_path);
	printf("  epochs     acceptedEpoch %u, currentEpoch %u\n", r->accepted_epoch,
	       r->current_epoch);
}

/* ---- main ---- */

static bool parse_args(int argc, char **argv, struct opts *o)
{
	const char *pos[2] = {NULL, NULL};
	int n_pos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			o->force = true;
		else if (strcmp(argv[i], "--log-dir") == 0 && i + 1 < argc)
			o->zk_log_dir = argv[++i];
		else if (strcmp(argv[i], "--our-log-dir") == 0 && i + 1 < argc)
			o->our_log_dir = argv[++i];
		else if (argv[i][0] == '-' || n_pos == 2)
			return false;
		else
			pos[n_pos++] = argv[i];
	}
	o->zk_dir = pos[0];
	o->our_dir = pos[1];
	if (!o->our_log_dir)
		o->our_log_dir = o->our_dir;
	/* Room for the names appended to them. */
	const char *dirs[] = {o->zk_dir, o->zk_log_dir, o->our_dir, o->our_log_dir};
	for (size_t i = 0; i < 4 && n_pos == 2; i++)
		if (dirs[i] && strlen(dirs[i]) > PATH_MAX - 128)
			return false;
	return n_pos == 2;
}

static enum verdict run(const struct opts *o)
{
	struct report *r = calloc(1, sizeof *r);
	struct zk_listing l = {0};
	struct zktree *t = NULL;
	char err[PATH_MAX + 64];
	enum verdict v = VERDICT_UNUSABLE;
	if (!r)
		return v;
	zk_files_dir(o->zk_dir, r->snap_dir, sizeof r->snap_dir);
	zk_files_dir(o->zk_log_dir ? o->zk_log_dir : o->zk_dir, r->log_dir, sizeof r->log_dir);
	char snaps[PATH_MAX], log[PATH_MAX];
	if (check_ours(o, snaps, log, sizeof snaps))
		goto out;
	if (zkfiles_list(r->snap_dir, r->log_dir, &l, err, sizeof err)) {
		fprintf(stderr, "ringkeeper-import: %s\n", err);
		goto out;
	}
	if ((v = load_snapshot(&l, r, &t)) || (v = replay_log(&l, t, r)) || (v = finish_tree(t, r)))
		goto out;
	/* Only now, with the input known good, is our directory touched. */
	if (prepare_ours(o, snaps, log, r)) {
		v = VERDICT_UNUSABLE;
		goto out;
	}
	if ((v = write_ours(o, &t, r)) == VERDICT_OK)
		print_summary(&l, r);
out:
	zktree_destroy(t);
	zkfiles_listing_free(&l);
	free(r);
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	if (!parse_args(argc, argv, &o))
		return usage();
	return (int)run(&o);
}
