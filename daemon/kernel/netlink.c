/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic netlink for the nbd driver without libnl: attributes are laid out
 * by hand into a caller's buffer, replies are walked with every length
 * checked against what is left of the datagram before it is used. */

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <assert.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netlink.h"
#include "util/macro.h"

static_assert((int) NBD_NL_CONNECT == (int) NBD_CMD_CONNECT, "kernel value");
static_assert((int) NBD_NL_DISCONNECT == (int) NBD_CMD_DISCONNECT, "kernel value");
static_assert((int) NBD_NL_RECONFIGURE == (int) NBD_CMD_RECONFIGURE, "kernel value");
static_assert((int) NBD_NL_LINK_DEAD == (int) NBD_CMD_LINK_DEAD, "kernel value");
static_assert((int) NBD_NL_STATUS == (int) NBD_CMD_STATUS, "kernel value");

/* Bounded replies: CONNECT and STATUS answer with a few attributes, and a
 * STATUS over every device stays far below this. */
#define NBD_NL_REPLY_MAX 32768u
#define NBD_NL_REPLY_TIMEOUT_MSEC 10000

/* ---- building ------------------------------------------------------------ */

typedef struct MsgBuilder {
        uint8_t *buf;
        size_t size, len;
        bool overflow;
} MsgBuilder;

static void *mb_reserve(MsgBuilder *b, size_t n) {
        size_t aligned = NLMSG_ALIGN(n);
        void *p;

        if (b->overflow || aligned > b->size - b->len) {
                b->overflow = true;
                return NULL;
        }
        p = b->buf + b->len;
        memset(p, 0, aligned);
        b->len += aligned;
        return p;
}

static void mb_header(MsgBuilder *b, uint16_t type, uint32_t seq, uint8_t cmd, uint8_t version) {
        struct nlmsghdr *h = mb_reserve(b, NLMSG_HDRLEN);
        struct genlmsghdr *g = mb_reserve(b, GENL_HDRLEN);

        if (!h || !g)
                return;
        *h = (struct nlmsghdr) {
                .nlmsg_type = type,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
                .nlmsg_seq = seq,
        };
        *g = (struct genlmsghdr) { .cmd = cmd, .version = version };
}

/* Returns the offset of the attribute, for nests to patch their length. */
static size_t mb_attr(MsgBuilder *b, uint16_t type, const void *data, size_t n) {
        size_t off = b->len;
        struct nlattr *a;

        if (n > UINT16_MAX - NLA_HDRLEN) {
                b->overflow = true;
                return off;
        }
        a = mb_reserve(b, NLA_HDRLEN + n);
        if (!a)
                return off;
        *a = (struct nlattr) { .nla_len = (uint16_t) (NLA_HDRLEN + n), .nla_type = type };
        if (n > 0)
                memcpy((uint8_t *) a + NLA_HDRLEN, data, n);
        return off;
}

static void mb_u32(MsgBuilder *b, uint16_t type, uint32_t v) {
        (void) mb_attr(b, type, &v, sizeof(v));
}

static void mb_u64(MsgBuilder *b, uint16_t type, uint64_t v) {
        (void) mb_attr(b, type, &v, sizeof(v));
}

static size_t mb_nest_start(MsgBuilder *b, uint16_t type) {
        return mb_attr(b, type | NLA_F_NESTED, NULL, 0);
}

static void mb_nest_end(MsgBuilder *b, size_t off) {
        struct nlattr *a = (struct nlattr *) (b->buf + off);

        if (b->overflow)
                return;
        if (b->len - off > UINT16_MAX) {
                b->overflow = true;
                return;
        }
        a->nla_len = (uint16_t) (b->len - off);
}

static int mb_finish(MsgBuilder *b) {
        if (b->overflow)
                return -ENOBUFS;
        ((struct nlmsghdr *) b->buf)->nlmsg_len = (uint32_t) b->len;
        return (int) b->len;
}

