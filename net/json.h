/* A small JSON writer for the admin server's answers, laid out as
 * ZooKeeper's AdminServer (Jackson's pretty printer) lays them out:
 *
 *   {
 *     "key" : value,
 *     "list" : [ 1, 2 ],
 *     "object" : {
 *       "inner" : "x"
 *     }
 *   }
 *
 * Output goes to a bounded struct jute_out; past its bound the writer
 * stops and out->err says so (the caller answers an error instead).
 * Nesting is at most JSON_DEPTH_MAX; deeper is a programmer error. */
#ifndef RK_JSON_H
#define RK_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"

#define JSON_DEPTH_MAX 8

struct json {
	struct jute_out *out;
	int depth;
	bool first[JSON_DEPTH_MAX + 1]; /* nothing written yet at this level */
	bool array[JSON_DEPTH_MAX + 1];
};

void json_init(struct json *j, struct jute_out *out);
/* The key of the next value, inside an object. */
void json_key(struct json *j, const char *key);
void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
/* Always with a fraction or exponent, as Java prints doubles ("0.0");
 * NaN and infinities, which JSON lacks, print as null. */
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* s NULL prints null. Quotes, backslashes and control characters are
 * escaped; other bytes pass through (UTF-8 stays UTF-8). */
void json_string(struct json *j, const char *s);

#endif
