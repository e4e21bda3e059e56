/* The peer transport: three peer_nets (sids 1, 2, 3) in one process on
 * 127.0.0.1, polled from one loop as core 0 would. Handshake, order and
 * integrity of frames, closes, restarts, and what a misbehaving peer costs
 * (its own connection, nothing else). Raw TCP clients play bad peers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "net/peer.h"

#define NODES	     3
#define SID_FAKE     4 /* known to node 1 only when tweak.fake_peer; played by a raw socket */
#define SIDS	     5 /* array size for indexing by sid */
#define SMALL_FRAMES 10000
#define BIG_BYTES    (10u << 20)
#define WAIT_MS	     20000 /* generous: ASan builds are slow */

struct node {
	struct peer_net *pn;
	int ups[SIDS], downs[SIDS];
	uint32_t send_seq[SIDS]; /* next sequence number to send to sid */
	uint32_t recv_seq[SIDS]; /* next sequence number expected from sid */
	size_t send_bytes[SIDS], recv_bytes[SIDS];
	int bad; /* frames out of order or corrupt, callbacks out of turn */
};

/* Knobs for the next node_start(). */
struct tweak {
	size_t frame_bytes_max;
	size_t out_bytes_max;
	int connect_timeout_ms;
	bool fake_peer; /* node 1 also knows SID_FAKE */
};

static struct node nodes[NODES + 1]; /* by sid */
static struct peer_addr addrs[SIDS];
static struct tweak tweak;
static int raw = -1; /* the raw client of a test */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port that was free a moment ago: bind port 0, read it, let it go. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void setup(void)
{
	memset(nodes, 0, sizeof nodes);
	memset(&tweak, 0, sizeof tweak);
	for (uint32_t sid = 1; sid < SIDS; sid++) {
		addrs[sid].sid = sid;
		snprintf(addrs[sid].host, sizeof addrs[sid].host, "127.0.0.1");
		addrs[sid].port = free_port();
	}
}

static void teardown(void)
{
	for (int sid = 1; sid <= NODES; sid++)
		peer_destroy(nodes[sid].pn);
	if (raw >= 0)
		close(raw);
	raw = -1;
}

TestSuite(peer, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(peer_fault, .init = setup, .fini = teardown, .timeout = 120);

/* ---- frames: payload is a u32 sequence number, then bytes that are a
 * function of it, so the receiver checks every byte without a copy ---- */

static uint8_t pattern(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 31 + i * 7);
}

static void on_up(void *ctx, uint32_t sid)
{
	struct node *n = ctx;
	if (n->ups[sid] != n->downs[sid])
		n->bad++;
	n->ups[sid]++;
	/* A new connection starts a new stream on both sides. */
	n->send_seq[sid] = 0;
	n->recv_seq[sid] = 0;
	n->send_bytes[sid] = 0;
	n->recv_bytes[sid] = 0;
}

static void on_down(void *ctx, uint32_t sid)
{
	struct node *n = ctx;
	n->downs[sid]++;
	if (n->downs[sid] != n->ups[sid])
		n->bad++;
}

static void on_frame(void *ctx, uint32_t sid, const uint8_t *buf, size_t len)
{
	struct node *n = ctx;
	uint32_t seq;
	if (len < sizeof seq) {
		n->bad++;
		return;
	}
	memcpy(&seq, buf, sizeof seq);
	if (seq != n->recv_seq[sid])
		n->bad++;
	for (size_t i = sizeof seq; i < len; i++) {
		if (buf[i] != pattern(seq, i)) {
			n->bad++;
			break;
		}
	}
	n->recv_seq[sid] = seq + 1;
	n->recv_bytes[sid] += len;
}

/* Send frame number send_seq[to] of len bytes (len >= 4) from node `from`;
 * odd ones go through peer_sendv in three pieces. */
