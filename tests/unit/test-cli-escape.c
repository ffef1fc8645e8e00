/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hostile text as nbdlink shows it: terminal escape sequences, line
 * breaks, C1 and bidirectional controls and broken UTF-8, each in the
 * visible form of tables and messages (escape.h) and as a JSON string,
 * and the error lines that quote a daemon's message or an argument. */
/* Project headers first: glib.h redefines MIN and MAX after them. */
#include "common.h"
#include "escape.h"
#include "json.h"
#include "utf8.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

typedef struct HostileCase {
        const char *input;
        const char *text;       /* escape_text() */
        const char *json;       /* json_write_escaped(), quotes included */
} HostileCase;

static const HostileCase hostile[] = {
        /* What a terminal acts on. */
        { "\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07", "\"\\u001b]0;pwned\\u0007\"" },
        { "\x1b[8mhidden\x1b[0m", "\\x1b[8mhidden\\x1b[0m", "\"\\u001b[8mhidden\\u001b[0m\"" },
        { "\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H", "\"\\u001b[2J\\u001b[H\"" },
        { "ok\rFAILED", "ok\\x0dFAILED", "\"ok\\rFAILED\"" },
        { "one\ntwo\n", "one\\x0atwo\\x0a", "\"one\\ntwo\\n\"" },
        { "a\tb\bc\fd\x01\x1f", "a\\x09b\\x08c\\x0cd\\x01\\x1f", "\"a\\tb\\bc\\fd\\u0001\\u001f\"" },
        { "del\x7f", "del\\x7f", "\"del\\u007f\"" },
        /* C1 as UTF-8: CSI (U+009B) is ESC [ to many terminals. */
        { "\xc2\x9b" "31mred", "\\u009B31mred", "\"\\u009b31mred\"" },
        { "\xc2\x80-\xc2\x9f", "\\u0080-\\u009F", "\"\\u0080-\\u009f\"" },
        /* Bidirectional controls reorder what is shown. */
        { "evil\xe2\x80\xaetxt.exe", "evil\\u202Etxt.exe", "\"evil\\u202etxt.exe\"" },
        { "\xd8\x9c\xe2\x80\x8e\xe2\x80\x8f", "\\u061C\\u200E\\u200F", "\"\\u061c\\u200e\\u200f\"" },
        { "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
          "\\u202A\\u202B\\u202C\\u202D", "\"\\u202a\\u202b\\u202c\\u202d\"" },
        { "\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
          "\\u2066\\u2067\\u2068\\u2069", "\"\\u2066\\u2067\\u2068\\u2069\"" },
        /* Bytes that are not UTF-8: a lone 8-bit CSI, cut, overlong,
         * surrogate. JSON stays valid with U+FFFD per byte. */
        { "raw\x9b" "2J", "raw\\x9b2J", "\"raw\\ufffd2J\"" },
        { "bad\xff", "bad\\xff", "\"bad\\ufffd\"" },
        { "cut\xe2\x82", "cut\\xe2\\x82", "\"cut\\ufffd\\ufffd\"" },
        { "\xc0\xaf", "\\xc0\\xaf", "\"\\ufffd\\ufffd\"" },
        { "\xed\xa0\x80", "\\xed\\xa0\\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
        /* A backslash stays as it is: a message the daemon escaped already
         * must not come out with its escapes doubled. */
        { "\\x1b is text", "\\x1b is text", "\"\\\\x1b is text\"" },
        /* Printable text of any width stays as it is, and so do the
         * neighbours of the escaped ranges. */
        { "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\"" },
        { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x92\xbe",
          "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x92\xbe",
          "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x92\xbe\"" },
        { "\xc2\xa0~\xe2\x80\x8d\xe2\x81\xaa", "\xc2\xa0~\xe2\x80\x8d\xe2\x81\xaa",
          "\"\xc2\xa0~\xe2\x80\x8d\xe2\x81\xaa\"" },
        { "", "", "\"\"" },
};

static void test_text(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
                g_autofree char *e = escape_text(hostile[i].input);
                g_autofree char *streamed = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&streamed, &size);

                g_assert_cmpstr(e, ==, hostile[i].text);
                /* The form has no control characters left at all. */
                for (const char *p = e; *p; p++)
                        g_assert_false((*p > 0 && *p < 0x20) || *p == 0x7f);

                g_assert_nonnull(f);
                fputs_escaped(hostile[i].input, f);
                g_assert_cmpint(fclose(f), ==, 0);
                g_assert_cmpstr(streamed, ==, hostile[i].text);
        }
}

