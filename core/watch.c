/* Per-core watch table; see watch.h for the semantics.
 *
 * Layout: an open-addressed table of paths and one of sessions. A path block
 * holds the path bytes followed by its entries, one per watching session with
 * a bit per kind; a session holds one item per watched path. Entry and item
 * point at each other by index, so unlinking either side is O(1) with
 * swap-remove, and a session's removal touches only its own items. Path
 * blocks move when their entries grow or shrink; their sessions' items are
 * then repointed, which amortizes to O(1) like the growth itself. */
#include "core/watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/log.h"

#define KIND_BIT(k)	 ((uint8_t)(1u << (k)))
#define BIT_DATA	 KIND_BIT(WATCH_DATA)
#define BIT_CHILD	 KIND_BIT(WATCH_CHILD)
#define BIT_PERSISTENT	 KIND_BIT(WATCH_PERSISTENT)
#define BIT_RECURSIVE	 KIND_BIT(WATCH_PERSISTENT_RECURSIVE)
#define BIT_ALL		 ((uint8_t)((1u << WATCH_KIND_COUNT) - 1))
#define SLOTS_CAP_MIN	 16u
#define ITEMS_CAP_MIN	 2u
#define ENTRIES_CAP_GROW 2u /* factor; a path starts with room for one session */

struct watch_session;

/* One session watching one path. */
struct watch_entry {
	struct watch_session *session;
	uint32_t item; /* index of the matching item in session->items */
	uint8_t kinds; /* KIND_BIT() of each kind set; never 0 while linked */
};

/* A watched path. Block layout: this header, len path bytes padded to 8,
 * then cap entries. */
struct watch_path {
	uint32_t hash; /* low 32 bits of XXH3_64bits(path) */
	uint32_t len;
	uint32_t count; /* entries in use; never 0 while in the table */
	uint32_t cap;
	char bytes[];
};

/* One path watched by a session. */
struct watch_item {
	struct watch_path *path;
	uint32_t entry; /* index of the matching entry in path's entries */
};

struct watch_session {
	uint64_t id;
	uint64_t stamp; /* table stamp of the last trigger that notified it */
	struct watch_item *items;
	uint32_t count; /* never 0 while in the table */
	uint32_t cap;
};

/* Linear probing over pointers, no tombstones (backward-shift delete). */
struct slots {
	void **slot;
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t used;
};

typedef uint32_t (*hash_of_fn)(const void *elem);

struct watch_table {
	struct slots paths;    /* struct watch_path * */
	struct slots sessions; /* struct watch_session * */
	uint64_t stamp;	       /* bumped per trigger; dedups notifications */
	uint32_t watches;      /* (path, session, kind) triples */
	uint32_t watches_max;
	uint32_t recursive; /* triples of kind WATCH_PERSISTENT_RECURSIVE */
};

/* What one event does to the watches it finds. */
struct trigger_rule {
	uint8_t fire;	  /* kinds on the path that notify */
	uint8_t clear;	  /* kinds on the path that are one-shot */
	uint8_t ancestor; /* kinds on an ancestor that notify */
};

struct trigger_event {
	enum zk_event_type type;
	const char *path;
	size_t len;
	watch_emit_fn emit;
	void *ctx;
};

static uint32_t path_hash(const char *path, size_t len)
{
	return (uint32_t)XXH3_64bits(path, len);
}

/* Session ids are caller-chosen and often sequential; the splitmix64
 * finalizer spreads them over the low bits that index the table. */
static uint32_t session_hash(uint64_t id)
{
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return (uint32_t)id;
}

static uint32_t path_hash_of(const void *elem)
{
	return ((const struct watch_path *)elem)->hash;
}