static int send_frame(uint32_t from, uint32_t to, size_t len)
{
	struct node *n = &nodes[from];
	uint32_t seq = n->send_seq[to];
	uint8_t *p = malloc(len);
	cr_assert_not_null(p);
	memcpy(p, &seq, sizeof seq);
	for (size_t i = sizeof seq; i < len; i++)
		p[i] = pattern(seq, i);
	int rc;
	if (seq % 2) {
		struct iovec iov[3] = {{p, 2}, {p + 2, (len - 2) / 2}, {p + 2 + (len - 2) / 2, 0}};
		iov[2].iov_len = len - 2 - iov[1].iov_len;
		rc = peer_sendv(n->pn, to, iov, 3);
	} else {
		rc = peer_send(n->pn, to, p, len);
	}
	free(p);
	if (rc == 0) {
		n->send_seq[to]++;
		n->send_bytes[to] += len;
	}
	return rc;
}

/* ---- nodes and the loop ---- */

static void node_start(uint32_t sid)
{
	struct peer_addr peers[SIDS];
	size_t n_peers = 0;
	for (uint32_t s = 1; s <= NODES; s++)
		if (s != sid)
			peers[n_peers++] = addrs[s];
	if (sid == 1 && tweak.fake_peer)
		peers[n_peers++] = addrs[SID_FAKE];
	struct node *n = &nodes[sid];
	memset(n, 0, sizeof *n);
	struct peer_config cfg = {.my_sid = sid,
				  .listen_host = "127.0.0.1",
				  .listen_port = addrs[sid].port,
				  .peers = peers,
				  .n_peers = n_peers,
				  .frame_bytes_max = tweak.frame_bytes_max,
				  .out_bytes_max = tweak.out_bytes_max,
				  .reconnect_ms = 50,
				  .connect_timeout_ms = tweak.connect_timeout_ms,
				  .on_up = on_up,
				  .on_down = on_down,
				  .on_frame = on_frame,
				  .ctx = n};
	char err[256] = "";
	n->pn = peer_create(&cfg, err, sizeof err);
	cr_assert_not_null(n->pn, "peer_create(sid %u): %s", sid, err);
}

static void node_stop(uint32_t sid)
{
	peer_destroy(nodes[sid].pn);
	nodes[sid].pn = NULL;
}

/* One turn of core 0's loop: wait for any wait fd, then poll everyone. */
static void pump_once(int wait_ms)
{
	struct pollfd fds[NODES];
	nfds_t nfds = 0;
	for (int sid = 1; sid <= NODES; sid++)
		if (nodes[sid].pn)
			fds[nfds++] =
			    (struct pollfd){.fd = peer_wait_fd(nodes[sid].pn), .events = POLLIN};
	poll(fds, nfds, wait_ms);
	for (int sid = 1; sid <= NODES; sid++)
		if (nodes[sid].pn)
			peer_poll(nodes[sid].pn, now_ms());
}

static bool pump_until(bool (*cond)(void), int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	while (!cond()) {
		if (now_ms() > end)
			return false;
		pump_once(5);
	}
	return true;
}

static void pump_for(int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end)
		pump_once(5);
}

static bool all_up(void)
{
	for (uint32_t a = 1; a <= NODES; a++)
		for (uint32_t b = 1; b <= NODES; b++)
			if (a != b && (!nodes[a].pn || !peer_connected(nodes[a].pn, b)))
				return false;
	return true;
}

static void start_all(void)
{
	for (uint32_t sid = 1; sid <= NODES; sid++)
		node_start(sid);
	cr_assert(pump_until(all_up, WAIT_MS), "not every pair came up");
}

static bool all_delivered(void)
{
	for (uint32_t a = 1; a <= NODES; a++)
		for (uint32_t b = 1; b <= NODES; b++)
			if (a != b && nodes[b].recv_seq[a] != nodes[a].send_seq[b])
				return false;
	return true;
}

