/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's TARGET parser: NBD URIs as the NBD URI specification
 * defines them, HOST[:PORT] and unix:PATH; every rejected form is checked
 * for its errno and its message's prefix; and the URI formatter, whose
 * every URI the parser reads back as it was made. */
#include <errno.h>
/* Project headers first: glib.h redefines MIN and MAX after them. */
#include "nbd-uri.h"

#include <glib.h>
#include <string.h>


typedef struct ValidCase {
        const char *input;
        bool is_unix, tls_required, ipv6;
        const char *host;
        uint16_t port;
        const char *export_name;        /* NULL: none named */
        const char *socket;
        const char *username, *tls_hostname, *psk_file, *certificates;
        NbdTlsType tls_type;
        const char *display;
} ValidCase;

static const ValidCase valid_cases[] = {
        { "nbd://example.com/disk", .host = "example.com", .export_name = "disk",
          .display = "example.com" },
        { "nbd://example.com:10810/disk", .host = "example.com", .port = 10810, .export_name = "disk",
          .display = "example.com:10810" },
        { "nbd://example.com", .host = "example.com", .display = "example.com" },
        { "nbd://example.com/", .host = "example.com", .export_name = "" },
        { "nbd://example.com//disk", .host = "example.com", .export_name = "/disk" },
        { "nbd://example.com/hello%20world", .host = "example.com", .export_name = "hello world" },
        { "nbd://example.com/a%2Fb%3fc%25", .host = "example.com", .export_name = "a/b?c%" },
        { "nbd://example.com/caf%C3%A9", .host = "example.com", .export_name = "caf\xc3\xa9" },
        { "nbd://example.com:/x", .host = "example.com", .export_name = "x" },
        { "NBD://Example.COM/x", .host = "Example.COM", .export_name = "x" },
        { "nbd://192.0.2.1:1/x", .host = "192.0.2.1", .port = 1, .export_name = "x" },
        { "nbd://h:65535/x", .host = "h", .port = 65535, .export_name = "x" },
        { "nbd://[::1]:10810/x", .ipv6 = true, .host = "::1", .port = 10810, .export_name = "x",
          .display = "[::1]:10810" },
        { "nbd://[::1]/x", .ipv6 = true, .host = "::1", .export_name = "x", .display = "[::1]" },
        { "nbd://[fe80::1%25eth0]:10809/x", .ipv6 = true, .host = "fe80::1%eth0", .port = 10809,
          .export_name = "x" },
        { "nbds://example.com/secure", .tls_required = true, .host = "example.com", .export_name = "secure" },
        { "nbds://alice@example.com/x?tls-type=psk&tls-psk-file=/k.psk", .tls_required = true,
          .host = "example.com", .export_name = "x", .username = "alice", .psk_file = "/k.psk",
          .tls_type = NBD_TLS_TYPE_PSK },
        { "nbd://h/x?tls-certificates=/etc/pki/nbd&tls-type=x509&tls-verify-peer=1", .host = "h",
          .export_name = "x", .certificates = "/etc/pki/nbd", .tls_type = NBD_TLS_TYPE_X509 },
        { "nbd://h/x?tls-hostname=server.example", .host = "h", .export_name = "x",
          .tls_hostname = "server.example" },
        { "nbd+unix:///disk?socket=/run/nbd.sock", .is_unix = true, .export_name = "disk",
          .socket = "/run/nbd.sock", .display = "unix:/run/nbd.sock" },
        { "nbd+unix:///?socket=rel%20sock", .is_unix = true, .export_name = "", .socket = "rel sock" },
        { "nbd+unix://?socket=/s", .is_unix = true, .socket = "/s" },
        { "nbds+unix:///x?socket=/s&tls-hostname=srv", .is_unix = true, .tls_required = true,
          .export_name = "x", .socket = "/s", .tls_hostname = "srv" },
        { "example.com", .host = "example.com" },
        { "example.com:10810", .host = "example.com", .port = 10810 },
        { "192.0.2.7", .host = "192.0.2.7" },
        { "[::1]:10810", .ipv6 = true, .host = "::1", .port = 10810 },
        { "[::1]", .ipv6 = true, .host = "::1" },
        { "::1", .ipv6 = true, .host = "::1" },
        { "2001:db8::7", .ipv6 = true, .host = "2001:db8::7" },
        { "unix:/run/nbd.sock", .is_unix = true, .socket = "/run/nbd.sock" },
        /* "nbd" as a host name is not a scheme without "//". */
        { "nbd:10809", .host = "nbd", .port = 10809 },
        /* Nor is "unix:" before a port: that is a host named "unix". */
        { "unix:10809", .host = "unix", .port = 10809 },
        { "nbd://unix:10810/", .host = "unix", .port = 10810, .export_name = "", .display = "unix:10810" },
        { "unix:./10809", .is_unix = true, .socket = "./10809" },
        { "nbd+unix:///?socket=10809", .is_unix = true, .export_name = "", .socket = "10809",
          .display = "unix:./10809" },
};

