/* ringkeeper-snapdump FILE_OR_DIR [--data]: print a snapshot's header,
 * sessions and znodes (Stat, data length, ACL; the data too with --data),
 * checking the file's checksum and the body's consistency by decoding it
 * into a scratch tree, as the server would. For a directory, every snapshot
 * in it, oldest first. Exit 0 when sound, 1 on corruption (the file and
 * byte offset are named), 2 when a file cannot be read. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/snapshot.h"
#include "storage/snapfile.h"

enum verdict {
	VERDICT_OK = 0,	    /* sound */
	VERDICT_CORRUPT,    /* exit 1 */
	VERDICT_UNREADABLE, /* exit 2 */
	VERDICT_COUNT,
};

struct dump {
	bool data; /* --data */
	uint64_t znodes;
	uint32_t sessions;
};

static void print_time(const char *label, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %s", label, when);
}

static void print_perms(int32_t perms)
{
	/* ZooKeeper's order in getAcl output. */
	static const struct {
		int32_t bit;
		char c;
	} letters[] = {{ZPERM_CREATE, 'c'},
		       {ZPERM_DELETE, 'd'},
		       {ZPERM_READ, 'r'},
		       {ZPERM_WRITE, 'w'},
		       {ZPERM_ADMIN, 'a'}};
	for (size_t i = 0; i < sizeof letters / sizeof *letters; i++)
		if (perms & letters[i].bit)
			putchar(letters[i].c);
	if (perms & ~ZPERM_ALL)
		printf("+0x%x", (unsigned)(perms & ~ZPERM_ALL));
}

static void print_acl(const struct acl_list *acl)
{
	putchar('[');
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		printf("%s%s:%s:", i ? ", " : "", e->id.scheme, e->id.id);
		print_perms(e->perms);
	}
	putchar(']');
}

static bool printable(const uint8_t *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
		if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\n' && p[i] != '\t')
			return false;
	return true;
}

