/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* State files of persistent devices (round trip, atomic replacement,
 * refusal of damaged files), the backend identifier and the reconnect
 * backoff. */

#include "netlink.h"
#include "persist.h"
#include "util/macro.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

static char *make_dir(void) {
        GError *error = NULL;
        char *dir = g_dir_make_tmp("nbdlink-persist-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

static void remove_dir(const char *dir) {
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                char *p = g_build_filename(dir, name, NULL);
                g_unlink(p);
                g_free(p);
        }
        if (d)
                g_dir_close(d);
        g_rmdir(dir);
}

static PersistState sample(int index) {
        return (PersistState) {
                .index = index,
                .owner_uid = 1000,
                .host = (char *) "[::1]:10809",
                .port = 0,
                /* Bytes a line-based file must not take literally. */
                .export_name = (char *) "disk\nwith=odd\\bytes \x01\xc3\xa9",
                .backend = (char *) "nbdlink:[::1]:10809/disk",
                .size = 1ull << 40,
                .flags = 0x10d,
                .block_size = 4096,
                .connections = 4,
                .timeout_sec = 30,
                .dead_timeout_sec = 60,
                .read_only = true,
                .attached_since = 1700000000123456ull,
                .dead_since = 0,
        };
}

static void test_round_trip(void) {
        g_autofree char *dir = make_dir(), *sub = g_build_filename(dir, "run", NULL);
        PersistState in = sample(7), out = {};
        _cleanup_free_ int *list = NULL;
        struct stat st;
        size_t n;

        /* The directory is created on first use. */
        g_assert_cmpint(persist_state_write(sub, &in), ==, 0);
        g_assert_cmpint(persist_state_read(sub, 7, &out), ==, 0);
        g_assert_cmpint(out.index, ==, 7);
        g_assert_cmpuint(out.owner_uid, ==, 1000);
        g_assert_cmpstr(out.host, ==, in.host);
        g_assert_cmpuint(out.port, ==, 0);
        g_assert_cmpstr(out.export_name, ==, in.export_name);
        g_assert_cmpstr(out.backend, ==, in.backend);
        g_assert_cmpuint(out.size, ==, in.size);
        g_assert_cmpuint(out.flags, ==, in.flags);
        g_assert_cmpuint(out.block_size, ==, 4096);
        g_assert_cmpuint(out.connections, ==, 4);
        g_assert_cmpuint(out.timeout_sec, ==, 30);
        g_assert_cmpuint(out.dead_timeout_sec, ==, 60);
        g_assert_true(out.read_only);
        g_assert_cmpuint(out.attached_since, ==, in.attached_since);
        g_assert_cmpuint(out.dead_since, ==, 0);
        g_assert_false(out.reconnect);
        persist_state_done(&out);

        /* The option 'persist', kept apart from merely outliving nbdlinkd. */
        in.reconnect = true;
        g_assert_cmpint(persist_state_write(sub, &in), ==, 0);
        g_assert_cmpint(persist_state_read(sub, 7, &out), ==, 0);
        g_assert_true(out.reconnect);
        persist_state_done(&out);
        in.reconnect = false;

        /* Only root reads it. */
        g_autofree char *path = g_build_filename(sub, "nbd7", NULL);
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpuint(st.st_mode & 07777, ==, 0600);

        /* Rewriting replaces the whole file and leaves no temporary. */
        in.dead_since = 1700000000999999ull;
        g_assert_cmpint(persist_state_write(sub, &in), ==, 0);
        g_assert_cmpint(persist_state_write(sub, &(PersistState) { .index = 12, .host = (char *) "h", .export_name = (char *) "",
                                                                   .backend = (char *) "b", .connections = 1, .block_size = 512 }), ==, 0);
        g_assert_cmpint(persist_state_read(sub, 7, &out), ==, 0);
        g_assert_cmpuint(out.dead_since, ==, in.dead_since);
        persist_state_done(&out);

        g_assert_cmpint(persist_state_list(sub, &list, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);
        g_assert_cmpint(list[0], ==, 7);
        g_assert_cmpint(list[1], ==, 12);

        g_assert_cmpint(persist_state_remove(sub, 7), ==, 0);
        g_assert_cmpint(persist_state_remove(sub, 7), ==, 0);
        g_assert_cmpint(persist_state_read(sub, 7, &out), ==, -ENOENT);

        remove_dir(sub);
        g_rmdir(dir);

        /* No directory at all: nothing to restore. */
        free(TAKE_PTR(list));
        g_assert_cmpint(persist_state_list(sub, &list, &n), ==, 0);
        g_assert_cmpuint(n, ==, 0);
}

static void write_file(const char *dir, const char *name, const char *text) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void test_damaged(void) {
        g_autofree char *dir = make_dir();
        PersistState out = {};
        static const char good_tail[] =
                "owner=0\nhost=h\nport=0\nexport=e\nbackend=b\nsize=1\nflags=0\nblock-size=512\n"
                "connections=1\ntimeout=30\ndead-timeout=60\nread-only=0\nattached-since=1\ndead-since=0\n";
        g_autofree char *good = g_strconcat("nbdlink-persist 1\nindex=1\n", good_tail, NULL);
        g_autofree char *future = g_strconcat(good, "some-new-key=1\n", NULL);
        g_autofree char *wrong_index = g_strconcat("nbdlink-persist 1\nindex=2\n", good_tail, NULL);
        g_autofree char *bad_number = g_strconcat("nbdlink-persist 1\nindex=1\n", good_tail, "size=-1\n", NULL);
        g_autofree char *bad_escape = g_strconcat("nbdlink-persist 1\nindex=1\nexport=\\x0\n", good_tail, NULL);
        g_autofree char *nul_escape = g_strconcat("nbdlink-persist 1\nindex=1\nexport=\\x00\n", good_tail, NULL);

        write_file(dir, "nbd1", good);
        g_assert_cmpint(persist_state_read(dir, 1, &out), ==, 0);
        /* Written before "reconnect" was: every such device was persistent. */
        g_assert_true(out.reconnect);
        persist_state_done(&out);
        write_file(dir, "nbd1", future);
        g_assert_cmpint(persist_state_read(dir, 1, &out), ==, 0);
        persist_state_done(&out);

        const char *bad[] = {
                "",
                "nbdlink-persist 2\nindex=1\n",
                "nbdlink-persist 1\nindex=1\n",                 /* keys missing */
                wrong_index,
                bad_number,
                bad_escape,
                nul_escape,
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                write_file(dir, "nbd1", bad[i]);
                g_assert_cmpint(persist_state_read(dir, 1, &out), ==, -EINVAL);
        }

        /* A symlink is never followed. */
        g_autofree char *link = g_build_filename(dir, "nbd3", NULL);
        g_assert_cmpint(symlink("nbd1", link), ==, 0);
        g_assert_cmpint(persist_state_read(dir, 3, &out), ==, -ELOOP);
        remove_dir(dir);
}

static void test_backend_id(void) {
        _cleanup_free_ char *id = NULL;
        g_autofree char *long_name = g_strnfill(5000, 'a'), *long_other = g_strnfill(5000, 'a');

        g_assert_cmpint(persist_backend_id("127.0.0.1:10809", "disk", &id), ==, 0);
        g_assert_cmpstr(id, ==, "nbdlink:127.0.0.1:10809/disk");
        free(TAKE_PTR(id));

        g_assert_cmpint(persist_backend_id("[::1]:1", "a b\n\\", &id), ==, 0);
        g_assert_cmpstr(id, ==, "nbdlink:[::1]:1/a b\\x0a\\x5c");
        free(TAKE_PTR(id));

        /* Long names are cut to fit and told apart by a hash. */
        long_other[4999] = 'b';
        g_assert_cmpint(persist_backend_id("h:1", long_name, &id), ==, 0);
        g_assert_cmpuint(strlen(id), <=, NBD_NL_BACKEND_MAX);
        g_assert_true(g_str_has_prefix(id, "nbdlink:h:1/aaaa"));
        _cleanup_free_ char *id2 = NULL;
        g_assert_cmpint(persist_backend_id("h:1", long_other, &id2), ==, 0);
        g_assert_cmpuint(strlen(id2), ==, strlen(id));
        g_assert_cmpstr(id, !=, id2);
}

static void test_backoff(void) {
        usec_t prev_max = 0;

        for (unsigned attempt = 0; attempt < 40; attempt++) {
                usec_t lo = persist_backoff_usec(attempt, 0);
                usec_t hi = persist_backoff_usec(attempt, UINT32_MAX);
                usec_t mid = persist_backoff_usec(attempt, 12345);

                /* Equal jitter: between half and all of the step. */
                g_assert_cmpuint(lo, <=, mid);
                g_assert_cmpuint(hi, <=, PERSIST_BACKOFF_MAX_USEC);
                g_assert_cmpuint(lo, >=, PERSIST_BACKOFF_MIN_USEC / 2);
                g_assert_cmpuint(persist_backoff_usec(attempt, UINT32_MAX - 1), <=, PERSIST_BACKOFF_MAX_USEC);
                g_assert_cmpuint(hi, >=, prev_max / 2);
                prev_max = MAX(prev_max, hi);
        }
        g_assert_cmpuint(persist_backoff_usec(0, 0), ==, PERSIST_BACKOFF_MIN_USEC / 2);
        g_assert_cmpuint(persist_backoff_usec(1, 0), ==, PERSIST_BACKOFF_MIN_USEC);
        /* Capped, and the cap is reached after a handful of attempts. */
        g_assert_cmpuint(persist_backoff_usec(5, 0), ==, PERSIST_BACKOFF_MAX_USEC / 2);
        g_assert_cmpuint(persist_backoff_usec(1000, 0), ==, PERSIST_BACKOFF_MAX_USEC / 2);
        g_assert_cmpuint(persist_backoff_usec(1000, PERSIST_BACKOFF_MAX_USEC / 2), ==, PERSIST_BACKOFF_MAX_USEC);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/persist/state/round-trip", test_round_trip);
        g_test_add_func("/persist/state/damaged", test_damaged);
        g_test_add_func("/persist/backend-id", test_backend_id);
        g_test_add_func("/persist/backoff", test_backoff);
        return g_test_run();
}