int nbd_nl_build_get_family(void *buf, size_t size, uint32_t seq) {
        MsgBuilder b = { .buf = buf, .size = size };

        mb_header(&b, GENL_ID_CTRL, seq, CTRL_CMD_GETFAMILY, 1);
        (void) mb_attr(&b, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof(NBD_GENL_FAMILY_NAME));
        return mb_finish(&b);
}

static void mb_sockets(MsgBuilder *b, const int *socks, size_t n) {
        size_t list = mb_nest_start(b, NBD_ATTR_SOCKETS);

        for (size_t i = 0; i < n; i++) {
                size_t item = mb_nest_start(b, NBD_SOCK_ITEM);
                mb_u32(b, NBD_SOCK_FD, (uint32_t) socks[i]);
                mb_nest_end(b, item);
        }
        mb_nest_end(b, list);
}

static int mb_backend(MsgBuilder *b, const char *backend) {
        size_t n;

        if (!backend)
                return 0;
        n = strnlen(backend, NBD_NL_BACKEND_MAX + 1);
        if (n > NBD_NL_BACKEND_MAX)
                return -EINVAL;
        (void) mb_attr(b, NBD_ATTR_BACKEND_IDENTIFIER, backend, n + 1);
        return 0;
}

int nbd_nl_build(void *buf, size_t size, uint16_t family, uint32_t seq, NbdNlCommand cmd,
                 const NbdNlConfig *c) {
        MsgBuilder b = { .buf = buf, .size = size };

        switch (cmd) {
        case NBD_NL_CONNECT:
                if (c->n_socks < 1 || !c->socks)
                        return -EINVAL;
                break;
        case NBD_NL_RECONFIGURE:
                if (c->n_socks < 1 || !c->socks || c->index < 0)
                        return -EINVAL;
                break;
        case NBD_NL_DISCONNECT:
                if (c->index < 0)
                        return -EINVAL;
                break;
        case NBD_NL_STATUS:
                break;
        case NBD_NL_LINK_DEAD:
        default:
                return -EINVAL;         /* the kernel's to send, not ours */
        }
        for (size_t i = 0; i < c->n_socks; i++)
                if (c->socks[i] < 0)
                        return -EINVAL;

        mb_header(&b, family, seq, (uint8_t) cmd, NBD_GENL_VERSION);
        if (c->index >= 0)
                mb_u32(&b, NBD_ATTR_INDEX, (uint32_t) c->index);

        if (cmd == NBD_NL_CONNECT) {
                mb_u64(&b, NBD_ATTR_SIZE_BYTES, c->size);
                mb_u64(&b, NBD_ATTR_BLOCK_SIZE_BYTES, c->block_size);
                mb_u64(&b, NBD_ATTR_SERVER_FLAGS, c->server_flags);
                if (c->timeout_sec > 0)
                        mb_u64(&b, NBD_ATTR_TIMEOUT, c->timeout_sec);
                if (c->dead_timeout_sec > 0)
                        mb_u64(&b, NBD_ATTR_DEAD_CONN_TIMEOUT, c->dead_timeout_sec);
        }
        if (cmd == NBD_NL_CONNECT || cmd == NBD_NL_RECONFIGURE) {
                /* RECONFIGURE must name the backend the device was
                 * connected with: the kernel refuses a mismatch, which
                 * keeps a new socket from reaching the wrong device. */
                if (mb_backend(&b, c->backend) < 0)
                        return -EINVAL;
                mb_sockets(&b, c->socks, c->n_socks);
        }
        return mb_finish(&b);
}

/* ---- parsing ------------------------------------------------------------- */

/* Iterates the attributes in [p, p+len): each must fit what is left. */
#define FOREACH_ATTR(a, p, rem)                                                    \
        for (const struct nlattr *a = (const struct nlattr *) (p);                      \
             (rem) >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&                         \
             a->nla_len <= (rem);                                                       \
             (rem) -= MIN((size_t) NLA_ALIGN(a->nla_len), (rem)),                       \
             a = (const struct nlattr *) ((const uint8_t *) a + NLA_ALIGN(a->nla_len)))

static const void *attr_data(const struct nlattr *a) {
        return (const uint8_t *) a + NLA_HDRLEN;
}

