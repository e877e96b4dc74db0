/*
 * uring.c — serve FUSE requests from io_uring queues, one per CPU (see
 * uring.h for why and how it fits libfuse 3.14).
 *
 * The protocol (Linux fs/fuse/dev_uring.c): each ring entry is a header
 * buffer (struct uring_header: the fuse_in_header, the opcode's fixed
 * argument struct, and the entry's commit id and payload size) and a
 * payload buffer (the other arguments: names, write data).  An entry is
 * given to the kernel once with REGISTER; the completion of that command
 * is a request; COMMIT_AND_FETCH then carries the reply (fuse_out_header
 * in the header buffer, the reply's arguments in the payload) and asks for
 * the next request in the same step.  The kernel uses the rings once every
 * CPU's queue has an entry registered.
 *
 * libfuse wants a request as /dev/fuse gives it: fuse_in_header, fixed
 * argument, then the rest.  The payload buffer has room in front of it
 * for the first two, so they are copied there and the payload (a write's
 * data) is not moved.  The reply is copied into the payload as the kernel
 * would copy it out of a writev.
 */
#include <errno.h>

#include "uring.h"

#ifndef MEMFS_HAVE_URING

int memfs_uring_available(void)
{
	return 0;
}

int memfs_uring_start(struct fuse_session *se, size_t payload, struct memfs_uring **out)
{
	(void)se, (void)payload;
	*out = NULL;
	return -EOPNOTSUPP;
}

void memfs_uring_stop(struct memfs_uring *u)
{
	(void)u;
}

int memfs_uring_take_reply(const struct iovec *iov, int count, ssize_t *ret)
{
	(void)iov, (void)count, (void)ret;
	return 0;
}

#else

#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "lower.h"

/* Protocol 7.42 (<linux/fuse.h> of Debian 12 is 7.38) */
#define URING_IN_OUT_SZ 128 /* room for fuse_in_header / fuse_out_header */
#define URING_OP_IN_SZ 128  /* room for the opcode's fixed argument */
#define URING_CMD_REGISTER 1
#define URING_CMD_COMMIT_AND_FETCH 2

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique, to name it in the commit */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct uring_header {
	char in_out[URING_IN_OUT_SZ];
	char op_in[URING_OP_IN_SZ];
	struct uring_ent_in_out ent;
};