static uint32_t session_hash_of(const void *elem)
{
	return session_hash(((const struct watch_session *)elem)->id);
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static size_t path_block_bytes(size_t len, uint32_t cap)
{
	return sizeof(struct watch_path) + pad8(len) + (size_t)cap * sizeof(struct watch_entry);
}

static struct watch_entry *path_entries(const struct watch_path *p)
{
	return (struct watch_entry *)((char *)p->bytes + pad8(p->len));
}

static int slots_init(struct slots *s, uint32_t cap)
{
	s->slot = calloc(cap, sizeof(*s->slot));
	if (!s->slot)
		return -ENOMEM;
	s->mask = cap - 1;
	s->used = 0;
	return 0;
}

static void slots_put(struct slots *s, void *elem, uint32_t hash)
{
	uint32_t i = hash & s->mask;
	while (s->slot[i])
		i = (i + 1) & s->mask;
	s->slot[i] = elem;
	s->used++;
}

static int slots_resize(struct slots *s, uint32_t cap, hash_of_fn hash_of)
{
	struct slots old = *s;
	if (slots_init(s, cap) != 0) {
		*s = old;
		return -ENOMEM;
	}
	for (uint64_t i = 0; i <= old.mask; i++)
		if (old.slot[i])
			slots_put(s, old.slot[i], hash_of(old.slot[i]));
	free(old.slot);
	return 0;
}

/* Makes room for one more element; load stays at most 3/4. */
static int slots_reserve(struct slots *s, hash_of_fn hash_of)
{
	uint64_t cap = (uint64_t)s->mask + 1;
	if (((uint64_t)s->used + 1) * 4 <= cap * 3)
		return 0;
	RK_ASSERT(cap <= UINT32_MAX / 2);
	return slots_resize(s, (uint32_t)cap * 2, hash_of);
}

static uint32_t slots_index_of(const struct slots *s, const void *elem, uint32_t hash)
{
	uint32_t i = hash & s->mask;
	while (s->slot[i] != elem) {
		RK_ASSERT(s->slot[i] != NULL);
		i = (i + 1) & s->mask;
	}
	return i;
}

/* Empties slot i, pulls back later members of its probe run, and gives
 * memory back once the table is 1/8 full. */
static void slots_delete(struct slots *s, uint32_t i, hash_of_fn hash_of)
{
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & s->mask;
		if (!s->slot[j])
			break;
		uint32_t home = hash_of(s->slot[j]) & s->mask;
		if (((j - home) & s->mask) < ((j - i) & s->mask))
			continue; /* its home lies between the hole and j */
		s->slot[i] = s->slot[j];
		i = j;
	}
	s->slot[i] = NULL;
	s->used--;
	uint64_t cap = (uint64_t)s->mask + 1;
	if (cap > SLOTS_CAP_MIN && (uint64_t)s->used * 8 < cap)
		(void)slots_resize(s, (uint32_t)(cap / 2), hash_of); /* on failure keep the room */
}

static struct watch_path *path_find(const struct watch_table *t, const char *path, size_t len,
				    uint32_t hash)
{
	for (uint32_t i = hash & t->paths.mask;; i = (i + 1) & t->paths.mask) {
		struct watch_path *p = t->paths.slot[i];
		if (!p)
			return NULL;
		if (p->hash == hash && p->len == len && memcmp(p->bytes, path, len) == 0)
			return p;
	}
}

static struct watch_session *session_find(const struct watch_table *t, uint64_t id)
{
	for (uint32_t i = session_hash(id) & t->sessions.mask;; i = (i + 1) & t->sessions.mask) {
		struct watch_session *s = t->sessions.slot[i];
		if (!s || s->id == id)
			return s;
	}
}

static struct watch_path *path_create(struct watch_table *t, const char *path, size_t len,
				      uint32_t hash)
{
	if (slots_reserve(&t->paths, path_hash_of) != 0)
		return NULL;
	struct watch_path *p = malloc(path_block_bytes(len, 1));
	if (!p)
		return NULL;
	*p = (struct watch_path){.hash = hash, .len = (uint32_t)len, .count = 0, .cap = 1};
	memcpy(p->bytes, path, len);
	slots_put(&t->paths, p, hash);
	return p;
}

/* Moves p to a block with room for cap entries and repoints its sessions'
 * items. Returns the block, or NULL with p untouched. */
static struct watch_path *path_resize(struct watch_table *t, struct watch_path *p, uint32_t cap)
{
	RK_ASSERT(cap >= p->count && cap > 0);
	uint32_t slot = slots_index_of(&t->paths, p, p->hash);
	struct watch_path *q = realloc(p, path_block_bytes(p->len, cap));
	if (!q)
		return NULL;
	q->cap = cap;
	if (q == p)
		return q;
	t->paths.slot[slot] = q;
	struct watch_entry *ents = path_entries(q);
	for (uint32_t i = 0; i < q->count; i++)
		ents[i].session->items[ents[i].item].path = q;
	return q;
}

