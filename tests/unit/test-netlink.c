/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The generic netlink messages of the persistent attach path, checked byte
 * by byte against <linux/nbd-netlink.h>, and the parsers against replies
 * built here the way the kernel lays them out, malformed ones included. */

#include "netlink.h"
#include "util/macro.h"

#include <glib.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>

#define FAMILY 0x1c

/* ---- a tiny independent reader and writer for the tests ---- */

typedef struct Attr {
        uint16_t type;
        const uint8_t *data;
        size_t len;
} Attr;

/* Splits [p, p+len) into attributes; asserts the layout is exact. */
static size_t split_attrs(const uint8_t *p, size_t len, Attr *out, size_t max) {
        size_t n = 0, off = 0;

        while (off < len) {
                struct nlattr a;

                g_assert_cmpuint(len - off, >=, NLA_HDRLEN);
                memcpy(&a, p + off, sizeof(a));
                g_assert_cmpuint(a.nla_len, >=, NLA_HDRLEN);
                g_assert_cmpuint(a.nla_len, <=, len - off);
                g_assert_cmpuint(n, <, max);
                out[n++] = (Attr) { a.nla_type, p + off + NLA_HDRLEN, a.nla_len - NLA_HDRLEN };
                off += NLA_ALIGN(a.nla_len);
        }
        g_assert_cmpuint(off, ==, len);
        return n;
}

static uint64_t attr_u64(const Attr *a) {
        uint64_t v;
        g_assert_cmpuint(a->len, ==, 8);
        memcpy(&v, a->data, 8);
        return v;
}

static uint32_t attr_u32(const Attr *a) {
        uint32_t v;
        g_assert_cmpuint(a->len, ==, 4);
        memcpy(&v, a->data, 4);
        return v;
}

/* Checks the headers and returns the attributes of a request. */
static size_t check_request(const uint8_t *buf, int len, uint16_t type, uint8_t cmd, uint8_t version,
                            uint32_t seq, Attr *attrs, size_t max) {
        struct nlmsghdr h;
        struct genlmsghdr g;

        g_assert_cmpint(len, >=, NLMSG_HDRLEN + GENL_HDRLEN);
        memcpy(&h, buf, sizeof(h));
        memcpy(&g, buf + NLMSG_HDRLEN, sizeof(g));
        g_assert_cmpuint(h.nlmsg_len, ==, (uint32_t) len);
        g_assert_cmpuint(h.nlmsg_type, ==, type);
        g_assert_cmpuint(h.nlmsg_flags, ==, NLM_F_REQUEST | NLM_F_ACK);
        g_assert_cmpuint(h.nlmsg_seq, ==, seq);
        g_assert_cmpuint(h.nlmsg_pid, ==, 0);
        g_assert_cmpuint(g.cmd, ==, cmd);
        g_assert_cmpuint(g.version, ==, version);
        g_assert_cmpuint(g.reserved, ==, 0);
        return split_attrs(buf + NLMSG_HDRLEN + GENL_HDRLEN, (size_t) len - NLMSG_HDRLEN - GENL_HDRLEN, attrs, max);
}

typedef struct Out {
        uint8_t buf[4096];
        size_t len;
} Out;

static void *out_put(Out *o, size_t n) {
        void *p = o->buf + o->len;
        g_assert_cmpuint(o->len + NLMSG_ALIGN(n), <=, sizeof(o->buf));
        memset(p, 0, NLMSG_ALIGN(n));
        o->len += NLMSG_ALIGN(n);
        return p;
}

static size_t out_msg(Out *o, uint16_t type, uint32_t seq, uint8_t cmd) {
        size_t start = o->len;
        struct nlmsghdr *h = out_put(o, NLMSG_HDRLEN);
        struct genlmsghdr *g = out_put(o, GENL_HDRLEN);

        *h = (struct nlmsghdr) { .nlmsg_type = type, .nlmsg_seq = seq };
        g->cmd = cmd;
        return start;
}

