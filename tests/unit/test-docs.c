/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keeps the documentation in step with the code: every method, property
 * and signal in dbus/, every option key the daemon accepts, every
 * registered error name and every polkit action is in org.nbdlink.NBD1(5);
 * every option nbdlink's --help lists is in nbdlink(1) and in the bash
 * completion; and the man pages render without groff warnings. */

#include <errno.h>
#include <string.h>

#include "auth.h"
#include "bus-error.h"

/* After nbdlink headers: GLib defines MIN/MAX itself. */
#include <gio/gio.h>
#include <glib.h>

#include "cli-run.h"

static const char *source_root(void) {
        const char *s = g_getenv("NBDLINK_SOURCE_ROOT");

        if (!s)
                g_error("NBDLINK_SOURCE_ROOT is not set (run through meson test)");
        return s;
}

static char *read_source(const char *relative) {
        g_autofree char *path = g_build_filename(source_root(), relative, NULL);
        g_autoptr(GError) error = NULL;
        char *text = NULL;

        g_file_get_contents(path, &text, NULL, &error);
        g_assert_no_error(error);
        return text;
}

/* A man page's source with the escapes that may sit inside a name undone
 * (\- \fB \fR \fI \fP \(dq \&), so that names can be searched as text. */
static char *read_man(const char *relative) {
        g_autofree char *raw = read_source(relative);
        GString *s = g_string_sized_new(strlen(raw));

        for (const char *p = raw; *p; p++) {
                if (p[0] == '\\' && p[1] == '-') {
                        g_string_append_c(s, '-');
                        p++;
                } else if (p[0] == '\\' && p[1] == 'f' && p[2]) {
                        p += 2;
                } else if (p[0] == '\\' && p[1] == '&') {
                        p++;
                } else if (p[0] == '\\' && p[1] == '(' && p[2] && p[3]) {
                        g_string_append_c(s, '"');
                        p += 3;
                } else
                        g_string_append_c(s, *p);
        }
        return g_string_free(s, FALSE);
}

static gboolean is_name_char(char c) {
        return g_ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* Whether word occurs in text as a whole name (not as part of a longer
 * one; a trailing '.' or "()" is fine). */
static gboolean has_word(const char *text, const char *word) {
        size_t n = strlen(word);

        for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
                char after = p[n];

                if (p > text && is_name_char(p[-1]))
                        continue;
                if (after == '.' && !is_name_char(p[n + 1]))
                        return TRUE;
                if (!is_name_char(after))
                        return TRUE;
        }
        return FALSE;
}

static void assert_documented(const char *page_name, const char *page, const char *word) {
        if (!has_word(page, word))
                g_error("%s does not mention '%s'", page_name, word);
}

#define BUS_PAGE "data/man/org.nbdlink.NBD1.5"
#define CLI_PAGE "data/man/nbdlink.1"
#define COMPLETION "data/bash-completion/nbdlink"

static void test_bus_api(void) {
        g_autofree char *page = read_man(BUS_PAGE);
        static const char *const xml_files[] = {
                "dbus/org.nbdlink.NBD1.Manager.xml",
                "dbus/org.nbdlink.NBD1.Device.xml",
        };
        unsigned n = 0;

        for (size_t i = 0; i < G_N_ELEMENTS(xml_files); i++) {
                g_autofree char *xml = read_source(xml_files[i]);
                g_autoptr(GError) error = NULL;
                g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(xml, &error);

                g_assert_no_error(error);
                for (GDBusInterfaceInfo **iface = node->interfaces; iface && *iface; iface++) {
                        if (!g_str_has_prefix((*iface)->name, "org.nbdlink."))
                                continue;
                        assert_documented(BUS_PAGE, page, (*iface)->name);
                        for (GDBusMethodInfo **m = (*iface)->methods; m && *m; m++, n++)
                                assert_documented(BUS_PAGE, page, (*m)->name);
                        for (GDBusPropertyInfo **p = (*iface)->properties; p && *p; p++, n++)
                                assert_documented(BUS_PAGE, page, (*p)->name);
                        for (GDBusSignalInfo **s = (*iface)->signals; s && *s; s++, n++)
                                assert_documented(BUS_PAGE, page, (*s)->name);
                }
        }
        /* Attach, AttachWithOptions, Detach, ListExports, Probe, Version,
         * Device.Detach, Disconnected and the device properties at least. */
        g_assert_cmpuint(n, >=, 20);
}

