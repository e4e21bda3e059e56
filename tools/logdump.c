/* ringkeeper-logdump DIR_OR_FILE: print the txn log's segment headers,
 * frames and records, checking every checksum and the zxid order with the
 * same scanner recovery uses. Exit 0 when the log is sound (a torn tail,
 * which the server cuts at open, included), 1 on corruption, 2 when a file
 * cannot be read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/wal_segment.h"

enum verdict {
	VERDICT_OK = 0,	    /* sound, or only a torn tail */
	VERDICT_CORRUPT,    /* exit 1 */
	VERDICT_UNREADABLE, /* exit 2 */
	VERDICT_COUNT,
};

static void print_frame(void *ctx, const struct wal_frame_header *fh, uint64_t off)
{
	printf("  frame @%" PRIu64 ": zxid 0x%" PRIx64 "..0x%" PRIx64 ", %u records, %u "
	       "batches, %u bytes\n",
	       off, (uint64_t)fh->zxid_first, (uint64_t)fh->zxid_last, fh->records, fh->batches,
	       fh->bytes);
}

static void print_record(void *ctx, const struct wal_record_header *rh, uint64_t off,
			 bool checksum_ok)
{
	printf("    zxid 0x%" PRIx64 " type %u len %u @%" PRIu64 " checksum %s\n",
	       (uint64_t)rh->zxid, rh->type, rh->len, off, checksum_ok ? "OK" : "BAD");
}

static const struct wal_scan_ops dump_ops = {
    .frame_seen = print_frame,
    .record_seen = print_record,
};

static void print_header(const char *name, const struct wal_segment_header *h)
{
	time_t t = (time_t)(h->created_ms / 1000);
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s: version %u, database %016" PRIx64 ", first zxid 0x%" PRIx64 ", %" PRIu64
	       " bytes, created %s\n",
	       name, h->version, h->db_id, (uint64_t)h->zxid_first, h->segment_bytes, when);
}

/* Dump one segment; sc carries the database id and zxid across segments. */
static enum verdict dump_segment(int dir_fd, const char *path, const char *name, bool newest,
				 struct wal_scan *sc)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	struct wal_segment_header h;
	if (fd < 0 || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno ? errno : EIO));
		if (fd >= 0)
			close(fd);
		return VERDICT_UNREADABLE;
	}
	print_header(name, &h);
	int rc = wal_scan_segment(fd, sc, &dump_ops, NULL);
	close(fd);
	if (rc) {
		fprintf(stderr, "%s: read: %s\n", path, strerror(-rc));
		return VERDICT_UNREADABLE;
	}
	if (sc->end == WAL_SCAN_CLEAN) {
		printf("%s: OK, %u frames, %" PRIu64 " records, data ends at offset %" PRIu64 "\n",
		       name, sc->frames, sc->records, sc->end_off);
		return VERDICT_OK;
	}
	if (sc->end == WAL_SCAN_TORN && newest) {
		printf("%s: torn tail at offset %" PRIu64 " (%s at offset %" PRIu64
		       "); the server cuts it at open\n",
		       name, sc->end_off, sc->why, sc->bad_off);
		return VERDICT_OK;
	}
	printf("%s: CORRUPT at offset %" PRIu64 ": %s\n", name, sc->bad_off, sc->why);
	fprintf(stderr, "%s: corrupt at offset %" PRIu64 ": %s\n", path, sc->bad_off, sc->why);
	return VERDICT_CORRUPT;
}

static enum verdict dump_dir(const char *dir)
{
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int64_t *firsts = NULL;
	size_t n = 0;
	int rc = dir_fd < 0 ? -errno : wal_segment_list(dir_fd, false, &firsts, &n);
	if (rc) {
		fprintf(stderr, "%s: %s\n", dir, strerror(-rc));
		if (dir_fd >= 0)
			close(dir_fd);
		return VERDICT_UNREADABLE;
	}
	printf("%s: %zu segment(s)\n", dir, n);
	enum verdict worst = VERDICT_OK;
	struct wal_scan sc = {0};
	for (size_t i = 0; i < n; i++) {
		char name[WAL_NAME_BYTES], path[4096];
		wal_segment_name(name, firsts[i]);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		sc.zxid_name = firsts[i];
		uint64_t db_id = sc.db_id;
		enum verdict v = dump_segment(dir_fd, path, name, i + 1 == n, &sc);
		if (v > worst)
			worst = v;
		if (v != VERDICT_OK) { /* judge the next segment on its own */
			sc.zxid_prev = 0;
			sc.db_id = db_id;
		}
	}
	free(firsts);
	close(dir_fd);
	return worst;
}

static enum verdict dump_file(const char *path)
{
	char *copy = strdup(path);
	char *slash = copy ? strrchr(copy, '/') : NULL;
	const char *name = slash ? slash + 1 : copy;
	if (slash)
		*slash = '\0';
	int dir_fd = open(slash ? (*copy ? copy : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!copy || dir_fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno ? errno : ENOMEM));
		free(copy);
		return VERDICT_UNREADABLE;
	}
	struct wal_scan sc = {0};
	if (!wal_segment_name_parse(name, &sc.zxid_name))
		sc.zxid_name = 0; /* renamed copies are checked on their contents */
	enum verdict v = dump_segment(dir_fd, path, name, true, &sc);
	close(dir_fd);
	free(copy);
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ringkeeper-logdump DIR_OR_FILE\n"
				"  Prints and checks a Ringkeeper txn log (a dataLogDir or one "
				"log.<zxid> segment).\n"
				"  Exit 0: sound (a torn tail is cut at open); 1: corrupt; 2: "
				"unreadable.\n");
		return 2;
	}
	struct stat st;
	if (stat(argv[1], &st) != 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	enum verdict v = S_ISDIR(st.st_mode) ? dump_dir(argv[1]) : dump_file(argv[1]);
	return (int)v;
}