static void test_json(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
                g_autofree char *s = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&s, &size);

                g_assert_nonnull(f);
                json_write_escaped(f, hostile[i].input, strlen(hostile[i].input));
                g_assert_cmpint(fclose(f), ==, 0);
                g_assert_cmpstr(s, ==, hostile[i].json);
                g_assert_true(g_utf8_validate(s, -1, NULL));
        }
}

static void test_classes(void) {
        static const uint32_t controls[] = {
                0x00, 0x1b, 0x1f, 0x7f, 0x80, 0x9b, 0x9f,
                0x061c, 0x200e, 0x200f, 0x202a, 0x202e, 0x2066, 0x2069,
        };
        static const uint32_t printable[] = {
                0x20, 0x7e, 0xa0, 0xe9, 0x061b, 0x061d, 0x200d, 0x2010,
                0x2029, 0x202f, 0x2065, 0x206a, 0x3000, 0xfffd, 0x1f4be,
        };

        for (size_t i = 0; i < G_N_ELEMENTS(controls); i++)
                g_assert_true(unicode_is_control(controls[i]));
        for (size_t i = 0; i < G_N_ELEMENTS(printable); i++)
                g_assert_false(unicode_is_control(printable[i]));
}

static void test_fprintf(void) {
        g_autofree char *s = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&s, &size);

        g_assert_nonnull(f);
        /* The arguments are escaped as part of the whole. */
        fprintf_escaped(f, "%s %s: %s (%s)", "nbd0", "disconnected", "gone\x1b[8m\n", "Name\xe2\x80\xae");
        g_assert_cmpint(fclose(f), ==, 0);
        g_assert_cmpstr(s, ==, "nbd0 disconnected: gone\\x1b[8m\\x0a (Name\\u202E)");
}

/* The error lines of common.c, run in a child so that stderr is caught. */
static void test_error_lines(void) {
        if (g_test_subprocess()) {
                sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("org.nbdlink.NBD1.Error.ServerError",
                                                         "server says: \x1b]0;pwned\x07\xc2\x9b" "2J\nrm -rf \xe2\x80\xae");

                log_bus_error(&e, -EIO, "probe %s export '%s'", "127.0.0.1:10809", "ex\x1b[8mport");
                log_errno(-ENOENT, "open CA certificate '%s'", "/tmp/ca\r.pem");
                usage_error("attach", "unexpected argument '%s'", "\x1b[31mred\xff");
                return;
        }

        g_autofree char *expected = g_strdup_printf(
                "nbdlink: probe 127.0.0.1:10809 export 'ex\\x1b[8mport': "
                "server says: \\x1b]0;pwned\\x07\\u009B2J\\x0arm -rf \\u202E "
                "(org.nbdlink.NBD1.Error.ServerError)\n"
                "nbdlink: open CA certificate '/tmp/ca\\x0d.pem': %s (ENOENT)\n"
                "nbdlink: unexpected argument '\\x1b[31mred\\xff'\n"
                "Try 'nbdlink attach --help' for more information.\n",
                strerror(ENOENT));

        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stdout("");
        /* A pattern without '*' or '?': the whole of stderr, exactly. */
        g_assert_null(strpbrk(expected, "*?"));
        g_test_trap_assert_stderr(expected);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/escape/text", test_text);
        g_test_add_func("/cli/escape/json", test_json);
        g_test_add_func("/cli/escape/classes", test_classes);
        g_test_add_func("/cli/escape/fprintf", test_fprintf);
        g_test_add_func("/cli/escape/error-lines", test_error_lines);
        return g_test_run();
}