/* The keys of the daemon's option table: lines { "key", "sig", KIND_... }. */
static void test_option_keys(void) {
        g_autofree char *page = read_man(BUS_PAGE);
        g_autofree char *src = read_source("daemon/bus/options.c");
        g_autoptr(GRegex) re = g_regex_new("\\{\\s*\"([a-z-]+)\",\\s*\"[a-z]+\",\\s*KIND_", 0, 0, NULL);
        g_autoptr(GMatchInfo) mi = NULL;
        unsigned n = 0;

        for (g_regex_match(re, src, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL), n++) {
                g_autofree char *key = g_match_info_fetch(mi, 1);

                assert_documented(BUS_PAGE, page, key);
        }
        g_assert_cmpuint(n, >=, 10);
}

static void test_errors(void) {
        g_autofree char *page = read_man(BUS_PAGE);
        g_autofree char *cli_page = read_man(CLI_PAGE);
        g_autoptr(GRegex) re = NULL;
        g_autoptr(GMatchInfo) mi = NULL;
        unsigned n = 0;

        assert_documented(BUS_PAGE, page, NBDLINK_ERROR_PREFIX);
        for (const sd_bus_error_map *m = nbdlink_bus_error_map; m->name; m++, n++) {
                const char *shortname = m->name + strlen(NBDLINK_ERROR_PREFIX);
                /* ".BR Name \" (ERRNO)\"" in the source. */
                g_autofree char *with_errno = g_strdup_printf("(?m)^\\.BR %s \" \\(%s\\)\"$", shortname,
                                                              strerrorname_np(m->code));

                g_assert_true(g_str_has_prefix(m->name, NBDLINK_ERROR_PREFIX));
                assert_documented(BUS_PAGE, page, shortname);
                /* The errno the name converts to, as the page says. */
                if (!g_regex_match_simple(with_errno, page, 0, 0))
                        g_error("%s does not say '%s'", BUS_PAGE, with_errno);
        }
        g_assert_cmpuint(n, ==, 18);

        /* And the other way round: no page names an error that does not exist. */
        re = g_regex_new("org\\.nbdlink\\.NBD1\\.Error\\.([A-Za-z]+)", 0, 0, NULL);
        for (const char *text = page; text; text = text == page ? cli_page : NULL) {
                for (g_regex_match(re, text, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
                        g_autofree char *name = g_match_info_fetch(mi, 0);

                        gboolean known = FALSE;

                        for (const sd_bus_error_map *m = nbdlink_bus_error_map; m->name; m++)
                                known = known || strcmp(m->name, name) == 0;
                        if (!known)
                                g_error("a man page names %s, which is not registered", name);
                }
                g_clear_pointer(&mi, g_match_info_free);
        }
}

static void test_polkit_actions(void) {
        g_autofree char *page = read_man(BUS_PAGE);
        g_autofree char *dir = g_build_filename(source_root(), "polkit", NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        static const char *const actions[] = { ACTION_ATTACH, ACTION_DETACH, ACTION_DETACH_OTHER, ACTION_LIST };
        const char *name;

        for (size_t i = 0; i < G_N_ELEMENTS(actions); i++)
                assert_documented(BUS_PAGE, page, actions[i]);

        /* Whatever the policy file declares, too. */
        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d))) {
                g_autofree char *rel = NULL, *xml = NULL;
                g_autoptr(GRegex) re = g_regex_new("<action\\s+id=\"([^\"]+)\"", 0, 0, NULL);
                g_autoptr(GMatchInfo) mi = NULL;

                if (!g_str_has_suffix(name, ".policy") && !g_str_has_suffix(name, ".policy.in"))
                        continue;
                rel = g_build_filename("polkit", name, NULL);
                xml = read_source(rel);
                for (g_regex_match(re, xml, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
                        g_autofree char *id = g_match_info_fetch(mi, 1);

                        assert_documented(BUS_PAGE, page, id);
                }
        }
}

/* nbdlink's stdout for args; it must succeed. */
static char *run_nbdlink(const char *const *args) {
        CliResult r = cli_run(cli_nbdlink_path(), FALSE, args);
        char *out = g_steal_pointer(&r.out);

        g_assert_cmpint(r.status, ==, 0);
        cli_result_clear(&r);
        return out;
}

/* The long options a --help text lists ("  -x --name ..." lines). */
static GPtrArray *help_options(const char *help) {
        g_autoptr(GRegex) re = g_regex_new("^\\s+(?:-[a-zA-Z]\\s+)?(--[a-z][a-z-]*)", G_REGEX_MULTILINE, 0, NULL);
        g_autoptr(GMatchInfo) mi = NULL;
        GPtrArray *opts = g_ptr_array_new_with_free_func(g_free);

        for (g_regex_match(re, help, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL))
                g_ptr_array_add(opts, g_match_info_fetch(mi, 1));
        return opts;
}

