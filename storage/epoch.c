/* The acceptedEpoch and currentEpoch files: decimal text in ZooKeeper's
 * format, read strictly and replaced atomically (temp file, fsync, rename,
 * directory fsync). */
#include "storage/epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define TMP_SUFFIX ".tmp"
/* Far more than "4294967295\r\n": a longer file is not an epoch file. */
#define TEXT_MAX 32

static int path_of(char *out, size_t cap, const char *dir, const char *name, const char *suffix)
{
	RK_ASSERT(*name && !strchr(name, '/'));
	int n = snprintf(out, cap, "%s/%s%s", dir, name, suffix);
	return n >= 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* Up to cap bytes from fd; *len < cap means the whole file was read. */
static int read_text(int fd, char *buf, size_t cap, size_t *len)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t k = read(fd, buf + got, cap - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*len = got;
	return 0;
}

/* Digits, then at most one "\n" or "\r\n", then the end; 0..UINT32_MAX. */
static bool parse_epoch(const char *s, size_t n, uint32_t *out)
{
	if (n && s[n - 1] == '\n')
		n--;
	if (n && s[n - 1] == '\r')
		n--;
	if (!n)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

int epoch_read(const char *dir, const char *name, uint32_t *out)
{
	*out = 0;
	char path[PATH_MAX];
	int rc = path_of(path, sizeof path, dir, name, "");
	if (rc)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* a server that never took part in an election */
		rc = -errno;
		log_error("epoch: open %s failed: %s", path, strerror(-rc));
		return rc;
	}
	char text[TEXT_MAX + 1];
	size_t len = 0;
	rc = read_text(fd, text, sizeof text, &len);
	close(fd);
	if (rc) {
		log_error("epoch: read %s failed: %s", path, strerror(-rc));
		return rc;
	}
	if (len > TEXT_MAX || !parse_epoch(text, len, out)) {
		*out = 0;
		log_error("epoch: %s does not hold an epoch (a decimal number up to %u)", path,
			  UINT32_MAX);
		return -EBADMSG;
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The new value under the temporary name, synced. */
static int write_tmp(int dir_fd, const char *tmp, uint32_t v, const char **call)
{
	char text[TEXT_MAX];
	int n = snprintf(text, sizeof text, "%u", v);
	*call = "open";
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	*call = "write";
	int rc = write_all(fd, text, (size_t)n);
	if (!rc) {
		*call = "fsync";
		rc = fsync(fd) == 0 ? 0 : -errno;
	}
	if (close(fd) != 0 && !rc) {
		*call = "close";
		rc = -errno;
	}
	return rc;
}

int epoch_write(const char *dir, const char *name, uint32_t v)
{
	char tmp[PATH_MAX];
	int rc = path_of(tmp, sizeof tmp, dir, name, TMP_SUFFIX);
	if (rc)
		return rc;
	const char *base = strrchr(tmp, '/') + 1;
	const char *call = "open (directory)";
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		rc = -errno;
		goto err;
	}
	rc = write_tmp(dir_fd, base, v, &call);
	if (!rc) {
		call = "rename";
		rc = renameat(dir_fd, base, dir_fd, name) == 0 ? 0 : -errno;
	}
	if (rc) {
		unlinkat(dir_fd, base, 0);
		goto err;
	}
	/* The rename is durable only once the directory is. */
	call = "fsync (directory)";
	rc = fsync(dir_fd) == 0 ? 0 : -errno;
	if (rc)
		goto err;
	close(dir_fd);
	return 0;
err:
	log_error("epoch: %s %s/%s failed: %s", call, dir, name, strerror(-rc));
	if (dir_fd >= 0)
		close(dir_fd);
	return rc;
}