static void assert_streq0(const char *a, const char *b) {
        if (!a || !b)
                g_assert_true(a == b);
        else
                g_assert_cmpstr(a, ==, b);
}

static void test_valid(gconstpointer data) {
        const ValidCase *c = data;
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        char error[256] = "";
        int r;

        r = nbd_target_parse(&t, c->input, error, sizeof(error));
        if (r < 0)
                g_error("'%s' rejected: %s", c->input, error);
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(t->is_unix, ==, c->is_unix);
        g_assert_cmpint(t->tls_required, ==, c->tls_required);
        g_assert_cmpint(t->host_is_ipv6, ==, c->ipv6);
        assert_streq0(t->host, c->host);
        g_assert_cmpuint(t->port, ==, c->port);
        assert_streq0(t->export_name, c->export_name);
        assert_streq0(t->socket_path, c->socket);
        if (c->socket)
                g_assert_cmpuint(t->socket_path_len, ==, strlen(c->socket));
        assert_streq0(t->username, c->username);
        assert_streq0(t->tls_hostname, c->tls_hostname);
        assert_streq0(t->tls_psk_file, c->psk_file);
        assert_streq0(t->tls_certificates, c->certificates);
        g_assert_cmpint(t->tls_type, ==, c->tls_type);
        g_assert_cmpstr(nbd_target_bus_host(t), ==, c->is_unix ? "" : c->host);
        if (c->display) {
                _cleanup_free_ char *s = nbd_target_to_string(t);
                g_assert_cmpstr(s, ==, c->display);
        }
}

typedef struct InvalidCase {
        const char *input;
        const char *message;    /* the whole message begins with this */
} InvalidCase;