struct uring_cmd_req { /* in the SQE's 80-byte command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct uring_cmd_req) <= 80, "fits an SQE128 command");

#define QUEUE_DEPTH 8 /* entries per CPU: requests one CPU can have in flight */
#define FRONT 4096    /* room before the payload for the header and fixed argument */
#define STOP_TAG ((uint64_t)1)

struct uring_queue;

struct uring_ent {
	struct uring_queue *q;
	struct uring_header *hdr;
	char *payload;
	struct iovec iov[2]; /* registered: header, payload */
	uint64_t unique;     /* of the request being handled */
	int replied;
	unsigned last_cmd;   /* what the kernel holds: REGISTER or COMMIT_AND_FETCH */
	unsigned errors;     /* commands in a row that failed */
};

struct uring_queue {
	struct memfs_uring *u;
	unsigned qid;
	pthread_t thread;
	int started;
	int stopfd; /* eventfd: written to stop the thread */
	struct io_uring ring;
	int ring_ok;
	char *mem; /* the entries' buffers, one mapping */
	struct uring_ent ent[QUEUE_DEPTH];
};

struct memfs_uring {
	struct fuse_session *se;
	int fd; /* /dev/fuse */
	size_t payload;
	size_t hdr_size; /* struct uring_header, page-rounded */
	size_t ent_size; /* header + FRONT + payload: one entry's share of a queue's mapping */
	unsigned nqueues;
	struct uring_queue *q;
};

static __thread struct uring_ent *current_ent;

/*
 * Not under valgrind (3.19): it runs io_uring_enter() holding the lock that
 * lets one thread run at a time, so a ring thread waiting for a request
 * would stop every other thread of the daemon.  Its preload library is
 * the sign.
 */
int memfs_uring_available(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return !(preload && strstr(preload, "vgpreload_"));
}

static void prep_cmd(struct io_uring_sqe *sqe, struct uring_ent *e, unsigned cmd_op,
		     uint64_t commit_id)
{
	unsigned char *raw = (unsigned char *)sqe;
	struct uring_cmd_req *req;

	/* An SQE128 is two struct io_uring_sqe long, the command in the
	 * second half: hide the pointer's origin from the bounds warnings. */
	__asm__("" : "+r"(raw));
	memset(raw, 0, 128);
	req = (void *)(raw + offsetof(struct io_uring_sqe, cmd));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = e->q->u->fd;
	sqe->cmd_op = cmd_op;
	io_uring_sqe_set_data(sqe, e);
	e->last_cmd = cmd_op;
	if (cmd_op == URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	req->qid = e->q->qid;
	req->commit_id = commit_id;
}

int memfs_uring_take_reply(const struct iovec *iov, int count, ssize_t *ret)
{
	struct uring_ent *e = current_ent;
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_out_header *dst;
	size_t len = 0, max;

	if (!e || count < 1 || iov[0].iov_len != sizeof(*out) || out->unique != e->unique ||
	    e->replied)
		return 0;
	max = e->q->u->payload;
	dst = (void *)e->hdr->in_out;
	*dst = *out;
	for (int i = 1; i < count; i++) {
		if (iov[i].iov_len > max - len) {
			/* libfuse never sends more than max_write; if it did,
			 * fail as writev(2) would, and handle() answers EIO */
			errno = EINVAL;
			*ret = -1;
			return 1;
		}
		/*
		 * A read's data may come straight from a lower file's mapping,
		 * which another process may have truncated: that copy must not
		 * kill the daemon.  Over /dev/fuse the kernel's copy would fail
		 * and the reader get EIO; so here.
		 */
		if (mfs_lower_copy(e->payload + len, iov[i].iov_base, iov[i].iov_len) < 0) {
			dst->error = -EIO;
			len = 0;
			break;
		}
		len += iov[i].iov_len;
	}
	dst->len = sizeof(*out) + len;
	e->hdr->ent.payload_sz = len;
	e->replied = 1;
	*ret = (ssize_t)(sizeof(*out) + len);
	return 1;
}

/* Answer the request in e with an error and no data. */
static void reply_error(struct uring_ent *e, uint64_t unique, int err)
{
	struct fuse_out_header *out = (void *)e->hdr->in_out;

	out->len = sizeof(*out);
	out->error = err;
	out->unique = unique;
	e->hdr->ent.payload_sz = 0;
}

/* A request arrived in e: hand it to libfuse as if read from /dev/fuse. */
static void handle(struct uring_ent *e)
{
	struct fuse_in_header in;
	size_t psz = e->hdr->ent.payload_sz, arg0;
	struct fuse_buf buf = {0};
	char *start;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->unique = in.unique;
	e->replied = 0;
	/* in.len counts the whole request; what is not payload is the
	 * fixed argument the kernel put in op_in */
	if (psz > e->q->u->payload || in.len < sizeof(in) + psz ||
	    (arg0 = in.len - sizeof(in) - psz) > URING_OP_IN_SZ) {
		fprintf(stderr, "memfs: io_uring: malformed request (opcode %u, len %u, payload %zu)\n",
			in.opcode, in.len, psz);
		reply_error(e, in.unique, -EIO);
		return;
	}
	start = e->payload - sizeof(in) - arg0;
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr->op_in, arg0);
	buf.mem = start;
	buf.size = in.len;
	current_ent = e;
	fuse_session_process_buf(e->q->u->se, &buf);
	current_ent = NULL;
	if (!e->replied) /* every request that comes by ring has a reply */
		reply_error(e, in.unique, -EIO);
}

static void *queue_thread(void *arg)
{
	struct uring_queue *q = arg;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	cpu_set_t cpus;
	int stop = 0;
	char name[16];

	snprintf(name, sizeof(name), "memfs-uring%u", q->qid % 1000);
	pthread_setname_np(pthread_self(), name); /* for ps -L, top -H, and the tests */
	CPU_ZERO(&cpus);
	CPU_SET(q->qid, &cpus);
	/* may fail (a CPU outside our cpuset): the queue still works, slower */
	(void)sched_setaffinity(0, sizeof(cpus), &cpus);
	/*
	 * SCHED_IDLE, so that the requester is not moved off this CPU: when
	 * this thread's reply wakes it, the scheduler looks for an idle CPU
	 * to run it on, and a CPU running only SCHED_IDLE threads counts as
	 * one (sched_idle_cpu()).  As an ordinary thread this one makes its
	 * own CPU look busy, and the requester moves to the other, halted
	 * one on every request (O_DIRECT 4 KiB reads: 14,000/s against
	 * 50,000/s; docs/BENCHMARKS.md).  It does not starve these threads:
	 * a request's sender sleeps until it is answered, and with three
	 * CPU-bound processes on two CPUs the same reads still ran at 56,000/s.
	 */
	(void)sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){0});
	for (unsigned i = 0; i < QUEUE_DEPTH; i++) {
		sqe = io_uring_get_sqe(&q->ring);
		prep_cmd(sqe, &q->ent[i], URING_CMD_REGISTER, 0);
	}
	sqe = io_uring_get_sqe(&q->ring);
	io_uring_prep_poll_add(sqe, q->stopfd, POLLIN);
	io_uring_sqe_set_data64(sqe, STOP_TAG);
	while (!stop) {
		unsigned head, n = 0;
		int err = io_uring_submit_and_wait(&q->ring, 1);

		if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
			break;
		io_uring_for_each_cqe(&q->ring, head, cqe)
		{
			struct uring_ent *e = io_uring_cqe_get_data(cqe);

			n++;
			if (io_uring_cqe_get_data64(cqe) == STOP_TAG) {
				stop = 1;
				continue;
			}
			if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
				/* not taken: give the same command again */
				sqe = io_uring_get_sqe(&q->ring);
				prep_cmd(sqe, e, e->last_cmd, e->hdr->ent.commit_id);
				continue;
			}
			if (cqe->res == -ENOTCONN || cqe->res == -ECANCELED || cqe->res == -ENODEV) {
				stop = 1; /* unmounted, or the connection aborted */
				continue;
			}
			if (cqe->res < 0) {
				/*
				 * The kernel refused this entry's command (a commit
				 * for a request it no longer has, say): it has
				 * forgotten the entry, so hand the buffers over
				 * again, lest this CPU's queue run short.  A few
				 * refusals in a row and the entry is left out.
				 */
				if (e->errors++ == 0)
					fprintf(stderr, "memfs: io_uring queue %u: %s\n", q->qid,
						strerror(-cqe->res));
				if (e->errors <= 3) {
					sqe = io_uring_get_sqe(&q->ring);
					prep_cmd(sqe, e, URING_CMD_REGISTER, 0);
				}
				continue;
			}
			e->errors = 0;
			handle(e);
			sqe = io_uring_get_sqe(&q->ring);
			prep_cmd(sqe, e, URING_CMD_COMMIT_AND_FETCH, e->hdr->ent.commit_id);
		}
		io_uring_cq_advance(&q->ring, n);
	}
	return NULL;
}

