/* rk-c-client: drives a server through Apache ZooKeeper's C client
 * (libzookeeper_mt) and exits 0 only when every step saw what ZooKeeper
 * answers. Usage: rk-c-client HOST:PORT [ROOT]; prints one line per step. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper.h>

/* What the watchers saw; guarded by mu, signalled on cv. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected;
static int node_events;
static int node_event_type;
static char node_event_path[512];

static int failures;

static void step(const char *name, int ok)
{
	printf("%-40s %s\n", name, ok ? "ok" : "FAILED");
	fflush(stdout);
	if (!ok)
		failures++;
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&mu);
	connected = state == ZOO_CONNECTED_STATE;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	pthread_mutex_lock(&mu);
	node_events++;
	node_event_type = type;
	snprintf(node_event_path, sizeof(node_event_path), "%s", path ? path : "");
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Waits until *value >= want or timeout_ms passes; returns *value. */
static int wait_at_least(const int *value, int want, int timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mu);
	while (*value < want && pthread_cond_timedwait(&cv, &mu, &deadline) != ETIMEDOUT)
		;
	int v = *value;
	pthread_mutex_unlock(&mu);
	return v;
}

static int last_event_is(int type, const char *path)
{
	pthread_mutex_lock(&mu);
	int ok = node_event_type == type && strcmp(node_event_path, path) == 0;
	pthread_mutex_unlock(&mu);
	return ok;
}

static int data_is(zhandle_t *zh, const char *path, const char *want, int version)
{
	char buf[64];
	int len = sizeof(buf);
	struct Stat st;
	int rc = zoo_get(zh, path, 0, buf, &len, &st);
	return rc == ZOK && len == (int)strlen(want) && memcmp(buf, want, len) == 0 &&
	       st.version == version && st.dataLength == len;
}

static void crud_steps(zhandle_t *zh, const char *root)
{
	char got[512];
	struct Stat st;
	int rc = zoo_create(zh, root, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, got,
			    sizeof(got));
	step("create", rc == ZOK && strcmp(got, root) == 0);
	rc = zoo_create(zh, root, "again", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	step("create existing -> ZNODEEXISTS", rc == ZNODEEXISTS);
	step("get", data_is(zh, root, "hello", 0));
	rc = zoo_set2(zh, root, "world!", 6, 0, &st);
	step("set version 0", rc == ZOK && st.version == 1 && st.dataLength == 6);
	step("set stale version -> ZBADVERSION", zoo_set(zh, root, "x", 1, 0) == ZBADVERSION);
	step("get after set", data_is(zh, root, "world!", 1));
	step("get missing -> ZNONODE", zoo_exists(zh, "/rk-c-client-missing", 0, &st) == ZNONODE);
}

static void watch_steps(zhandle_t *zh, const char *root)
{
	char buf[64], child[512];
	int len = sizeof(buf);
	struct Stat st;
	int rc = zoo_wget(zh, root, node_watcher, NULL, buf, &len, &st);
	step("wget sets a data watch", rc == ZOK && len == 6);
	step("set fires the watch", zoo_set(zh, root, "third", 5, -1) == ZOK &&
					wait_at_least(&node_events, 1, 5000) == 1 &&
					last_event_is(ZOO_CHANGED_EVENT, root));
	zoo_set(zh, root, "fourth", 6, -1);
	zoo_exists(zh, root, 0, &st); /* a round trip after the second set */
	usleep(300 * 1000);
	step("watch fired once only", wait_at_least(&node_events, 2, 0) == 1);

	snprintf(child, sizeof(child), "%s/w", root);
	rc = zoo_wexists(zh, child, node_watcher, NULL, &st);
	step("wexists on missing node", rc == ZNONODE);
	rc = zoo_create(zh, child, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	step("create fires NodeCreated", rc == ZOK && wait_at_least(&node_events, 2, 5000) == 2 &&
					     last_event_is(ZOO_CREATED_EVENT, child));
}

static void sequence_and_multi_steps(zhandle_t *zh, const char *root)
{
	char prefix[512], got[512], want[600];
	struct String_vector kids;
	snprintf(prefix, sizeof(prefix), "%s/seq-", root);
	int rc = zoo_create(zh, prefix, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, got,
			    sizeof(got));
	snprintf(want, sizeof(want), "%s0000000001", prefix); /* after /w */
	step("ephemeral sequential create", rc == ZOK && strcmp(got, want) == 0);
	rc = zoo_get_children(zh, root, 0, &kids);
	step("get_children", rc == ZOK && kids.count == 2);
	if (rc == ZOK)
		deallocate_String_vector(&kids);

	zoo_op_t ops[2];
	zoo_op_result_t res[2];
	zoo_delete_op_init(&ops[0], got, -1);
	zoo_check_op_init(&ops[1], root, 99); /* wrong version: all or nothing */
	rc = zoo_multi(zh, 2, ops, res);
	step("failed multi rolls back", rc == ZBADVERSION && res[0].err == ZOK &&
					    res[1].err == ZBADVERSION &&
					    zoo_exists(zh, got, 0, NULL) == ZOK);
	zoo_delete_op_init(&ops[0], got, -1);
	zoo_check_op_init(&ops[1], root, 3);
	rc = zoo_multi(zh, 2, ops, res);
	step("multi commits", rc == ZOK && zoo_exists(zh, got, 0, NULL) == ZNONODE);
}

static void delete_steps(zhandle_t *zh, const char *root)
{
	char child[512];
	snprintf(child, sizeof(child), "%s/w", root);
	step("delete non-empty -> ZNOTEMPTY", zoo_delete(zh, root, -1) == ZNOTEMPTY);
	step("delete child", zoo_delete(zh, child, 0) == ZOK);
	step("delete stale version -> ZBADVERSION", zoo_delete(zh, root, 0) == ZBADVERSION);
	step("delete", zoo_delete(zh, root, 3) == ZOK);
	step("gone", zoo_exists(zh, root, 0, NULL) == ZNONODE);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s HOST:PORT [ROOT]\n", argv[0]);
		return 2;
	}
	const char *root = argc > 2 ? argv[2] : "/rk-c-client";
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
	zhandle_t *zh = zookeeper_init(argv[1], session_watcher, 10000, NULL, NULL, 0);
	if (!zh) {
		perror("zookeeper_init");
		return 1;
	}
	step("connect", wait_at_least(&connected, 1, 15000) == 1);
	if (failures == 0) {
		crud_steps(zh, root);
		watch_steps(zh, root);
		sequence_and_multi_steps(zh, root);
		delete_steps(zh, root);
	}
	step("close", zookeeper_close(zh) == ZOK);
	printf("%s\n", failures ? "FAILED" : "ALL OK");
	return failures ? 1 : 0;
}