static const InvalidCase invalid_cases[] = {
        /* ports */
        { "nbd://h:0/x", "uri: port 0 is out of range" },
        { "nbd://h:65536/x", "uri: port '65536' is out of range" },
        { "nbd://h:99999999999999999999/x", "uri: port '99999999999999999999' is out of range" },
        { "nbd://h:-1/x", "uri: port '-1' is not a number" },
        { "nbd://h:1x/x", "uri: port '1x' is not a number" },
        { "h:70000", "target: port '70000' is out of range" },
        { "h:0", "target: port 0 is out of range" },
        { "h:", "target: empty port" },
        { "[::1]:", "target: empty port" },
        { "h:port", "target: port 'port' is not a number" },
        /* schemes */
        { "http://example.com/x", "uri: unknown scheme 'http'" },
        { "nbd+tcp://example.com/x", "uri: unknown scheme 'nbd+tcp'" },
        { "file:///x", "uri: unknown scheme 'file'" },
        /* hosts */
        { "nbd:///x", "uri: no host in URI" },
        { "nbd://:10809/x", "uri: no host in URI" },
        { "nbd://[::1/x", "uri: missing ']' after IPv6 address" },
        { "nbd://[::g]/x", "uri: '[::g]' is not a valid IPv6 address" },
        { "nbd://[192.0.2.1]/x", "uri: '[192.0.2.1]' is not a valid IPv6 address" },
        { "nbd://[v1.x]/x", "uri: IPvFuture addresses are not supported" },
        { "nbd://[::1]x/x", "uri: unexpected text after IPv6 address" },
        { "nbd://ex ample/x", "uri: character ' ' in host must be percent-encoded" },
        { "nbd://ex%2Fample/x", "uri: 'ex/ample' is not a valid host name" },
        { "nbd://h%00/x", "uri: '(contains NUL)' is not a valid host name" },
        { "nbd://user:secret@h/x", "uri: passwords in URIs are not supported" },
        { "nbd://@h/x", "uri: empty user name" },
        { "nbd+unix://h/x?socket=/s", "uri: nbd+unix URIs take no host" },
        { "host/export", "target: 'host/export' is not a host name; write a URI" },
        { "ho st", "target: 'ho st' is not a valid host name" },
        { ".example", "target: '.example' is not a valid host name" },
        { "nbd://-h/x", "uri: '-h' is not a valid host name" },
        { "", "target: empty host" },
        { "1:2:3", "target: '1:2:3' is not a valid IPv6 address" },
        { "[::1", "target: missing ']' after IPv6 address" },
        { "[::1]x", "target: unexpected text after IPv6 address" },
        { "[zz]:1", "target: 'zz' is not a valid IPv6 address" },
        /* Zones are interface names: nothing the daemon would refuse. */
        { "[fe80::1%e\xd8th]:1", "target: 'fe80::1%e\xd8th' is not a valid IPv6 address" },
        { "[fe80::1%T[fe80::1]", "target: 'fe80::1%T[fe80::1' is not a valid IPv6 address" },
        { "[fe80::1%abcdefghijklmnop]", "target: 'fe80::1%abcdefghijklmnop' is not a valid IPv6 address" },
        { "unix:70000", "target: port '70000' is out of range" },
        { "unix:", "target: empty socket path" },
        /* export names */
        { "nbd://h/a b", "uri: character ' ' in export name must be percent-encoded" },
        { "nbd://h/a%2", "uri: bad percent-encoding in export name at '%2'" },
        { "nbd://h/a%zz", "uri: bad percent-encoding in export name at '%zz'" },
        { "nbd://h/a%00b", "uri: export name contains NUL" },
        { "nbd://h/%ff%fe", "uri: export name is not valid UTF-8" },
        { "nbd://h/a\tb", "uri: export name contains byte 0x09, which must be percent-encoded" },
        { "nbd://h/a\"b", "uri: character '\"' in export name must be percent-encoded" },
        { "nbd://h/x#frag", "uri: fragments ('#') are not allowed" },
        /* query */
        { "nbd://h/x?foo=bar", "uri: unknown query parameter 'foo'" },
        { "nbd://h/x?x-experimental=1", "uri: unknown query parameter 'x-experimental'" },
        { "nbd://h/x?socket=/s", "uri: socket= is only for nbd+unix:// and nbds+unix:// URIs" },
        { "nbd+unix:///x", "uri: nbd+unix URIs need ?socket=PATH" },
        { "nbd+unix:///x?socket=", "uri: query parameter 'socket' is empty" },
        { "nbd+unix:///x?socket=/a&socket=/b", "uri: query parameter 'socket' given twice" },
        { "nbd+unix:///x?socket=/a%00b", "uri: socket path contains NUL" },
        { "nbd://h/x?tls-type=anon", "uri: tls-type=anon is not supported" },
        { "nbd://h/x?tls-type=kerberos", "uri: unknown tls-type 'kerberos'" },
        { "nbd://h/x?tls-verify-peer=0", "uri: tls-verify-peer=0 is not supported" },
        { "nbd://h/x?tls-verify-peer=maybe", "uri: tls-verify-peer must be 0 or 1" },
        { "nbd://h/x?tls-psk-file", "uri: query parameter 'tls-psk-file' has no value" },
        { "nbd://h/x?tls-psk-file=a&tls-psk-file=b", "uri: query parameter 'tls-psk-file' given twice" },
        { "nbd://h/x?tls-hostname=a/b", "uri: tls-hostname 'a/b' is not a valid host name" },
        { "nbd://h/x?&socket=/s", "uri: empty query parameter" },
        { "nbd://h/x?tls-type=psk&", "uri: empty query parameter" },
};

static void test_invalid(gconstpointer data) {
        const InvalidCase *c = data;
        NbdTarget *t = NULL;
        char error[256] = "";
        int r;

        r = nbd_target_parse(&t, c->input, error, sizeof(error));
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(t);
        if (!g_str_has_prefix(error, c->message))
                g_error("'%s': message '%s' does not begin with '%s'", c->input, error, c->message);
}

static void test_long_values(void) {
        g_autoptr(GString) s = g_string_new("nbd://");
        NbdTarget *t = NULL;
        char error[256] = "";
        char path[200];

        /* host over 255 bytes */
        for (int i = 0; i < 256; i++)
                g_string_append_c(s, 'a');
        g_string_append(s, "/x");
        g_assert_cmpint(nbd_target_parse(&t, s->str, error, sizeof(error)), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error, "uri: host name is longer than 255 bytes"));

        /* export over 4096 bytes, counted after decoding */
        g_string_assign(s, "nbd://h/");
        for (int i = 0; i < 4097; i++)
                g_string_append(s, "%41");
        g_assert_cmpint(nbd_target_parse(&t, s->str, error, sizeof(error)), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error, "uri: export name is longer than 4096 bytes"));

        /* exactly 4096 is fine */
        g_string_assign(s, "nbd://h/");
        for (int i = 0; i < 4096; i++)
                g_string_append_c(s, 'e');
        g_assert_cmpint(nbd_target_parse(&t, s->str, error, sizeof(error)), ==, 0);
        g_assert_cmpuint(strlen(t->export_name), ==, 4096);
        t = nbd_target_free(t);

        /* socket path longer than sun_path */
        memset(path, 'p', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = 0;
        g_string_printf(s, "nbd+unix:///x?socket=%s", path);
        g_assert_cmpint(nbd_target_parse(&t, s->str, error, sizeof(error)), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error, "uri: socket path is 199 bytes, longer than"));
        g_string_printf(s, "unix:%s", path);
        g_assert_cmpint(nbd_target_parse(&t, s->str, error, sizeof(error)), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error, "target: socket path is 199 bytes, longer than"));
}

