/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replays a fuzz corpus through the fuzz entry point as an ordinary GTest
 * program, so the target keeps compiling and every input that once
 * crashed keeps passing even in builds without libFuzzer. */

#include "fuzz.h"

#include <glib.h>

/* Which corpus under tests/fuzz/corpus/ to replay: one program per target. */
#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS "handshake"
#endif

static void replay_one(gconstpointer data) {
        const char *path = data;
        g_autofree char *contents = NULL;
        g_autoptr(GError) error = NULL;
        gsize size;

        g_assert_true(g_file_get_contents(path, &contents, &size, &error));
        g_assert_no_error(error);
        (void) LLVMFuzzerTestOneInput((const uint8_t *) contents, size);
}

/* GPtrArray hands the comparison pointers to its elements. */
static gint compare_paths(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(const char *const *) a, *(const char *const *) b);
}

int main(int argc, char *argv[]) {
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *corpus = NULL;
        const char *name;

        g_test_init(&argc, &argv, NULL);

        corpus = g_test_build_filename(G_TEST_DIST, "fuzz", "corpus", FUZZ_CORPUS, NULL);
        dir = g_dir_open(corpus, 0, &error);
        if (!dir)
                g_error("cannot open the corpus %s: %s", corpus, error->message);

        while ((name = g_dir_read_name(dir)))
                g_ptr_array_add(paths, g_build_filename(corpus, name, NULL));
        g_ptr_array_sort(paths, compare_paths);
        if (paths->len == 0)
                g_error("the corpus %s is empty", corpus);

        for (guint i = 0; i < paths->len; i++) {
                const char *p = g_ptr_array_index(paths, i);
                g_autofree char *base = g_path_get_basename(p);
                g_autofree char *test = g_strdup_printf("/fuzz/%s/%s", FUZZ_CORPUS, base);

                g_test_add_data_func(test, p, replay_one);
        }
        return g_test_run();
}