static size_t out_attr(Out *o, uint16_t type, const void *data, size_t n) {
        size_t start = o->len;
        struct nlattr *a = out_put(o, NLA_HDRLEN + n);

        *a = (struct nlattr) { .nla_len = (uint16_t) (NLA_HDRLEN + n), .nla_type = type };
        if (n)
                memcpy((uint8_t *) a + NLA_HDRLEN, data, n);
        return start;
}

static void out_end(Out *o, size_t start, bool is_msg) {
        if (is_msg)
                ((struct nlmsghdr *) (o->buf + start))->nlmsg_len = (uint32_t) (o->len - start);
        else
                ((struct nlattr *) (o->buf + start))->nla_len = (uint16_t) (o->len - start);
}

static void out_error(Out *o, uint32_t seq, int error) {
        size_t start = o->len;
        struct nlmsghdr *h = out_put(o, NLMSG_HDRLEN);
        struct nlmsgerr *e = out_put(o, sizeof(*e));

        *h = (struct nlmsghdr) { .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = seq };
        e->error = error;
        e->msg.nlmsg_seq = seq;
        out_end(o, start, true);
}

/* ---- building ---- */

static void test_build_get_family(void) {
        uint8_t buf[256];
        Attr a[4];
        int len = nbd_nl_build_get_family(buf, sizeof(buf), 7);
        size_t n = check_request(buf, len, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 7, a, G_N_ELEMENTS(a));

        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpuint(a[0].type, ==, CTRL_ATTR_FAMILY_NAME);
        g_assert_cmpuint(a[0].len, ==, 4);
        g_assert_cmpmem(a[0].data, 4, "nbd", 4);
        /* Fully aligned, nothing after the attribute. */
        g_assert_cmpint(len, ==, NLMSG_HDRLEN + GENL_HDRLEN + NLA_HDRLEN + 4);

        g_assert_cmpint(nbd_nl_build_get_family(buf, 20, 7), ==, -ENOBUFS);
}

static void test_build_connect(void) {
        const int socks[] = { 5, 9 };
        NbdNlConfig c = {
                .index = 3,
                .socks = socks,
                .n_socks = 2,
                .size = 1ull << 30,
                .block_size = 4096,
                .server_flags = 0x1 | 0x2 | 0x100,
                .timeout_sec = 30,
                .dead_timeout_sec = 60,
                .backend = "nbdlink:127.0.0.1:10809/disk",
        };
        uint8_t buf[NBD_NL_BUFFER_SIZE];
        Attr a[16], items[4], fd[2];
        int len = nbd_nl_build(buf, sizeof(buf), FAMILY, 42, NBD_NL_CONNECT, &c);
        size_t n = check_request(buf, len, FAMILY, NBD_CMD_CONNECT, NBD_GENL_VERSION, 42, a, G_N_ELEMENTS(a));

        g_assert_cmpuint(n, ==, 8);
        g_assert_cmpuint(a[0].type, ==, NBD_ATTR_INDEX);
        g_assert_cmpuint(attr_u32(&a[0]), ==, 3);
        g_assert_cmpuint(a[1].type, ==, NBD_ATTR_SIZE_BYTES);
        g_assert_cmpuint(attr_u64(&a[1]), ==, 1ull << 30);
        g_assert_cmpuint(a[2].type, ==, NBD_ATTR_BLOCK_SIZE_BYTES);
        g_assert_cmpuint(attr_u64(&a[2]), ==, 4096);
        g_assert_cmpuint(a[3].type, ==, NBD_ATTR_SERVER_FLAGS);
        g_assert_cmpuint(attr_u64(&a[3]), ==, 0x103);
        g_assert_cmpuint(a[4].type, ==, NBD_ATTR_TIMEOUT);
        g_assert_cmpuint(attr_u64(&a[4]), ==, 30);
        g_assert_cmpuint(a[5].type, ==, NBD_ATTR_DEAD_CONN_TIMEOUT);
        g_assert_cmpuint(attr_u64(&a[5]), ==, 60);
        g_assert_cmpuint(a[6].type, ==, NBD_ATTR_BACKEND_IDENTIFIER);
        g_assert_cmpuint(a[6].len, ==, strlen(c.backend) + 1);
        g_assert_cmpstr((const char *) a[6].data, ==, c.backend);

        /* NBD_ATTR_SOCKETS { NBD_SOCK_ITEM { NBD_SOCK_FD u32 } × 2 }, nests flagged. */
        g_assert_cmpuint(a[7].type, ==, NBD_ATTR_SOCKETS | NLA_F_NESTED);
        g_assert_cmpuint(split_attrs(a[7].data, a[7].len, items, G_N_ELEMENTS(items)), ==, 2);
        for (size_t i = 0; i < 2; i++) {
                g_assert_cmpuint(items[i].type, ==, NBD_SOCK_ITEM | NLA_F_NESTED);
                g_assert_cmpuint(split_attrs(items[i].data, items[i].len, fd, G_N_ELEMENTS(fd)), ==, 1);
                g_assert_cmpuint(fd[0].type, ==, NBD_SOCK_FD);
                g_assert_cmpuint(attr_u32(&fd[0]), ==, (uint32_t) socks[i]);
        }

        /* Optional attributes stay out when unset; -1 lets the kernel pick. */
        c = (NbdNlConfig) { .index = -1, .socks = socks, .n_socks = 1, .size = 512, .block_size = 512 };
        len = nbd_nl_build(buf, sizeof(buf), FAMILY, 43, NBD_NL_CONNECT, &c);
        n = check_request(buf, len, FAMILY, NBD_CMD_CONNECT, NBD_GENL_VERSION, 43, a, G_N_ELEMENTS(a));
        g_assert_cmpuint(n, ==, 4);
        g_assert_cmpuint(a[0].type, ==, NBD_ATTR_SIZE_BYTES);
        g_assert_cmpuint(a[3].type, ==, NBD_ATTR_SOCKETS | NLA_F_NESTED);
}