static size_t attr_len(const struct nlattr *a) {
        return a->nla_len - NLA_HDRLEN;
}

static int attr_u32(const struct nlattr *a, uint32_t *ret) {
        if (attr_len(a) < sizeof(uint32_t))
                return -EPROTO;
        memcpy(ret, attr_data(a), sizeof(uint32_t));
        return 0;
}

static int attr_u16(const struct nlattr *a, uint16_t *ret) {
        if (attr_len(a) < sizeof(uint16_t))
                return -EPROTO;
        memcpy(ret, attr_data(a), sizeof(uint16_t));
        return 0;
}

/* Checks one message header against the rest of the datagram. */
static const struct nlmsghdr *next_message(const uint8_t *buf, size_t len, size_t *off) {
        const struct nlmsghdr *h;

        if (*off >= len || len - *off < NLMSG_HDRLEN)
                return NULL;
        h = (const struct nlmsghdr *) (buf + *off);
        if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len - *off)
                return NULL;
        *off += MIN((size_t) NLMSG_ALIGN(h->nlmsg_len), len - *off);
        return h;
}

static int message_error(const struct nlmsghdr *h) {
        const struct nlmsgerr *e;

        if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
                return -EPROTO;
        e = (const struct nlmsgerr *) NLMSG_DATA(h);
        /* error is 0 for an ACK, -errno otherwise. */
        return e->error > 0 ? -EPROTO : e->error;
}

static int mcast_groups(const struct nlattr *groups, uint32_t *ret_group) {
        size_t rem = attr_len(groups);

        FOREACH_ATTR(g, attr_data(groups), rem) {
                size_t rem2 = attr_len(g);
                const char *name = NULL;
                size_t name_len = 0;
                uint32_t id = 0;
                bool have_id = false;

                FOREACH_ATTR(a, attr_data(g), rem2)
                        switch (a->nla_type & NLA_TYPE_MASK) {
                        case CTRL_ATTR_MCAST_GRP_NAME:
                                name = attr_data(a);
                                name_len = attr_len(a);
                                break;
                        case CTRL_ATTR_MCAST_GRP_ID:
                                if (attr_u32(a, &id) < 0)
                                        return -EPROTO;
                                have_id = true;
                                break;
                        default:
                                break;
                        }
                if (name && have_id && name_len == sizeof(NBD_GENL_MCAST_GROUP_NAME) &&
                    memcmp(name, NBD_GENL_MCAST_GROUP_NAME, name_len) == 0) {
                        *ret_group = id;
                        return 0;
                }
        }
        return -ENOENT;
}