/* The commands "nbdlink --help" lists under "Commands:". */
static GPtrArray *help_commands(const char *help) {
        GPtrArray *cmds = g_ptr_array_new_with_free_func(g_free);
        const char *p = strstr(help, "\nCommands:\n");
        g_auto(GStrv) lines = NULL;

        g_assert_nonnull(p);
        lines = g_strsplit(p + strlen("\nCommands:\n"), "\n", -1);
        for (char **l = lines; *l && **l; l++) {
                g_auto(GStrv) words = g_strsplit_set(g_strstrip(*l), " ", 2);

                g_ptr_array_add(cmds, g_strdup(words[0]));
        }
        return cmds;
}

static void test_cli_options(void) {
        g_autofree char *page = read_man(CLI_PAGE);
        g_autofree char *completion = read_source(COMPLETION);
        g_autofree char *top = run_nbdlink((const char *const[]) { "--help", NULL });
        g_autoptr(GPtrArray) commands = help_commands(top);
        g_autoptr(GPtrArray) top_opts = help_options(top);
        static const char *const shared[] = { "common", "tls_opts" };

        g_assert_cmpuint(commands->len, ==, 8);
        g_assert_cmpuint(top_opts->len, >=, 4);
        for (guint i = 0; i < top_opts->len; i++) {
                assert_documented(CLI_PAGE, page, top_opts->pdata[i]);
                assert_documented(COMPLETION, completion, top_opts->pdata[i]);
        }

        for (guint i = 0; i < commands->len; i++) {
                const char *cmd = commands->pdata[i];
                g_autofree char *help = run_nbdlink((const char *const[]) { cmd, "--help", NULL });
                g_autoptr(GPtrArray) opts = help_options(help);
                g_autofree char *in_commands = g_strdup_printf("[%s]=\"", cmd);
                const char *line = strstr(completion, in_commands);
                g_autofree char *cline = NULL;

                assert_documented(CLI_PAGE, page, cmd);
                assert_documented(COMPLETION, completion, cmd);
                /* The completion's option list for this command. */
                if (!line)
                        g_error("%s has no option list for '%s'", COMPLETION, cmd);
                cline = g_strndup(line, strcspn(line, "\n"));
                /* The option lists it refers to. */
                for (size_t k = 0; k < G_N_ELEMENTS(shared); k++) {
                        g_autofree char *ref = g_strdup_printf("$%s", shared[k]);
                        g_autofree char *def = g_strdup_printf("local %s='", shared[k]);
                        const char *v = strstr(completion, def);

                        if (!strstr(cline, ref))
                                continue;
                        if (!v)
                                g_error("%s uses %s but does not define it", COMPLETION, ref);
                        v += strlen(def);
                        g_autofree char *joined = g_strdup_printf("%s %.*s", cline, (int) strcspn(v, "'"), v);
                        g_free(cline);
                        cline = g_steal_pointer(&joined);
                }

                g_assert_cmpuint(opts->len, >=, 3);
                for (guint j = 0; j < opts->len; j++) {
                        assert_documented(CLI_PAGE, page, opts->pdata[j]);
                        if (!has_word(cline, opts->pdata[j]))
                                g_error("%s does not complete '%s' for '%s'", COMPLETION,
                                        (char *) opts->pdata[j], cmd);
                }
        }
}

static void test_groff(void) {
        static const char *const pages[] = { "data/man/nbdlink.1", "data/man/nbdlinkd.8", BUS_PAGE };

        for (size_t i = 0; i < G_N_ELEMENTS(pages); i++) {
                g_autofree char *path = g_build_filename(source_root(), pages[i], NULL);
                const char *argv[] = { "groff", "-man", "-t", "-ww", "-z", "-Tutf8", path, NULL };
                g_autoptr(GError) error = NULL;
                g_autofree char *err = NULL;
                int status;

                g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                             NULL, NULL, &err, &status, &error);
                if (error)
                        g_error("cannot run groff (install groff-base: tools/install-deps): %s", error->message);
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                if (*err)
                        g_error("groff warns about %s:\n%s", pages[i], err);
        }
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/docs/bus-api", test_bus_api);
        g_test_add_func("/docs/option-keys", test_option_keys);
        g_test_add_func("/docs/errors", test_errors);
        g_test_add_func("/docs/polkit-actions", test_polkit_actions);
        g_test_add_func("/docs/cli-options", test_cli_options);
        g_test_add_func("/docs/groff", test_groff);
        return g_test_run();
}