static void test_build_other_commands(void) {
        const int socks[] = { 11 };
        NbdNlConfig c = { .index = 12, .socks = socks, .n_socks = 1, .size = 99, .dead_timeout_sec = 5,
                          .backend = "nbdlink:h:1/e" };
        uint8_t buf[1024];
        Attr a[8];
        int len;
        size_t n;

        /* RECONFIGURE: index, backend (the kernel checks it) and sockets;
         * never size or flags, which must not change under a mounted fs. */
        len = nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_RECONFIGURE, &c);
        n = check_request(buf, len, FAMILY, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION, 1, a, G_N_ELEMENTS(a));
        g_assert_cmpuint(n, ==, 3);
        g_assert_cmpuint(a[0].type, ==, NBD_ATTR_INDEX);
        g_assert_cmpuint(attr_u32(&a[0]), ==, 12);
        g_assert_cmpuint(a[1].type, ==, NBD_ATTR_BACKEND_IDENTIFIER);
        g_assert_cmpuint(a[2].type, ==, NBD_ATTR_SOCKETS | NLA_F_NESTED);

        len = nbd_nl_build(buf, sizeof(buf), FAMILY, 2, NBD_NL_DISCONNECT, &c);
        n = check_request(buf, len, FAMILY, NBD_CMD_DISCONNECT, NBD_GENL_VERSION, 2, a, G_N_ELEMENTS(a));
        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpuint(attr_u32(&a[0]), ==, 12);

        len = nbd_nl_build(buf, sizeof(buf), FAMILY, 3, NBD_NL_STATUS, &(NbdNlConfig) { .index = -1 });
        n = check_request(buf, len, FAMILY, NBD_CMD_STATUS, NBD_GENL_VERSION, 3, a, G_N_ELEMENTS(a));
        g_assert_cmpuint(n, ==, 0);
}