/* Frees p once no session watches it, else shrinks an oversized block. */
static void path_release(struct watch_table *t, struct watch_path *p)
{
	if (p->count == 0) {
		slots_delete(&t->paths, slots_index_of(&t->paths, p, p->hash), path_hash_of);
		free(p);
	} else if ((uint64_t)p->count * 4 <= p->cap) {
		(void)path_resize(t, p, p->cap / 2); /* on failure keep the room */
	}
}

static struct watch_session *session_create(struct watch_table *t, uint64_t id)
{
	if (slots_reserve(&t->sessions, session_hash_of) != 0)
		return NULL;
	struct watch_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	slots_put(&t->sessions, s, session_hash(id));
	return s;
}

static void session_destroy(struct watch_table *t, struct watch_session *s)
{
	uint32_t slot = slots_index_of(&t->sessions, s, session_hash(s->id));
	slots_delete(&t->sessions, slot, session_hash_of);
	free(s->items);
	free(s);
}

static int session_items_resize(struct watch_session *s, uint32_t cap)
{
	struct watch_item *items = realloc(s->items, (size_t)cap * sizeof(*items));
	if (!items)
		return -ENOMEM;
	s->items = items;
	s->cap = cap;
	return 0;
}

/* The entry of s on p. Scans whichever side is shorter, so a hot path with
 * many sessions, or a session with many paths, stays cheap to probe. */
static struct watch_entry *entry_find(const struct watch_session *s, const struct watch_path *p)
{
	struct watch_entry *ents = path_entries(p);
	if (p->count <= s->count) {
		for (uint32_t i = 0; i < p->count; i++)
			if (ents[i].session == s)
				return &ents[i];
		return NULL;
	}
	for (uint32_t i = 0; i < s->count; i++)
		if (s->items[i].path == p)
			return &ents[s->items[i].entry];
	return NULL;
}

/* Links session id to path with no kinds yet, creating either side as
 * needed. Returns the entry, or NULL (ENOMEM) with the table unchanged. */
static struct watch_entry *entry_create(struct watch_table *t, const char *path, size_t len,
					uint32_t hash, struct watch_path *p,
					struct watch_session *s, uint64_t id)
{
	if (!s && !(s = session_create(t, id)))
		return NULL;
	if (!p && !(p = path_create(t, path, len, hash)))
		goto err;
	if (s->count == s->cap && session_items_resize(s, s->cap ? s->cap * 2 : ITEMS_CAP_MIN) != 0)
		goto err;
	if (p->count == p->cap) {
		RK_ASSERT(p->cap <= UINT32_MAX / ENTRIES_CAP_GROW);
		struct watch_path *grown = path_resize(t, p, p->cap * ENTRIES_CAP_GROW);
		if (!grown)
			goto err;
		p = grown;
	}
	struct watch_entry *e = &path_entries(p)[p->count];
	*e = (struct watch_entry){.session = s, .item = s->count, .kinds = 0};
	s->items[s->count] = (struct watch_item){.path = p, .entry = p->count};
	p->count++;
	s->count++;
	return e;
err:
	if (p && p->count == 0)
		path_release(t, p);
	if (s->count == 0)
		session_destroy(t, s);
	return NULL;
}

/* Swap-removes item j of s, repointing the entry of the item moved in. */
static void item_remove(struct watch_session *s, uint32_t j)
{
	s->items[j] = s->items[--s->count];
	if (j < s->count) {
		struct watch_item *moved = &s->items[j];
		path_entries(moved->path)[moved->entry].item = j;
	}
}

/* Swap-removes entry i of p, repointing the item of the entry moved in. */
static void entry_remove(struct watch_path *p, uint32_t i)
{
	struct watch_entry *ents = path_entries(p);
	ents[i] = ents[--p->count];
	if (i < p->count)
		ents[i].session->items[ents[i].item].entry = i;
}

/* Drops entry i of p from both sides; frees its session if that was the
 * session's last watch. p itself is left for path_release(). */
static void entry_unlink(struct watch_table *t, struct watch_path *p, uint32_t i)
{
	struct watch_session *s = path_entries(p)[i].session;
	item_remove(s, path_entries(p)[i].item);
	entry_remove(p, i);
	if (s->count == 0)
		session_destroy(t, s);
	else if (s->cap > ITEMS_CAP_MIN && (uint64_t)s->count * 4 <= s->cap)
		(void)session_items_resize(s, s->cap / 2); /* on failure keep the room */
}

