/* ZooKeeper protocol constants and the records shared by several modules.
 * Numbers are ZooKeeper 3.9's (zookeeper.jute, ZooDefs.OpCode,
 * KeeperException.Code, Watcher.Event); they are wire facts and must not
 * change. ZooKeeper error codes live only at the protocol edge: inside the
 * server functions return 0 or -errno-style values and map at the edge. */
#ifndef RK_PROTO_H
#define RK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

enum zk_op {
	ZOP_NOTIFICATION = 0,
	ZOP_CREATE = 1,
	ZOP_DELETE = 2,
	ZOP_EXISTS = 3,
	ZOP_GET_DATA = 4,
	ZOP_SET_DATA = 5,
	ZOP_GET_ACL = 6,
	ZOP_SET_ACL = 7,
	ZOP_GET_CHILDREN = 8,
	ZOP_SYNC = 9,
	ZOP_PING = 11,
	ZOP_GET_CHILDREN2 = 12,
	ZOP_CHECK = 13,
	ZOP_MULTI = 14,
	ZOP_CREATE2 = 15,
	ZOP_RECONFIG = 16,
	ZOP_CHECK_WATCHES = 17,
	ZOP_REMOVE_WATCHES = 18,
	ZOP_CREATE_CONTAINER = 19,
	ZOP_DELETE_CONTAINER = 20,
	ZOP_CREATE_TTL = 21,
	ZOP_MULTI_READ = 22,
	ZOP_AUTH = 100,
	ZOP_SET_WATCHES = 101,
	ZOP_SASL = 102,
	ZOP_GET_EPHEMERALS = 103,
	ZOP_GET_ALL_CHILDREN_NUMBER = 104,
	ZOP_SET_WATCHES2 = 105,
	ZOP_ADD_WATCH = 106,
	ZOP_WHO_AM_I = 107,
	ZOP_CREATE_SESSION = -10,
	ZOP_CLOSE_SESSION = -11,
	ZOP_ERROR = -1,
};

/* Reserved xids (ClientCnxn). */
enum {
	XID_NOTIFICATION = -1,
	XID_PING = -2,
	XID_AUTH = -4,
	XID_SET_WATCHES = -8,
};

enum zk_err {
	ZOK = 0,
	ZSYSTEMERROR = -1,
	ZRUNTIMEINCONSISTENCY = -2,
	ZDATAINCONSISTENCY = -3,
	ZCONNECTIONLOSS = -4,
	ZMARSHALLINGERROR = -5,
	ZUNIMPLEMENTED = -6,
	ZOPERATIONTIMEOUT = -7,
	ZBADARGUMENTS = -8,
	ZUNKNOWNSESSION = -12,
	ZNEWCONFIGNOQUORUM = -13,
	ZRECONFIGINPROGRESS = -14,
	ZAPIERROR = -100,
	ZNONODE = -101,
	ZNOAUTH = -102,
	ZBADVERSION = -103,
	ZNOCHILDRENFOREPHEMERALS = -108,
	ZNODEEXISTS = -110,
	ZNOTEMPTY = -111,
	ZSESSIONEXPIRED = -112,
	ZINVALIDCALLBACK = -113,
	ZINVALIDACL = -114,
	ZAUTHFAILED = -115,
	ZSESSIONMOVED = -118,
	ZNOTREADONLY = -119,
	ZEPHEMERALONLOCALSESSION = -120,
	ZNOWATCHER = -121,
	ZRECONFIGDISABLED = -123,
	ZSESSIONCLOSEDREQUIRESASLAUTH = -124,
	ZQUOTAEXCEEDED = -125,
	ZTHROTTLEDOP = -127,
};

enum zk_event_type {
	ZEV_NONE = -1,
	ZEV_NODE_CREATED = 1,
	ZEV_NODE_DELETED = 2,
	ZEV_NODE_DATA_CHANGED = 3,
	ZEV_NODE_CHILDREN_CHANGED = 4,
	ZEV_DATA_WATCH_REMOVED = 5,
	ZEV_CHILD_WATCH_REMOVED = 6,
	ZEV_PERSISTENT_WATCH_REMOVED = 7,
};

enum zk_state {
	ZSTATE_DISCONNECTED = 0,
	ZSTATE_SYNC_CONNECTED = 3,
	ZSTATE_AUTH_FAILED = 4,
	ZSTATE_CONNECTED_READ_ONLY = 5,
	ZSTATE_CLOSED = 7,
	ZSTATE_EXPIRED = -112,
};

/* CreateMode flags on the wire. */
enum zk_create_mode {
	ZCM_PERSISTENT = 0,
	ZCM_EPHEMERAL = 1,
	ZCM_PERSISTENT_SEQUENTIAL = 2,
	ZCM_EPHEMERAL_SEQUENTIAL = 3,
	ZCM_CONTAINER = 4,
	ZCM_PERSISTENT_WITH_TTL = 5,
	ZCM_PERSISTENT_SEQUENTIAL_WITH_TTL = 6,
	ZCM_COUNT,
};

enum zk_perm {
	ZPERM_READ = 1,
	ZPERM_WRITE = 2,
	ZPERM_CREATE = 4,
	ZPERM_DELETE = 8,
	ZPERM_ADMIN = 16,
	ZPERM_ALL = 31,
};

/* Stat: 68 bytes on the wire, fields in this order. cversion here is what
 * ZooKeeper persists: the number of children ever created, which also
 * numbers sequential children. The wire carries 2 * cversion -
 * num_children, i.e. creates plus deletes, as ZooKeeper's copyStat does;
 * proto_put_stat converts. It also sends ephemeralOwner 0 for containers
 * and TTL nodes, whose owner field holds ZooKeeper's EphemeralType
 * encoding (INT64_MIN; 0xff in the top byte), as DataNode's
 * getClientEphemeralOwner does: clients see an owner only on ephemerals. */
struct zk_stat {
	int64_t czxid;
	int64_t mzxid;
	int64_t ctime;
	int64_t mtime;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int64_t ephemeral_owner;
	int32_t data_length;
	int32_t num_children;
	int64_t pzxid;
};
#define ZK_STAT_WIRE_BYTES 68

/* 3.9 frames: a length prefix, then the record. */
#define ZK_FRAME_HEADER_BYTES	  4
#define ZK_JUTE_MAXBUFFER_DEFAULT 1048575
#define ZK_PASSWORD_BYTES	  16

void proto_put_stat(struct jute_out *out, const struct zk_stat *st);
void proto_get_stat(struct jute_in *in, struct zk_stat *st);
/* Begin a framed reply: length placeholder + ReplyHeader. Returns the offset
 * of the frame start for proto_frame_end(). */
size_t proto_reply_begin(struct jute_out *out, int32_t xid, int64_t zxid, int32_t err);
void proto_frame_end(struct jute_out *out, size_t frame_start);
const char *proto_err_name(int32_t err);
/* A framed watch notification (xid -1, state SyncConnected). */
void proto_put_notification(struct jute_out *out, int32_t type, const char *path, size_t len,
			    int64_t zxid);
/* Ops a session core answers itself from its tree version; the rest go to
 * the sequencer in order. */
bool proto_op_is_read(int32_t op);

#endif