static void print_data(const uint8_t *p, int32_t n)
{
	if (printable(p, n)) {
		printf("    data \"");
		for (int32_t i = 0; i < n; i++) {
			if (p[i] == '\n')
				fputs("\\n", stdout);
			else if (p[i] == '\t')
				fputs("\\t", stdout);
			else if (p[i] == '"' || p[i] == '\\')
				printf("\\%c", p[i]);
			else
				putchar(p[i]);
		}
		printf("\"\n");
		return;
	}
	printf("    data hex ");
	for (int32_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

static int show_header(void *ctx, const struct snap_body_header *h)
{
	struct dump *d = ctx;
	d->znodes = h->n_znodes;
	d->sessions = h->n_sessions;
	printf("  body version %u, zxid 0x%" PRIx64 ", %u sessions, %" PRIu64 " znodes\n",
	       h->version, (uint64_t)h->zxid, h->n_sessions, h->n_znodes);
	return 0;
}

static int show_session(void *ctx, const struct snap_session *s, size_t off)
{
	printf("  session 0x%016" PRIx64 " timeout %d ms password ", s->id, s->timeout_ms);
	for (size_t i = 0; i < sizeof s->passwd; i++)
		printf("%02x", s->passwd[i]);
	putchar('\n');
	return 0;
}

static int show_znode(void *ctx, const struct snap_znode *z)
{
	struct dump *d = ctx;
	const struct zk_stat *st = &z->stat;
	printf("  %.*s\n    czxid 0x%" PRIx64 " mzxid 0x%" PRIx64 " pzxid 0x%" PRIx64
	       " ctime %" PRId64 " mtime %" PRId64 " version %d cversion %d aversion %d "
	       "ephemeralOwner 0x%" PRIx64 " numChildren %d\n",
	       (int)z->path_len, z->path, (uint64_t)st->czxid, (uint64_t)st->mzxid,
	       (uint64_t)st->pzxid, st->ctime, st->mtime, st->version, st->cversion, st->aversion,
	       (uint64_t)st->ephemeral_owner, st->num_children);
	if (z->data_len < 0)
		printf("    data null");
	else
		printf("    data %d bytes", z->data_len);
	printf(", acl #%u ", z->acl_index);
	print_acl(z->acl);
	putchar('\n');
	if (d->data && z->data_len > 0)
		print_data(z->data, z->data_len);
	return 0;
}

static enum verdict corrupt(const char *path, uint64_t off, const char *what)
{
	printf("%s: CORRUPT at offset %" PRIu64 ": %s\n", path, off, what);
	fprintf(stderr, "%s: corrupt at offset %" PRIu64 ": %s\n", path, off, what);
	return VERDICT_CORRUPT;
}

/* The body's own checks, then a full decode for what needs a tree. */
static enum verdict check_body(const char *path, const struct snapfile_image *img, struct dump *d)
{
	const uint64_t at = sizeof(struct snapfile_header);
	struct snap_visitor vis = {show_header, show_session, show_znode, d};
	struct snap_fault f;
	int rc = snapshot_walk(img->body, img->body_len, &vis, &f);
	if (rc == -EBADMSG)
		return corrupt(path, at + f.off, f.what);
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(0, 0);
	int64_t zxid = -1;
	if (!rc)
		rc = t && st ? snapshot_decode_report(img->body, img->body_len, t, st, &zxid, &f)
			     : -ENOMEM;
	session_table_destroy(st);
	tree_destroy(t);
	if (rc == -EBADMSG)
		return corrupt(path, at + f.off, f.what);
	if (rc) {
		fprintf(stderr, "%s: %s\n", path, strerror(-rc));
		return VERDICT_UNREADABLE;
	}
	if (zxid != img->zxid)
		return corrupt(path, at + offsetof(struct snap_body_header, zxid),
			       "body zxid differs from the file header's");
	return VERDICT_OK;
}

static enum verdict dump_file(const char *path, bool data)
{
	struct snapfile_image img;
	struct snapfile_fault f;
	int rc = snapfile_read(path, &img, &f);
	if (rc == -EBADMSG)
		return corrupt(path, f.off, f.what);
	if (rc) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
		return VERDICT_UNREADABLE;
	}
	printf("%s: version %u, database %016" PRIx64 ", zxid 0x%" PRIx64 ", ", path,
	       SNAPFILE_FORMAT_VERSION, img.db_id, (uint64_t)img.zxid);
	print_time("created", img.created_ms);
	printf(", body %zu bytes, checksum OK\n", img.body_len);
	struct dump d = {.data = data};
	enum verdict v = check_body(path, &img, &d);
	if (v == VERDICT_OK)
		printf("%s: OK, %u sessions, %" PRIu64 " znodes\n", path, d.sessions, d.znodes);
	snapfile_image_free(&img);
	return v;
}

static int oldest_first(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static enum verdict dump_dir(const char *dir, bool data)
{
	DIR *dh = opendir(dir);
	if (!dh) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return VERDICT_UNREADABLE;
	}
	int64_t *zxids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(dh))) {
		int64_t zxid;
		bool tmp;
		if (!snapfile_name_parse(e->d_name, &zxid, &tmp))
			continue;
		if (tmp) {
			printf("%s/%s: temporary (a snapshot being written, or left by a crash)\n",
			       dir, e->d_name);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			int64_t *z = realloc(zxids, cap * sizeof *z);
			if (!z) {
				closedir(dh);
				free(zxids);
				fprintf(stderr, "%s: %s\n", dir, strerror(ENOMEM));
				return VERDICT_UNREADABLE;
			}
			zxids = z;
		}
		zxids[n++] = zxid;
	}
	closedir(dh);
	if (n > 1)
		qsort(zxids, n, sizeof *zxids, oldest_first);
	printf("%s: %zu snapshot(s)\n", dir, n);
	enum verdict worst = VERDICT_OK;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/snapshot.%016" PRIx64, dir, (uint64_t)zxids[i]);
		enum verdict v = dump_file(path, data);
		if (v > worst)
			worst = v;
	}
	free(zxids);
	return worst;
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	bool data = false, usage = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0)
			data = true;
		else if (argv[i][0] == '-' || target)
			usage = true;
		else
			target = argv[i];
	}
	if (usage || !target) {
		fprintf(stderr, "usage: ringkeeper-snapdump FILE_OR_DIR [--data]\n"
				"  Prints and checks Ringkeeper snapshots (a snapshot directory "
				"or one snapshot.<zxid> file);\n"
				"  --data prints each znode's data (text if printable, else hex).\n"
				"  Exit 0: sound; 1: corrupt; 2: unreadable.\n");
		return 2;
	}
	struct stat st;
	if (stat(target, &st) != 0) {
		fprintf(stderr, "%s: %s\n", target, strerror(errno));
		return 2;
	}
	enum verdict v = S_ISDIR(st.st_mode) ? dump_dir(target, data) : dump_file(target, data);
	return (int)v;
}