/* Takes kinds off the table's counters. */
static void count_drop(struct watch_table *t, uint8_t kinds)
{
	t->watches -= (uint32_t)__builtin_popcount(kinds);
	if (kinds & BIT_RECURSIVE)
		t->recursive--;
}

struct watch_table *watch_table_create(uint32_t watches_max)
{
	RK_ASSERT(watches_max <= INT32_MAX);
	struct watch_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (slots_init(&t->paths, SLOTS_CAP_MIN) != 0)
		goto err;
	if (slots_init(&t->sessions, SLOTS_CAP_MIN) != 0)
		goto err;
	t->watches_max = watches_max;
	return t;
err:
	free(t->paths.slot);
	free(t);
	return NULL;
}

void watch_table_destroy(struct watch_table *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; i <= t->paths.mask; i++)
		free(t->paths.slot[i]);
	for (uint64_t i = 0; i <= t->sessions.mask; i++) {
		struct watch_session *s = t->sessions.slot[i];
		if (s)
			free(s->items);
		free(s);
	}
	free(t->paths.slot);
	free(t->sessions.slot);
	free(t);
}

int watch_add(struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
	      uint64_t session)
{
	RK_ASSERT((unsigned)kind < WATCH_KIND_COUNT);
	RK_ASSERT(path != NULL && len > 0 && len <= UINT32_MAX);
	uint8_t bit = KIND_BIT(kind);
	uint32_t hash = path_hash(path, len);
	struct watch_path *p = path_find(t, path, len, hash);
	struct watch_session *s = session_find(t, session);
	struct watch_entry *e = p && s ? entry_find(s, p) : NULL;
	if (e && (e->kinds & bit))
		return 0;
	if (t->watches >= t->watches_max)
		return -ENOSPC;
	if (!e && !(e = entry_create(t, path, len, hash, p, s, session)))
		return -ENOMEM;
	e->kinds |= bit;
	t->watches++;
	if (kind == WATCH_PERSISTENT_RECURSIVE)
		t->recursive++;
	return 0;
}

/* The one place event types meet kinds; mirrors which of DataTree's
 * dataWatches/childWatches each change triggers (see the table in watch.h). */
static struct trigger_rule trigger_rule_of(enum zk_event_type type)
{
	switch (type) {
	case ZEV_NODE_CREATED:
	case ZEV_NODE_DATA_CHANGED:
		return (struct trigger_rule){.fire = BIT_DATA | BIT_PERSISTENT | BIT_RECURSIVE,
					     .clear = BIT_DATA,
					     .ancestor = BIT_RECURSIVE};
	case ZEV_NODE_DELETED:
		return (struct trigger_rule){
		    .fire = BIT_ALL, .clear = BIT_DATA | BIT_CHILD, .ancestor = BIT_RECURSIVE};
	case ZEV_NODE_CHILDREN_CHANGED:
		return (struct trigger_rule){
		    .fire = BIT_CHILD | BIT_PERSISTENT, .clear = BIT_CHILD, .ancestor = 0};
	default:
		RK_ASSERT(!"watch_trigger: not a change event");
	}
}

/* Notifies the sessions watching `at` with a kind in fire, once per trigger,
 * and drops their one-shot kinds in clear. */
static void trigger_at(struct watch_table *t, const char *at, size_t at_len, uint8_t fire,
		       uint8_t clear, const struct trigger_event *ev)
{
	struct watch_path *p = path_find(t, at, at_len, path_hash(at, at_len));
	if (!p)
		return;
	uint32_t i = 0;
	while (i < p->count) {
		struct watch_entry *e = &path_entries(p)[i];
		if (!(e->kinds & fire)) {
			i++;
			continue;
		}
		if (e->session->stamp != t->stamp) {
			e->session->stamp = t->stamp;
			ev->emit(ev->ctx, e->session->id, ev->type, ev->path, ev->len);
		}
		uint8_t cleared = e->kinds & clear;
		count_drop(t, cleared);
		e->kinds &= (uint8_t)~clear;
		if (e->kinds == 0)
			entry_unlink(t, p, i); /* the last entry moved into i */
		else
			i++;
	}
	path_release(t, p);
}

