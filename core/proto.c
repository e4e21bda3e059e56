/* Shared ZooKeeper records: Stat, reply framing, error names. */
#include "core/proto.h"

/* The ephemeralOwner a client sees (see struct zk_stat): the same
 * encodings as core/txn.c's OWNER_CONTAINER and OWNER_TTL_TAG. */
static int64_t client_owner(int64_t owner)
{
	if (owner == INT64_MIN || ((uint64_t)owner >> 56) == 0xff)
		return 0;
	return owner;
}

void proto_put_stat(struct jute_out *out, const struct zk_stat *st)
{
	jute_put_long(out, st->czxid);
	jute_put_long(out, st->mzxid);
	jute_put_long(out, st->ctime);
	jute_put_long(out, st->mtime);
	jute_put_int(out, st->version);
	jute_put_int(out, (int32_t)((uint32_t)st->cversion * 2u - (uint32_t)st->num_children));
	jute_put_int(out, st->aversion);
	jute_put_long(out, client_owner(st->ephemeral_owner));
	jute_put_int(out, st->data_length);
	jute_put_int(out, st->num_children);
	jute_put_long(out, st->pzxid);
}

void proto_get_stat(struct jute_in *in, struct zk_stat *st)
{
	st->czxid = jute_get_long(in);
	st->mzxid = jute_get_long(in);
	st->ctime = jute_get_long(in);
	st->mtime = jute_get_long(in);
	st->version = jute_get_int(in);
	st->cversion = jute_get_int(in);
	st->aversion = jute_get_int(in);
	st->ephemeral_owner = jute_get_long(in);
	st->data_length = jute_get_int(in);
	st->num_children = jute_get_int(in);
	st->pzxid = jute_get_long(in);
}

size_t proto_reply_begin(struct jute_out *out, int32_t xid, int64_t zxid, int32_t err)
{
	size_t start = out->len;
	jute_put_int(out, 0);
	jute_put_int(out, xid);
	jute_put_long(out, zxid);
	jute_put_int(out, err);
	return start;
}

void proto_frame_end(struct jute_out *out, size_t frame_start)
{
	jute_patch_int(out, frame_start, (int32_t)(out->len - frame_start - ZK_FRAME_HEADER_BYTES));
}

const char *proto_err_name(int32_t err)
{
	switch (err) {
	case ZOK:
		return "OK";
	case ZSYSTEMERROR:
		return "SYSTEMERROR";
	case ZRUNTIMEINCONSISTENCY:
		return "RUNTIMEINCONSISTENCY";
	case ZMARSHALLINGERROR:
		return "MARSHALLINGERROR";
	case ZUNIMPLEMENTED:
		return "UNIMPLEMENTED";
	case ZBADARGUMENTS:
		return "BADARGUMENTS";
	case ZNONODE:
		return "NONODE";
	case ZNOAUTH:
		return "NOAUTH";
	case ZBADVERSION:
		return "BADVERSION";
	case ZNOCHILDRENFOREPHEMERALS:
		return "NOCHILDRENFOREPHEMERALS";
	case ZNODEEXISTS:
		return "NODEEXISTS";
	case ZNOTEMPTY:
		return "NOTEMPTY";
	case ZSESSIONEXPIRED:
		return "SESSIONEXPIRED";
	case ZINVALIDACL:
		return "INVALIDACL";
	case ZAUTHFAILED:
		return "AUTHFAILED";
	case ZSESSIONMOVED:
		return "SESSIONMOVED";
	case ZNOWATCHER:
		return "NOWATCHER";
	case ZQUOTAEXCEEDED:
		return "QUOTAEXCEEDED";
	default:
		return "UNKNOWN";
	}
}

void proto_put_notification(struct jute_out *out, int32_t type, const char *path, size_t len,
			    int64_t zxid)
{
	size_t at = proto_reply_begin(out, XID_NOTIFICATION, zxid, ZOK);
	jute_put_int(out, type);
	jute_put_int(out, ZSTATE_SYNC_CONNECTED);
	jute_put_string(out, path, (int32_t)len);
	proto_frame_end(out, at);
}

bool proto_op_is_read(int32_t op)
{
	switch (op) {
	case ZOP_EXISTS:
	case ZOP_GET_DATA:
	case ZOP_GET_ACL:
	case ZOP_GET_CHILDREN:
	case ZOP_GET_CHILDREN2:
	case ZOP_PING:
	case ZOP_MULTI_READ:
	case ZOP_SET_WATCHES:
	case ZOP_SET_WATCHES2:
	case ZOP_CHECK_WATCHES:
	case ZOP_REMOVE_WATCHES:
	case ZOP_GET_EPHEMERALS:
	case ZOP_GET_ALL_CHILDREN_NUMBER:
	case ZOP_ADD_WATCH:
	case ZOP_WHO_AM_I:
		return true;
	default:
		return false;
	}
}
