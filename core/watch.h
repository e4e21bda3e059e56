/* Per-core watch table: which of this core's sessions must hear about a change.
 * Semantics are ZooKeeper 3.9's server-side WatchManager (one table here plays
 * both DataTree.dataWatches and DataTree.childWatches).
 *
 * Kinds and what fires them (the trigger path is the changed node's path):
 *
 *   event                | DATA | CHILD | PERSISTENT | RECURSIVE on path | RECURSIVE on ancestor
 *   NodeCreated          | yes  |  -    |   yes      |   yes             |   yes
 *   NodeDataChanged      | yes  |  -    |   yes      |   yes             |   yes
 *   NodeDeleted          | yes  | yes   |   yes      |   yes             |   yes
 *   NodeChildrenChanged  |  -   | yes   |   yes      |    -              |    -
 *
 * DATA and CHILD watches are one-shot: firing removes them. PERSISTENT and
 * RECURSIVE ones stay until removed. A session gets at most one notification
 * per watch_trigger() however many of its watches match, and the event always
 * carries the trigger path (for a recursive watch: the descendant's path).
 * The caller triggers a NodeCreated/NodeDeleted on the node and then a
 * NodeChildrenChanged on its parent, as ZooKeeper's DataTree does.
 *
 * Ownership and threading: a table belongs to one core and is used by that
 * core's thread only; nothing locks. Paths are copied in, so the caller's
 * buffers are only read during the call. Sessions are opaque uint64_t keys
 * chosen by the caller. The table holds at most watches_max watches, counted
 * as (path, session, kind) triples; a PERSISTENT watch counts once.
 *
 * Callbacks (emit, visit) run synchronously and must not call into the table
 * they were invoked from: it is mid-update and not reentrant. */
#ifndef RK_WATCH_H
#define RK_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/proto.h"

/* One kind per ZooKeeper WatcherType a client can set or remove. */
enum watch_kind {
	WATCH_DATA = 0,		    /* one-shot, set by getData and exists */
	WATCH_CHILD,		    /* one-shot, set by getChildren */
	WATCH_PERSISTENT,	    /* addWatch mode 0: the node's data and child events */
	WATCH_PERSISTENT_RECURSIVE, /* addWatch mode 1: data events of the whole subtree */
	WATCH_KIND_COUNT,
};

struct watch_table;

/* Called once per notified session; path/len are the trigger's arguments. */
typedef void (*watch_emit_fn)(void *ctx, uint64_t session, enum zk_event_type type,
			      const char *path, size_t len);

/* Called once per (path, session, kind). path points into the table and is
 * valid during the call only. A non-zero return stops the walk. */
typedef int (*watch_visit_fn)(void *ctx, uint64_t session, const char *path, size_t len,
			      enum watch_kind kind);

/* NULL when out of memory. watches_max is at most INT32_MAX. */
struct watch_table *watch_table_create(uint32_t watches_max);
void watch_table_destroy(struct watch_table *t);

/* Adds a watch. Adding one that exists is a no-op returning 0, even at the
 * bound. Returns 0, -ENOSPC past watches_max, or -ENOMEM (nothing changed). */
int watch_add(struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
	      uint64_t session);

/* Notifies, through emit, every session whose watches match a change of type
 * (NodeCreated, NodeDeleted, NodeDataChanged or NodeChildrenChanged) on path,
 * and drops the one-shot watches that fired. Ancestors of path are visited
 * only while the table holds a recursive watch. */
void watch_trigger(struct watch_table *t, const char *path, size_t len, enum zk_event_type type,
		   watch_emit_fn emit, void *ctx);

/* removeWatches (opcode 18). Returns 0 if the watch was there and is gone,
 * -ENOENT otherwise. WatcherType maps Children->CHILD, Data->DATA,
 * Persistent->PERSISTENT, PersistentRecursive->PERSISTENT_RECURSIVE, and Any
 * to every kind (it succeeds if any call does). */
int watch_remove(struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
		 uint64_t session);

/* checkWatches (opcode 17), with the same WatcherType mapping. */
bool watch_exists(const struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
		  uint64_t session);

/* Drops every watch of session (close, expiry, move to another core) in
 * time proportional to that session's watches. */
void watch_remove_session(struct watch_table *t, uint64_t session);

/* Walks one session's watches (move to another core, 4lw wchc). Returns the
 * first non-zero visit result, or 0. */
int watch_foreach_session(const struct watch_table *t, uint64_t session, watch_visit_fn visit,
			  void *ctx);

/* Walks every watch, grouped by path (4lw wchp). Returns as above. */
int watch_foreach(const struct watch_table *t, watch_visit_fn visit, void *ctx);

/* Counts for 4lw wchs and metrics. */
uint32_t watch_count(const struct watch_table *t);
uint32_t watch_path_count(const struct watch_table *t);
uint32_t watch_session_count(const struct watch_table *t);

#endif