static int queue_init(struct memfs_uring *u, struct uring_queue *q, unsigned qid)
{
	struct io_uring_params p = {0};
	int err;

	q->u = u;
	q->qid = qid;
	q->stopfd = eventfd(0, EFD_CLOEXEC);
	if (q->stopfd < 0)
		return -errno;
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * (QUEUE_DEPTH + 1);
	err = io_uring_queue_init_params(QUEUE_DEPTH + 1, &q->ring, &p);
	if (err < 0)
		return err;
	q->ring_ok = 1;
	/* not touched until used: a queue costs memory only for what it carried */
	q->mem = mmap(NULL, u->ent_size * QUEUE_DEPTH, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->mem == MAP_FAILED) {
		q->mem = NULL;
		return -ENOMEM;
	}
	for (unsigned i = 0; i < QUEUE_DEPTH; i++) {
		struct uring_ent *e = &q->ent[i];
		char *base = q->mem + i * u->ent_size;

		e->q = q;
		e->hdr = (void *)base;
		e->payload = base + u->hdr_size + FRONT;
		e->iov[0] = (struct iovec){e->hdr, sizeof(struct uring_header)};
		e->iov[1] = (struct iovec){e->payload, u->payload};
	}
	return 0;
}

static void queue_free(struct memfs_uring *u, struct uring_queue *q)
{
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	if (q->mem)
		munmap(q->mem, u->ent_size * QUEUE_DEPTH);
	if (q->stopfd >= 0)
		close(q->stopfd);
}

int memfs_uring_start(struct fuse_session *se, size_t payload, struct memfs_uring **out)
{
	struct memfs_uring *u = calloc(1, sizeof(*u));
	int err = 0;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->se = se;
	u->fd = fuse_session_fd(se);
	u->payload = (payload + 4095) & ~(size_t)4095;
	u->hdr_size = (sizeof(struct uring_header) + 4095) & ~(size_t)4095;
	u->ent_size = u->hdr_size + FRONT + u->payload;
	u->nqueues = (unsigned)get_nprocs_conf(); /* the kernel has one queue per possible CPU */
	u->q = calloc(u->nqueues, sizeof(*u->q));
	if (!u->q) {
		free(u);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < u->nqueues; i++)
		u->q[i].stopfd = -1;
	for (unsigned i = 0; i < u->nqueues && !err; i++)
		err = queue_init(u, &u->q[i], i);
	for (unsigned i = 0; i < u->nqueues && !err; i++) {
		err = -pthread_create(&u->q[i].thread, NULL, queue_thread, &u->q[i]);
		u->q[i].started = !err;
	}
	if (err) {
		memfs_uring_stop(u);
		return err;
	}
	*out = u;
	return 0;
}

void memfs_uring_stop(struct memfs_uring *u)
{
	if (!u)
		return;
	for (unsigned i = 0; i < u->nqueues; i++) {
		struct uring_queue *q = &u->q[i];
		uint64_t one = 1;

		if (q->started) {
			if (write(q->stopfd, &one, sizeof(one)) != sizeof(one))
				pthread_cancel(q->thread); /* cannot happen with an eventfd */
			pthread_join(q->thread, NULL);
		}
		queue_free(u, q);
	}
	free(u->q);
	free(u);
}

#endif