static void test_build_invalid(void) {
        const int socks[] = { 3 }, bad[] = { -1 };
        _cleanup_free_ char *long_backend = g_malloc(NBD_NL_BACKEND_MAX + 2);
        uint8_t buf[NBD_NL_BUFFER_SIZE];

        memset(long_backend, 'x', NBD_NL_BACKEND_MAX + 1);
        long_backend[NBD_NL_BACKEND_MAX + 1] = 0;

        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_CONNECT, &(NbdNlConfig) { .index = 1 }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_RECONFIGURE,
                                     &(NbdNlConfig) { .index = -1, .socks = socks, .n_socks = 1 }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_DISCONNECT, &(NbdNlConfig) { .index = -1 }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_LINK_DEAD, &(NbdNlConfig) { .index = 1 }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_CONNECT,
                                     &(NbdNlConfig) { .index = 1, .socks = bad, .n_socks = 1 }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, sizeof(buf), FAMILY, 1, NBD_NL_CONNECT,
                                     &(NbdNlConfig) { .index = 1, .socks = socks, .n_socks = 1, .backend = long_backend }), ==, -EINVAL);
        g_assert_cmpint(nbd_nl_build(buf, 40, FAMILY, 1, NBD_NL_CONNECT,
                                     &(NbdNlConfig) { .index = 1, .socks = socks, .n_socks = 1 }), ==, -ENOBUFS);
}

/* ---- parsing ---- */

static void put_family_reply(Out *o, uint32_t seq, bool with_group) {
        size_t m = out_msg(o, GENL_ID_CTRL, seq, CTRL_CMD_NEWFAMILY);
        uint16_t id = FAMILY;
        uint32_t other = 3, ours = 9;

        out_attr(o, CTRL_ATTR_FAMILY_NAME, "nbd", 4);
        out_attr(o, CTRL_ATTR_FAMILY_ID, &id, sizeof(id));
        size_t groups = out_attr(o, CTRL_ATTR_MCAST_GROUPS | NLA_F_NESTED, NULL, 0);
        size_t g1 = out_attr(o, 1 | NLA_F_NESTED, NULL, 0);
        out_attr(o, CTRL_ATTR_MCAST_GRP_NAME, "other", 6);
        out_attr(o, CTRL_ATTR_MCAST_GRP_ID, &other, 4);
        out_end(o, g1, false);
        if (with_group) {
                size_t g2 = out_attr(o, 2 | NLA_F_NESTED, NULL, 0);
                out_attr(o, CTRL_ATTR_MCAST_GRP_ID, &ours, 4);
                out_attr(o, CTRL_ATTR_MCAST_GRP_NAME, "nbd_mc_group", 13);
                out_end(o, g2, false);
        }
        out_end(o, groups, false);
        out_end(o, m, true);
}

static void test_parse_family(void) {
        Out o = {};
        uint16_t family = 0;
        uint32_t group = 0;

        put_family_reply(&o, 5, true);
        out_error(&o, 5, 0);
        g_assert_cmpint(nbd_nl_parse_family(o.buf, o.len, &family, &group), ==, 0);
        g_assert_cmpuint(family, ==, FAMILY);
        g_assert_cmpuint(group, ==, 9);

        /* No nbd module: the controller answers ENOENT. */
        o = (Out) {};
        out_error(&o, 5, -ENOENT);
        g_assert_cmpint(nbd_nl_parse_family(o.buf, o.len, &family, &group), ==, -ENOENT);

        /* A family without our group is not one we can watch. */
        o = (Out) {};
        put_family_reply(&o, 5, false);
        g_assert_cmpint(nbd_nl_parse_family(o.buf, o.len, &family, &group), ==, -EPROTO);

        /* Every truncation of a good reply is refused, never overread. */
        o = (Out) {};
        put_family_reply(&o, 5, true);
        for (size_t cut = 0; cut < o.len; cut++) {
                uint8_t *copy = g_memdup2(o.buf, cut);
                g_assert_cmpint(nbd_nl_parse_family(copy, cut, &family, &group), <, 0);
                g_free(copy);
        }
}