/* Every pair still carries frames both ways. */
static void assert_traffic_flows(void)
{
	for (uint32_t a = 1; a <= NODES; a++)
		for (uint32_t b = 1; b <= NODES; b++)
			if (a != b)
				cr_assert_eq(send_frame(a, b, 100), 0, "send %u -> %u", a, b);
	cr_assert(pump_until(all_delivered, WAIT_MS), "frames were not delivered");
	for (int sid = 1; sid <= NODES; sid++)
		cr_assert_eq(nodes[sid].bad, 0, "node %d saw a bad frame or callback", sid);
}

static void assert_no_downs(void)
{
	for (uint32_t a = 1; a <= NODES; a++)
		for (uint32_t b = 1; b <= NODES; b++)
			cr_assert_eq(nodes[a].downs[b], 0, "node %u lost sid %u", a, b);
}

/* ---- raw clients ---- */

static int raw_connect(uint32_t to_sid)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)addrs[to_sid].port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	cr_assert(rc == 0 || errno == EINPROGRESS);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1);
	return fd;
}

static void raw_write(const void *p, size_t len)
{
	cr_assert_eq(send(raw, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One frame; checksum_xor != 0 corrupts the checksum. */
static void raw_frame(const void *payload, uint32_t len, uint32_t checksum_xor)
{
	struct peer_frame_header h = {
	    .len = len, .checksum = (uint32_t)XXH3_64bits(payload, len) ^ checksum_xor};
	raw_write(&h, sizeof h);
	raw_write(payload, len);
}

static void raw_hello(uint32_t from_sid, uint32_t to_sid)
{
	struct peer_hello h = {
	    .magic = PEER_MAGIC, .version = PEER_VERSION, .from_sid = from_sid, .to_sid = to_sid};
	raw_frame(&h, sizeof h, 0);
}

/* The server closed the raw socket (reading, and discarding, what it sent). */
static bool raw_closed(void)
{
	char b[256];
	ssize_t n = recv(raw, b, sizeof b, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static uint8_t raw_in[64];
static size_t raw_in_len;

static bool raw_got_ack(void)
{
	ssize_t n = recv(raw, raw_in + raw_in_len, sizeof raw_in - raw_in_len, MSG_DONTWAIT);
	if (n > 0)
		raw_in_len += (size_t)n;
	return raw_in_len >= sizeof(struct peer_frame_header) + sizeof(struct peer_hello);
}

/* ---- tests ---- */

Test(peer, all_pairs_come_up_once)
{
	start_all();
	for (uint32_t a = 1; a <= NODES; a++)
		for (uint32_t b = 1; b <= NODES; b++)
			if (a != b)
				cr_assert_eq(nodes[a].ups[b], 1, "node %u: sid %u up %d times", a,
					     b, nodes[a].ups[b]);
	pump_for(200);
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer, frames_arrive_intact_and_in_order)
{
	start_all();
	for (uint32_t a = 1; a <= NODES; a++) {
		for (uint32_t b = 1; b <= NODES; b++) {
			if (a == b)
				continue;
			for (int i = 0; i < SMALL_FRAMES; i++) {
				if (i == SMALL_FRAMES / 2)
					cr_assert_eq(send_frame(a, b, BIG_BYTES), 0);
				cr_assert_eq(send_frame(a, b, 4 + (size_t)(i * 7919) % 300), 0);
			}
		}
	}
	cr_assert(pump_until(all_delivered, WAIT_MS), "frames were not delivered");
	for (uint32_t a = 1; a <= NODES; a++) {
		cr_assert_eq(nodes[a].bad, 0, "node %u saw a bad frame", a);
		for (uint32_t b = 1; b <= NODES; b++)
			if (a != b) {
				cr_assert_eq(nodes[b].recv_seq[a], SMALL_FRAMES + 1);
				cr_assert_eq(nodes[b].recv_bytes[a], nodes[a].send_bytes[b]);
			}
	}
	cr_assert_gt(nodes[1].recv_bytes[2], BIG_BYTES);
	assert_no_downs();
}

static bool pair_12_cycled(void)
{
	return nodes[1].downs[2] == 1 && nodes[2].downs[1] == 1 && nodes[1].ups[2] == 2 &&
	       nodes[2].ups[1] == 2 && all_up();
}

Test(peer, close_by_acceptor_downs_both_sides_and_reconnects)
{
	start_all();
	peer_close(nodes[1].pn, 2);
	cr_assert_eq(nodes[1].downs[2], 1, "on_down runs within peer_close");
	cr_assert_not(peer_connected(nodes[1].pn, 2));
	cr_assert_eq(peer_send(nodes[1].pn, 2, "abcd", 4), -ENOTCONN);
	cr_assert(pump_until(pair_12_cycled, WAIT_MS), "1-2 did not go down and up again");
	cr_assert_eq(nodes[1].downs[3], 0);
	assert_traffic_flows();
}

Test(peer, close_by_connector_downs_both_sides_and_reconnects)
{
	start_all();
	peer_close(nodes[2].pn, 1);
	cr_assert_eq(nodes[2].downs[1], 1, "on_down runs within peer_close");
	cr_assert(pump_until(pair_12_cycled, WAIT_MS), "1-2 did not go down and up again");
	assert_traffic_flows();
}

static bool sid3_gone(void)
{
	return nodes[1].downs[3] == 1 && nodes[2].downs[3] == 1;
}

Test(peer, restarted_connector_reconnects)
{
	start_all();
	node_stop(3);
	cr_assert(pump_until(sid3_gone, WAIT_MS), "1 and 2 did not notice 3 go");
	node_start(3);
	cr_assert(pump_until(all_up, WAIT_MS), "3 did not come back");
	cr_assert_eq(nodes[1].ups[3], 2);
	cr_assert_eq(nodes[2].ups[3], 2);
	cr_assert_eq(nodes[1].downs[2], 0);
	assert_traffic_flows();
}

static bool sid1_gone(void)
{
	return nodes[2].downs[1] == 1 && nodes[3].downs[1] == 1;
}

Test(peer, restarted_acceptor_is_retried_until_back)
{
	start_all();
	node_stop(1);
	cr_assert(pump_until(sid1_gone, WAIT_MS), "2 and 3 did not notice 1 go");
	pump_for(300); /* several refused attempts from 2 and 3 */
	cr_assert_not(peer_connected(nodes[2].pn, 1));
	node_start(1);
	cr_assert(pump_until(all_up, WAIT_MS), "1 did not come back");
	cr_assert_eq(nodes[2].ups[1], 2);
	cr_assert_eq(nodes[2].downs[3], 0);
	assert_traffic_flows();
}

Test(peer, send_to_unconnected_sid_is_enotconn)
{
	node_start(1);
	pump_for(100);
	cr_assert_eq(peer_send(nodes[1].pn, 2, "abcd", 4), -ENOTCONN);
	cr_assert_eq(peer_send(nodes[1].pn, 7, "abcd", 4), -ENOTCONN, "not a peer at all");
	cr_assert_not(peer_connected(nodes[1].pn, 2));
	cr_assert_eq(nodes[1].ups[2], 0);
}

Test(peer, frame_over_the_bound_is_refused_at_send)
{
	tweak.frame_bytes_max = 4096;
	start_all();
	char big[4097] = {0};
	cr_assert_eq(peer_send(nodes[2].pn, 1, big, sizeof big), -EMSGSIZE);
	cr_assert(peer_connected(nodes[2].pn, 1), "nothing was queued: the stream is intact");
	cr_assert_eq(send_frame(2, 1, 4096), 0);
	cr_assert(pump_until(all_delivered, WAIT_MS));
	cr_assert_eq(nodes[1].bad, 0);
	assert_no_downs();
}

Test(peer, bind_failure_names_the_address)
{
	node_start(1);
	struct peer_config cfg = {
	    .my_sid = 1, .listen_host = "127.0.0.1", .listen_port = addrs[1].port};
	char err[256] = "", want[64];
	cr_assert_null(peer_create(&cfg, err, sizeof err));
	snprintf(want, sizeof want, "127.0.0.1:%d", addrs[1].port);
	cr_assert(strstr(err, want), "error \"%s\" does not name %s", err, want);
}

Test(peer, own_or_repeated_sid_is_a_config_error)
{
	struct peer_addr peers[2] = {addrs[1], addrs[1]};
	struct peer_config cfg = {.my_sid = 1,
				  .listen_host = "127.0.0.1",
				  .listen_port = addrs[1].port,
				  .peers = peers,
				  .n_peers = 1};
	char err[256] = "";
	cr_assert_null(peer_create(&cfg, err, sizeof err), "my own sid as a peer");
	peers[0] = addrs[2];
	peers[1] = addrs[2];
	cfg.n_peers = 2;
	cr_assert_null(peer_create(&cfg, err, sizeof err), "a sid twice");
	cr_assert(strlen(err) > 0);
}

Test(peer_fault, output_bound_drops_the_connection)
{
	tweak.out_bytes_max = 1u << 20;
	start_all();
	cr_assert_eq(send_frame(3, 1, 600u << 10), 0);
	cr_assert_eq(send_frame(3, 1, 600u << 10), -ENOBUFS);
	cr_assert_eq(nodes[3].downs[1], 1, "on_down runs within peer_send");
	cr_assert_not(peer_connected(nodes[3].pn, 1));
	cr_assert(pump_until(all_up, WAIT_MS), "3 did not reconnect to 1");
	cr_assert_eq(nodes[1].downs[3], 1);
	assert_traffic_flows();
}

Test(peer_fault, garbage_handshake_costs_only_that_socket)
{
	start_all();
	raw = raw_connect(1);
	uint8_t junk[32];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	junk[0] = 16; /* a hello's length, so the checks past the length run */
	junk[1] = junk[2] = junk[3] = 0;
	raw_write(junk, sizeof junk);
	cr_assert(pump_until(raw_closed, WAIT_MS), "garbage was not disconnected");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, bad_magic_with_a_good_checksum_is_refused)
{
	start_all();
	raw = raw_connect(1);
	struct peer_hello h = {
	    .magic = 0x12345678, .version = PEER_VERSION, .from_sid = 3, .to_sid = 1};
	raw_frame(&h, sizeof h, 0);
	cr_assert(pump_until(raw_closed, WAIT_MS), "bad magic was not disconnected");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, oversize_length_before_handshake_is_refused)
{
	start_all();
	raw = raw_connect(2);
	struct peer_frame_header h = {.len = 0xfffffff0u, .checksum = 0};
	raw_write(&h, sizeof h);
	cr_assert(pump_until(raw_closed, WAIT_MS), "oversize length was not disconnected");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, hello_from_a_smaller_sid_is_refused)
{
	start_all();
	raw = raw_connect(2);
	raw_hello(1, 2); /* 1 < 2: 2 connects to 1, never the other way */
	cr_assert(pump_until(raw_closed, WAIT_MS), "hello from sid 1 was accepted by 2");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, hello_from_an_unknown_sid_is_refused)
{
	start_all();
	raw = raw_connect(1);
	raw_hello(9, 1);
	cr_assert(pump_until(raw_closed, WAIT_MS), "hello from sid 9 was accepted");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, hello_with_a_bad_checksum_is_refused)
{
	start_all();
	raw = raw_connect(1);
	struct peer_hello h = {
	    .magic = PEER_MAGIC, .version = PEER_VERSION, .from_sid = 3, .to_sid = 1};
	raw_frame(&h, sizeof h, 0x1);
	cr_assert(pump_until(raw_closed, WAIT_MS), "a corrupt hello was accepted");
	cr_assert_eq(nodes[1].ups[3], 1, "the real sid 3 was not replaced");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, silent_socket_is_closed_at_the_handshake_deadline)
{
	tweak.connect_timeout_ms = 200;
	start_all();
	raw = raw_connect(1);
	cr_assert(pump_until(raw_closed, WAIT_MS), "a silent socket kept its slot");
	assert_no_downs();
	assert_traffic_flows();
}

static bool fake_up(void)
{
	return nodes[1].ups[SID_FAKE] == 1;
}

static bool fake_down(void)
{
	return nodes[1].downs[SID_FAKE] == 1;
}

static bool fake_frame_arrived(void)
{
	return nodes[1].recv_seq[SID_FAKE] == 1;
}

/* A raw client plays sid 4: handshakes with node 1 and checks the ack byte
 * for byte against the wire format in peer.h. */
static void fake_peer_handshake(void)
{
	raw = raw_connect(1);
	raw_hello(SID_FAKE, 1);
	cr_assert(pump_until(raw_got_ack, WAIT_MS), "no ack");
	struct peer_frame_header h;
	struct peer_hello ack;
	memcpy(&h, raw_in, sizeof h);
	memcpy(&ack, raw_in + sizeof h, sizeof ack);
	cr_assert_eq(h.len, sizeof ack);
	cr_assert_eq(h.checksum, (uint32_t)XXH3_64bits(&ack, sizeof ack));
	cr_assert_eq(ack.magic, PEER_MAGIC);
	cr_assert_eq(ack.version, PEER_VERSION);
	cr_assert_eq(ack.flags, PEER_HELLO_ACK);
	cr_assert_eq(ack.from_sid, 1);
	cr_assert_eq(ack.to_sid, SID_FAKE);
	cr_assert(pump_until(fake_up, WAIT_MS));
}

Test(peer_fault, bad_checksum_mid_stream_drops_that_connection)
{
	tweak.fake_peer = true;
	start_all();
	fake_peer_handshake();
	uint8_t frame[64] = {0}; /* seq 0 */
	for (size_t i = 4; i < sizeof frame; i++)
		frame[i] = pattern(0, i);
	raw_frame(frame, sizeof frame, 0);
	cr_assert(pump_until(fake_frame_arrived, WAIT_MS), "a good frame was not delivered");
	frame[0] = 1;
	raw_frame(frame, sizeof frame, 0x100);
	cr_assert(pump_until(fake_down, WAIT_MS), "a corrupt frame did not drop the connection");
	cr_assert(pump_until(raw_closed, WAIT_MS));
	cr_assert_eq(nodes[1].recv_seq[SID_FAKE], 1, "the corrupt frame was delivered");
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, oversize_length_mid_stream_drops_that_connection)
{
	tweak.fake_peer = true;
	tweak.frame_bytes_max = 1u << 20;
	start_all();
	fake_peer_handshake();
	struct peer_frame_header h = {.len = (1u << 20) + 1, .checksum = 0};
	raw_write(&h, sizeof h);
	cr_assert(pump_until(fake_down, WAIT_MS), "an oversize frame did not drop the connection");
	cr_assert(pump_until(raw_closed, WAIT_MS));
	assert_no_downs();
	assert_traffic_flows();
}

Test(peer_fault, new_hello_from_a_known_sid_replaces_the_old_connection)
{
	tweak.fake_peer = true;
	start_all();
	fake_peer_handshake();
	int first = raw;
	raw_in_len = 0;
	raw = raw_connect(1);
	raw_hello(SID_FAKE, 1);
	cr_assert(pump_until(raw_got_ack, WAIT_MS), "no ack for the second connection");
	cr_assert_eq(nodes[1].downs[SID_FAKE], 1, "the old connection went down first");
	cr_assert_eq(nodes[1].ups[SID_FAKE], 2);
	cr_assert(peer_connected(nodes[1].pn, SID_FAKE));
	int second = raw;
	raw = first;
	cr_assert(pump_until(raw_closed, WAIT_MS), "the old socket was not closed");
	close(first);
	raw = second;
	cr_assert_eq(nodes[1].bad, 0);
	assert_no_downs();
}
