/* JSON output in ZooKeeper's AdminServer layout (see json.h). */
#include "net/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

static void raw(struct json *j, const char *p, size_t n)
{
	uint8_t *d = jute_reserve(j->out, n);
	if (d)
		memcpy(d, p, n);
}

static void str(struct json *j, const char *s)
{
	raw(j, s, strlen(s));
}

/* Jackson indents objects only: an array's elements stay on its line. */
static void newline(struct json *j)
{
	static const char spaces[2 * JSON_DEPTH_MAX] = "                ";
	int objects = 0;
	for (int d = 1; d <= j->depth; d++)
		objects += !j->array[d];
	raw(j, "\n", 1);
	raw(j, spaces, (size_t)objects * 2);
}

/* Before a value: a separator from the previous one. Object members got
 * theirs in json_key. */
static void before_value(struct json *j)
{
	if (j->depth == 0 || !j->array[j->depth])
		return;
	raw(j, j->first[j->depth] ? " " : ", ", j->first[j->depth] ? 1 : 2);
	j->first[j->depth] = false;
}

void json_init(struct json *j, struct jute_out *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
}

static void quoted(struct json *j, const char *s)
{
	raw(j, "\"", 1);
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		raw(j, run, (size_t)(p - run));
		char esc[8];
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof esc, "\\%c", ch);
		else if (ch == '\n')
			snprintf(esc, sizeof esc, "\\n");
		else if (ch == '\t')
			snprintf(esc, sizeof esc, "\\t");
		else
			snprintf(esc, sizeof esc, "\\u%04x", ch);
		str(j, esc);
		run = p + 1;
	}
	str(j, run);
	raw(j, "\"", 1);
}

void json_key(struct json *j, const char *key)
{
	RK_ASSERT(j->depth > 0 && !j->array[j->depth]);
	if (!j->first[j->depth])
		raw(j, ",", 1);
	j->first[j->depth] = false;
	newline(j);
	quoted(j, key);
	str(j, " : ");
}

static void level_open(struct json *j, bool array)
{
	before_value(j);
	RK_ASSERT(j->depth < JSON_DEPTH_MAX);
	raw(j, array ? "[" : "{", 1);
	j->depth++;
	j->first[j->depth] = true;
	j->array[j->depth] = array;
}

static void close_level(struct json *j, bool array)
{
	RK_ASSERT(j->depth > 0 && j->array[j->depth] == array);
	bool empty = j->first[j->depth];
	j->depth--;
	if (array)
		str(j, " ]");
	else if (empty)
		str(j, " }");
	else {
		newline(j);
		raw(j, "}", 1);
	}
}

void json_object_begin(struct json *j)
{
	level_open(j, false);
}

void json_object_end(struct json *j)
{
	close_level(j, false);
}

void json_array_begin(struct json *j)
{
	level_open(j, true);
}

void json_array_end(struct json *j)
{
	close_level(j, true);
}

void json_int(struct json *j, int64_t v)
{
	char b[24];
	before_value(j);
	snprintf(b, sizeof b, "%lld", (long long)v);
	str(j, b);
}

void json_uint(struct json *j, uint64_t v)
{
	char b[24];
	before_value(j);
	snprintf(b, sizeof b, "%llu", (unsigned long long)v);
	str(j, b);
}

void json_double(struct json *j, double v)
{
	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	char b[40];
	before_value(j);
	snprintf(b, sizeof b, "%.6g", v);
	if (!strpbrk(b, ".e"))
		strcat(b, ".0");
	str(j, b);
}

void json_bool(struct json *j, bool v)
{
	before_value(j);
	str(j, v ? "true" : "false");
}

void json_null(struct json *j)
{
	before_value(j);
	str(j, "null");
}

void json_string(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	before_value(j);
	quoted(j, s);
}