static void test_parse_reply(void) {
        Out o = {};
        int index = -1, connected = -1;
        uint32_t v = 6;
        uint8_t one = 1;

        /* CONNECT: the index, then the ACK, in one datagram. */
        size_t m = out_msg(&o, FAMILY, 8, NBD_CMD_CONNECT);
        out_attr(&o, NBD_ATTR_INDEX, &v, 4);
        out_end(&o, m, true);
        out_error(&o, 8, 0);
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 8, &index, NULL), ==, 1);
        g_assert_cmpint(index, ==, 6);

        /* The answer alone: more is to come. Another request's ACK: skipped. */
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, m + ((struct nlmsghdr *) o.buf)->nlmsg_len, FAMILY, 8, &index, NULL), ==, 0);
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 9, &index, NULL), ==, 0);

        /* An error answer is the kernel's errno. */
        o = (Out) {};
        out_error(&o, 4, -EBUSY);
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 4, &index, NULL), ==, -EBUSY);

        /* STATUS: NBD_ATTR_DEVICE_LIST { NBD_DEVICE_ITEM { INDEX, CONNECTED } }. */
        o = (Out) {};
        m = out_msg(&o, FAMILY, 2, NBD_CMD_STATUS);
        size_t list = out_attr(&o, NBD_ATTR_DEVICE_LIST | NLA_F_NESTED, NULL, 0);
        size_t item = out_attr(&o, NBD_DEVICE_ITEM | NLA_F_NESTED, NULL, 0);
        v = 3;
        out_attr(&o, NBD_DEVICE_INDEX, &v, 4);
        out_attr(&o, NBD_DEVICE_CONNECTED, &one, 1);
        out_end(&o, item, false);
        out_end(&o, list, false);
        out_end(&o, m, true);
        out_error(&o, 2, 0);
        index = -1;
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 2, &index, &connected), ==, 1);
        g_assert_cmpint(index, ==, 3);
        g_assert_cmpint(connected, ==, 1);

        /* A length running past the datagram. */
        ((struct nlattr *) (o.buf + list))->nla_len = 200;
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 2, &index, &connected), ==, -EPROTO);
        ((struct nlmsghdr *) o.buf)->nlmsg_len = 4000;
        g_assert_cmpint(nbd_nl_parse_reply(o.buf, o.len, FAMILY, 2, &index, &connected), ==, -EPROTO);
}

static void collect(int index, void *userdata) {
        g_array_append_val((GArray *) userdata, index);
}

static void test_parse_link_dead(void) {
        GArray *seen = g_array_new(FALSE, FALSE, sizeof(int));
        Out o = {};
        uint32_t v;
        size_t m;

        v = 4;
        m = out_msg(&o, FAMILY, 0, NBD_CMD_LINK_DEAD);
        out_attr(&o, NBD_ATTR_INDEX, &v, 4);
        out_end(&o, m, true);
        /* Some other family's message and another command are skipped. */
        m = out_msg(&o, FAMILY + 1, 0, NBD_CMD_LINK_DEAD);
        out_attr(&o, NBD_ATTR_INDEX, &v, 4);
        out_end(&o, m, true);
        v = 7;
        m = out_msg(&o, FAMILY, 0, NBD_CMD_LINK_DEAD);
        out_attr(&o, NBD_ATTR_INDEX, &v, 4);
        out_end(&o, m, true);

        g_assert_cmpint(nbd_nl_parse_link_dead(o.buf, o.len, FAMILY, collect, seen), ==, 2);
        g_assert_cmpuint(seen->len, ==, 2);
        g_assert_cmpint(g_array_index(seen, int, 0), ==, 4);
        g_assert_cmpint(g_array_index(seen, int, 1), ==, 7);

        /* An index attribute too short to hold a u32. */
        o = (Out) {};
        m = out_msg(&o, FAMILY, 0, NBD_CMD_LINK_DEAD);
        out_attr(&o, NBD_ATTR_INDEX, &v, 2);
        out_end(&o, m, true);
        g_assert_cmpint(nbd_nl_parse_link_dead(o.buf, o.len, FAMILY, collect, seen), ==, -EPROTO);
        g_array_unref(seen);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/netlink/build/get-family", test_build_get_family);
        g_test_add_func("/netlink/build/connect", test_build_connect);
        g_test_add_func("/netlink/build/reconfigure-disconnect-status", test_build_other_commands);
        g_test_add_func("/netlink/build/invalid", test_build_invalid);
        g_test_add_func("/netlink/parse/family", test_parse_family);
        g_test_add_func("/netlink/parse/reply", test_parse_reply);
        g_test_add_func("/netlink/parse/link-dead", test_parse_link_dead);
        return g_test_run();
}