static void test_abstract_socket(void) {
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        _cleanup_free_ char *s = NULL;
        char error[256] = "";

        g_assert_cmpint(nbd_target_parse(&t, "nbd+unix:///x?socket=%00/abstract", error, sizeof(error)), ==, 0);
        g_assert_cmpuint(t->socket_path_len, ==, 10);
        g_assert_cmpint(t->socket_path[0], ==, 0);
        g_assert_cmpmem(t->socket_path + 1, 9, "/abstract", 9);
        s = nbd_target_to_string(t);
        g_assert_cmpstr(s, ==, "unix:@/abstract");
}

typedef struct FormatCase {
        bool tls;
        const char *host;
        uint16_t port;
        const char *socket;
        size_t socket_len;
        const char *export_name;
        const char *uri;
} FormatCase;

static const FormatCase format_cases[] = {
        { false, "example.com", 0, NULL, 0, "disk", "nbd://example.com/disk" },
        { true, "example.com", 10810, NULL, 0, "disk", "nbds://example.com:10810/disk" },
        { false, "192.0.2.1", 1, NULL, 0, "", "nbd://192.0.2.1:1/" },
        { false, "h", 0, NULL, 0, NULL, "nbd://h/" },
        { false, "::1", 10809, NULL, 0, "x", "nbd://[::1]:10809/x" },
        { false, "fe80::1%eth0", 0, NULL, 0, "x", "nbd://[fe80::1%25eth0]/x" },
        { false, "h", 0, NULL, 0, "/disk", "nbd://h//disk" },
        { false, "h", 0, NULL, 0, "hello world?#&=%", "nbd://h/hello%20world%3F%23%26%3D%25" },
        { false, "h", 0, NULL, 0, "caf\xc3\xa9 \xe6\x97\xa5", "nbd://h/caf%C3%A9%20%E6%97%A5" },
        { false, NULL, 0, "/run/nbd.sock", 13, "disk", "nbd+unix:///disk?socket=/run/nbd.sock" },
        { true, NULL, 0, "/run/my sock&x", 14, "", "nbds+unix:///?socket=/run/my%20sock%26x" },
        { false, NULL, 0, "\0/abstract", 10, "x", "nbd+unix:///x?socket=%00/abstract" },
};

/* The formatter's URI, and the parser reading back what was formatted. */
static void test_format(const void *data) {
        const FormatCase *c = data;
        _cleanup_free_ char *uri = nbd_uri_format(c->tls, c->host, c->port, c->socket, c->socket_len, c->export_name);
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        char error[256] = "";

        g_assert_cmpstr(uri, ==, c->uri);
        g_assert_cmpint(nbd_target_parse(&t, uri, error, sizeof(error)), ==, 0);
        g_assert_cmpint(t->tls_required, ==, c->tls);
        g_assert_cmpint(t->is_unix, ==, !c->host);
        g_assert_cmpstr(t->host, ==, c->host);
        g_assert_cmpuint(t->port, ==, c->port);
        g_assert_cmpstr(t->export_name, ==, c->export_name ?: "");
        if (c->socket) {
                g_assert_cmpuint(t->socket_path_len, ==, c->socket_len);
                g_assert_cmpmem(t->socket_path, t->socket_path_len, c->socket, c->socket_len);
        }
}

static void test_format_nothing(void) {
        /* Neither a host nor a socket: a device whose socket its caller
         * handed over names no URI. */
        g_assert_null(nbd_uri_format(false, NULL, 0, NULL, 0, "x"));
        g_assert_null(nbd_uri_format(false, NULL, 0, "", 0, "x"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        for (size_t i = 0; i < ELEMENTSOF(valid_cases); i++) {
                g_autofree char *name = g_strdup_printf("/cli/uri/valid/%zu", i);
                g_test_add_data_func(name, &valid_cases[i], test_valid);
        }
        for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
                g_autofree char *name = g_strdup_printf("/cli/uri/invalid/%zu", i);
                g_test_add_data_func(name, &invalid_cases[i], test_invalid);
        }
        g_test_add_func("/cli/uri/long-values", test_long_values);
        g_test_add_func("/cli/uri/abstract-socket", test_abstract_socket);
        for (size_t i = 0; i < ELEMENTSOF(format_cases); i++) {
                g_autofree char *name = g_strdup_printf("/cli/uri/format/%zu", i);
                g_test_add_data_func(name, &format_cases[i], test_format);
        }
        g_test_add_func("/cli/uri/format-nothing", test_format_nothing);

        return g_test_run();
}