int nbd_nl_parse_family(const void *buf, size_t len, uint16_t *ret_family, uint32_t *ret_group) {
        const struct nlmsghdr *h;
        size_t off = 0;

        while ((h = next_message(buf, len, &off))) {
                const struct genlmsghdr *g;
                uint16_t family = 0;
                uint32_t group = 0;
                bool have_family = false, have_group = false;
                size_t rem;

                if (h->nlmsg_type == NLMSG_ERROR) {
                        int r = message_error(h);
                        /* An ACK after the answer; an error instead of it. */
                        if (r == 0)
                                continue;
                        return r == -ENOENT ? -ENOENT : r;
                }
                if (h->nlmsg_type != GENL_ID_CTRL)
                        continue;
                if (h->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
                        return -EPROTO;
                g = NLMSG_DATA(h);
                if (g->cmd != CTRL_CMD_NEWFAMILY)
                        continue;

                rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
                FOREACH_ATTR(a, (const uint8_t *) g + GENL_HDRLEN, rem)
                        switch (a->nla_type & NLA_TYPE_MASK) {
                        case CTRL_ATTR_FAMILY_ID:
                                if (attr_u16(a, &family) < 0)
                                        return -EPROTO;
                                have_family = true;
                                break;
                        case CTRL_ATTR_MCAST_GROUPS:
                                have_group = mcast_groups(a, &group) == 0;
                                break;
                        default:
                                break;
                        }
                if (rem != 0 || !have_family || !have_group)
                        return -EPROTO;
                *ret_family = family;
                *ret_group = group;
                return 0;
        }
        return -EPROTO;
}

/* STATUS: NBD_ATTR_DEVICE_LIST { NBD_DEVICE_ITEM { INDEX u32, CONNECTED u8 } … } */
static int parse_device_list(const struct nlattr *list, int *ret_index, int *ret_connected) {
        size_t rem = attr_len(list);

        FOREACH_ATTR(item, attr_data(list), rem) {
                size_t rem2 = attr_len(item);
                uint32_t index = 0;
                int connected = -1;
                bool have_index = false;

                if ((item->nla_type & NLA_TYPE_MASK) != NBD_DEVICE_ITEM)
                        continue;
                FOREACH_ATTR(a, attr_data(item), rem2)
                        switch (a->nla_type & NLA_TYPE_MASK) {
                        case NBD_DEVICE_INDEX:
                                if (attr_u32(a, &index) < 0)
                                        return -EPROTO;
                                have_index = true;
                                break;
                        case NBD_DEVICE_CONNECTED:
                                if (attr_len(a) < 1)
                                        return -EPROTO;
                                connected = *(const uint8_t *) attr_data(a) != 0;
                                break;
                        default:
                                break;
                        }
                if (!have_index || connected < 0 || index > INT32_MAX)
                        return -EPROTO;
                if (ret_index)
                        *ret_index = (int) index;
                if (ret_connected)
                        *ret_connected = connected;
                return 0;
        }
        return 0;
}

int nbd_nl_parse_reply(const void *buf, size_t len, uint16_t family, uint32_t seq,
                       int *ret_index, int *ret_connected) {
        const struct nlmsghdr *h;
        size_t off = 0;
        int r;

        while ((h = next_message(buf, len, &off))) {
                const struct genlmsghdr *g;
                size_t rem;

                /* Multicast messages share the socket; they have seq 0. */
                if (h->nlmsg_seq != seq)
                        continue;
                if (h->nlmsg_type == NLMSG_ERROR)
                        return message_error(h) ?: 1;
                if (h->nlmsg_type == NLMSG_DONE)
                        return 1;
                if (h->nlmsg_type != family)
                        continue;
                if (h->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
                        return -EPROTO;
                g = NLMSG_DATA(h);
                rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
                FOREACH_ATTR(a, (const uint8_t *) g + GENL_HDRLEN, rem) {
                        uint32_t v;

                        switch (a->nla_type & NLA_TYPE_MASK) {
                        case NBD_ATTR_INDEX:
                                if (attr_u32(a, &v) < 0 || v > INT32_MAX)
                                        return -EPROTO;
                                if (ret_index)
                                        *ret_index = (int) v;
                                break;
                        case NBD_ATTR_DEVICE_LIST:
                                r = parse_device_list(a, ret_index, ret_connected);
                                if (r < 0)
                                        return r;
                                break;
                        default:
                                break;
                        }
                }
                if (rem != 0)
                        return -EPROTO;
        }
        return off == len ? 0 : -EPROTO;
}

int nbd_nl_parse_link_dead(const void *buf, size_t len, uint16_t family,
                           void (*cb)(int index, void *userdata), void *userdata) {
        const struct nlmsghdr *h;
        size_t off = 0;
        int n = 0;

        while ((h = next_message(buf, len, &off))) {
                const struct genlmsghdr *g;
                size_t rem;

                if (h->nlmsg_type != family || h->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
                        continue;
                g = NLMSG_DATA(h);
                if (g->cmd != NBD_CMD_LINK_DEAD)
                        continue;
                rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
                FOREACH_ATTR(a, (const uint8_t *) g + GENL_HDRLEN, rem) {
                        uint32_t v;

                        if ((a->nla_type & NLA_TYPE_MASK) != NBD_ATTR_INDEX)
                                continue;
                        if (attr_u32(a, &v) < 0 || v > INT32_MAX)
                                return -EPROTO;
                        cb((int) v, userdata);
                        n++;
                }
                if (rem != 0)
                        return -EPROTO;
        }
        return off == len ? n : -EPROTO;
}

/* ---- the socket -------------------------------------------------------------- */

void nbd_netlink_close(NbdNetlink *nl) {
        if (!nl)
                return;
        nl->fd = safe_close(nl->fd);
}

/* Receives datagrams until parse says the answer is complete. */
static int transact(NbdNetlink *nl, const void *msg, size_t len,
                    int (*parse)(const void *buf, size_t n, void *userdata), void *userdata) {
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        _cleanup_free_ uint8_t *buf = NULL;
        ssize_t n;
        int r;

        buf = malloc(NBD_NL_REPLY_MAX);
        if (!buf)
                return -ENOMEM;

        do
                n = sendto(nl->fd, msg, len, 0, (struct sockaddr *) &kernel, sizeof(kernel));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();

        for (;;) {
                struct pollfd p = { .fd = nl->fd, .events = POLLIN };
                struct sockaddr_nl from = {};
                socklen_t fl = sizeof(from);

                /* The kernel answers synchronously; the bound is for a
                 * module being unloaded under our feet. */
                r = poll(&p, 1, NBD_NL_REPLY_TIMEOUT_MSEC);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return negative_errno();
                if (r == 0)
                        return -ETIMEDOUT;

                n = recvfrom(nl->fd, buf, NBD_NL_REPLY_MAX, MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return negative_errno();
                }
                /* Only the kernel (port 0) may answer. */
                if (from.nl_pid != 0)
                        continue;
                r = parse(buf, (size_t) n, userdata);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
}

typedef struct FamilyAnswer {
        uint16_t family;
        uint32_t group;
} FamilyAnswer;

static int parse_family_cb(const void *buf, size_t n, void *userdata) {
        FamilyAnswer *f = userdata;
        int r = nbd_nl_parse_family(buf, n, &f->family, &f->group);
        return r < 0 ? r : 1;
}

int nbd_netlink_open(NbdNetlink *ret) {
        struct sockaddr_nl local = { .nl_family = AF_NETLINK };
        NbdNetlink nl = NBD_NETLINK_NULL;
        FamilyAnswer f = {};
        uint8_t msg[256];
        int len, r;

        nl.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
        if (nl.fd < 0)
                return negative_errno();
        if (bind(nl.fd, (struct sockaddr *) &local, sizeof(local)) < 0) {
                r = negative_errno();
                goto fail;
        }

        nl.seq = (uint32_t) getpid() << 8;
        len = nbd_nl_build_get_family(msg, sizeof(msg), ++nl.seq);
        if (len < 0) {
                r = len;
                goto fail;
        }
        r = transact(&nl, msg, (size_t) len, parse_family_cb, &f);
        if (r < 0)
                goto fail;
        nl.family = f.family;
        nl.group = f.group;
        *ret = nl;
        return 0;

fail:
        nbd_netlink_close(&nl);
        return r;
}

int nbd_netlink_subscribe(NbdNetlink *nl) {
        int group = (int) nl->group;

        if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
                return negative_errno();
        return 0;
}

typedef struct ReplyAnswer {
        uint16_t family;
        uint32_t seq;
        int *index;
        int *connected;
} ReplyAnswer;

static int parse_reply_cb(const void *buf, size_t n, void *userdata) {
        ReplyAnswer *a = userdata;
        return nbd_nl_parse_reply(buf, n, a->family, a->seq, a->index, a->connected);
}

int nbd_netlink_request(NbdNetlink *nl, NbdNlCommand cmd, const NbdNlConfig *c,
                        int *ret_index, int *ret_connected) {
        _cleanup_free_ uint8_t *msg = NULL;
        ReplyAnswer a;
        int len;

        msg = malloc(NBD_NL_BUFFER_SIZE);
        if (!msg)
                return -ENOMEM;
        len = nbd_nl_build(msg, NBD_NL_BUFFER_SIZE, nl->family, ++nl->seq, cmd, c);
        if (len < 0)
                return len;
        a = (ReplyAnswer) { .family = nl->family, .seq = nl->seq, .index = ret_index, .connected = ret_connected };
        return transact(nl, msg, (size_t) len, parse_reply_cb, &a);
}