void watch_trigger(struct watch_table *t, const char *path, size_t len, enum zk_event_type type,
		   watch_emit_fn emit, void *ctx)
{
	RK_ASSERT(path != NULL && len > 0 && emit != NULL);
	struct trigger_rule rule = trigger_rule_of(type);
	struct trigger_event ev = {
	    .type = type, .path = path, .len = len, .emit = emit, .ctx = ctx};
	t->stamp++;
	trigger_at(t, path, len, rule.fire, rule.clear, &ev);
	if (!rule.ancestor)
		return;
	/* "/a/b" has ancestors "/a" and "/"; recursive watches can sit on any. */
	size_t n = len;
	while (t->recursive > 0 && n > 1) {
		const char *slash = memrchr(path, '/', n);
		if (!slash)
			break; /* not absolute: no ancestors to speak of */
		n = (size_t)(slash - path);
		trigger_at(t, path, n ? n : 1, rule.ancestor, 0, &ev);
	}
}

int watch_remove(struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
		 uint64_t session)
{
	RK_ASSERT((unsigned)kind < WATCH_KIND_COUNT);
	RK_ASSERT(path != NULL && len > 0);
	uint8_t bit = KIND_BIT(kind);
	struct watch_path *p = path_find(t, path, len, path_hash(path, len));
	struct watch_session *s = session_find(t, session);
	struct watch_entry *e = p && s ? entry_find(s, p) : NULL;
	if (!e || !(e->kinds & bit))
		return -ENOENT;
	count_drop(t, bit);
	e->kinds &= (uint8_t)~bit;
	if (e->kinds == 0) {
		entry_unlink(t, p, (uint32_t)(e - path_entries(p)));
		path_release(t, p);
	}
	return 0;
}

bool watch_exists(const struct watch_table *t, const char *path, size_t len, enum watch_kind kind,
		  uint64_t session)
{
	RK_ASSERT((unsigned)kind < WATCH_KIND_COUNT);
	RK_ASSERT(path != NULL && len > 0);
	struct watch_path *p = path_find(t, path, len, path_hash(path, len));
	struct watch_session *s = session_find(t, session);
	struct watch_entry *e = p && s ? entry_find(s, p) : NULL;
	return e && (e->kinds & KIND_BIT(kind));
}

void watch_remove_session(struct watch_table *t, uint64_t session)
{
	struct watch_session *s = session_find(t, session);
	if (!s)
		return;
	/* Only other sessions' items get repointed below, never s's. */
	for (uint32_t j = 0; j < s->count; j++) {
		struct watch_path *p = s->items[j].path;
		uint32_t i = s->items[j].entry;
		count_drop(t, path_entries(p)[i].kinds);
		entry_remove(p, i);
		path_release(t, p);
	}
	s->count = 0;
	session_destroy(t, s);
}

/* Calls visit for each kind of entry e on p. */
static int visit_entry(const struct watch_path *p, const struct watch_entry *e,
		       watch_visit_fn visit, void *ctx)
{
	for (int k = 0; k < WATCH_KIND_COUNT; k++) {
		if (!(e->kinds & KIND_BIT(k)))
			continue;
		int rc = visit(ctx, e->session->id, p->bytes, p->len, (enum watch_kind)k);
		if (rc)
			return rc;
	}
	return 0;
}

int watch_foreach_session(const struct watch_table *t, uint64_t session, watch_visit_fn visit,
			  void *ctx)
{
	const struct watch_session *s = session_find(t, session);
	for (uint32_t j = 0; s && j < s->count; j++) {
		const struct watch_path *p = s->items[j].path;
		int rc = visit_entry(p, &path_entries(p)[s->items[j].entry], visit, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

int watch_foreach(const struct watch_table *t, watch_visit_fn visit, void *ctx)
{
	for (uint64_t i = 0; i <= t->paths.mask; i++) {
		const struct watch_path *p = t->paths.slot[i];
		for (uint32_t e = 0; p && e < p->count; e++) {
			int rc = visit_entry(p, &path_entries(p)[e], visit, ctx);
			if (rc)
				return rc;
		}
	}
	return 0;
}

uint32_t watch_count(const struct watch_table *t)
{
	return t->watches;
}

uint32_t watch_path_count(const struct watch_table *t)
{
	return t->paths.used;
}

uint32_t watch_session_count(const struct watch_table *t)
{
	return t->sessions.used;
}
