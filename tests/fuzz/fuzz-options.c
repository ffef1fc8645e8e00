/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: attach_options_parse(), the a{sv} options of
 * AttachWithOptions, ListExports and Probe. The input is a small program
 * that builds the message: byte 0 picks the method's option set and the
 * outer shape; then each entry is a key byte (a known key, or a string from
 * the input), a type byte (mostly the right type, sometimes another) and
 * the value's bytes. File descriptors come from a fixed pool of every kind
 * a caller could pass. Whatever the message, the parser must answer with
 * options in range or an error with a message, and leak no descriptor. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "fuzz.h"
#include "nbd-protocol.h"
#include "device-name.h"
#include "device-node.h"
#include "options.h"

#define MAX_ENTRIES 64

typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t take_byte(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static uint64_t take_bytes(Input *in, unsigned n) {
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v = v << 8 | take_byte(in);
        return v;
}

/* A string of up to 31 bytes for sd-bus, which refuses NUL and invalid
 * UTF-8 on append: bytes are folded to 1..127, control characters kept. */
static void take_string(Input *in, char buf[static 32]) {
        size_t n = take_byte(in) % 32;

        for (size_t i = 0; i < n; i++)
                buf[i] = (char) ((take_byte(in) & 0x7f) ?: 'x');
        buf[n] = 0;
}

enum {
        FD_MEMFD,
        FD_MEMFD_TOO_LARGE,
        FD_PIPE,
        FD_STREAM_CONNECTED,
        FD_DGRAM,
        FD_STREAM_UNCONNECTED,
        FD_DEVNULL,
        FD_DIRECTORY,
        _FD_POOL_MAX,
};

static int fd_pool[_FD_POOL_MAX];

static void fd_pool_init(void) {
        static bool done;
        int p[2], sv[2];

        if (done)
                return;
        done = true;

        fd_pool[FD_MEMFD] = memfd_create("psk", MFD_CLOEXEC);
        FUZZ_CHECK(fd_pool[FD_MEMFD] >= 0);
        FUZZ_CHECK(write(fd_pool[FD_MEMFD], "alice:0123456789abcdef\n", 23) == 23);

        /* Sparse: one byte over the limit costs nothing. */
        fd_pool[FD_MEMFD_TOO_LARGE] = memfd_create("big", MFD_CLOEXEC);
        FUZZ_CHECK(fd_pool[FD_MEMFD_TOO_LARGE] >= 0);
        FUZZ_CHECK(ftruncate(fd_pool[FD_MEMFD_TOO_LARGE], CREDENTIAL_MAX_SIZE + 1) == 0);

        FUZZ_CHECK(pipe2(p, O_CLOEXEC) == 0);
        fd_pool[FD_PIPE] = p[0];        /* p[1] stays open: a pipe nobody writes */

        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        fd_pool[FD_STREAM_CONNECTED] = sv[0];
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
        fd_pool[FD_DGRAM] = sv[0];
        fd_pool[FD_STREAM_UNCONNECTED] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(fd_pool[FD_STREAM_UNCONNECTED] >= 0);

        fd_pool[FD_DEVNULL] = open("/dev/null", O_RDWR | O_CLOEXEC);
        FUZZ_CHECK(fd_pool[FD_DEVNULL] >= 0);
        fd_pool[FD_DIRECTORY] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(fd_pool[FD_DIRECTORY] >= 0);
}

/* sd-bus builds messages only for a bus that has started; one on a
 * socketpair, never authenticated, will do. */
static sd_bus *fuzz_bus(void) {
        static sd_bus *bus;
        int sv[2];

        if (bus)
                return bus;
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        FUZZ_CHECK(sd_bus_new(&bus) >= 0);
        FUZZ_CHECK(sd_bus_set_fd(bus, sv[0], sv[0]) >= 0);
        FUZZ_CHECK(sd_bus_negotiate_fds(bus, true) >= 0);
        FUZZ_CHECK(sd_bus_start(bus) >= 0);
        /* sv[1] stays open so that the bus never sees a hang-up. */
        return bus;
}

/* The lowest free descriptor number: a leaked descriptor takes it. */
static int lowest_free_fd(void) {
        int fd = fcntl(fd_pool[FD_DEVNULL], F_DUPFD_CLOEXEC, 0);

        FUZZ_CHECK(fd >= 0);
        close(fd);
        return fd;
}

static const struct {
        const char *key;
        char type;
} keys[] = {
        { "port", 'q' }, { "tls", 's' }, { "tls-hostname", 's' }, { "tls-ca", 'h' },
        { "tls-cert", 'h' }, { "tls-key", 'h' }, { "tls-psk", 'h' }, { "tls-username", 's' },
        { "timeout", 'u' }, { "socket", 'h' }, { "read-only", 'b' }, { "connections", 'u' },
        { "block-size", 'u' }, { "persist", 'b' },
};

static const char *const tls_values[] = { "off", "on", "require", "On", "" };

static int append_value(sd_bus_message *m, const char *key, char type, Input *in) {
        char s[32];
        int r;

        switch (type) {
        case 'q': {
                uint16_t v = (uint16_t) take_bytes(in, 2);
                return sd_bus_message_append(m, "v", "q", v);
        }
        case 'u': {
                uint32_t v = (uint32_t) take_bytes(in, 4);
                return sd_bus_message_append(m, "v", "u", v);
        }
        case 'b':
                return sd_bus_message_append(m, "v", "b", (int) (take_byte(in) & 1));
        case 'h':
                return sd_bus_message_append(m, "v", "h", fd_pool[take_byte(in) % _FD_POOL_MAX]);
        case 's': {
                uint8_t b = take_byte(in);

                /* "tls" mostly gets one of its words, or the fuzzer would
                 * rarely reach past the check of its value. */
                if (strcmp(key, "tls") == 0 && b < 0xc0)
                        return sd_bus_message_append(m, "v", "s", tls_values[b % ELEMENTSOF(tls_values)]);
                take_string(in, s);
                if (b & 1) {
                        /* Long strings for the length limits. */
                        size_t n = 200 + (b >> 1);
                        _cleanup_free_ char *longer = malloc(n + 1);

                        if (!longer)
                                return -ENOMEM;
                        memset(longer, s[0] ?: 'a', n);
                        longer[n] = 0;
                        return sd_bus_message_append(m, "v", "s", longer);
                }
                return sd_bus_message_append(m, "v", "s", s);
        }
        case 'y':
                return sd_bus_message_append(m, "v", "y", take_byte(in));
        case 'i':
                return sd_bus_message_append(m, "v", "i", (int32_t) take_bytes(in, 4));
        case 't':
                return sd_bus_message_append(m, "v", "t", take_bytes(in, 8));
        case 'a':
                return sd_bus_message_append(m, "v", "as", 1, "x");
        case 'v':
                return sd_bus_message_append(m, "v", "v", "s", "x");
        case '(':
                r = sd_bus_message_append(m, "v", "(su)", "x", (uint32_t) take_bytes(in, 4));
                return r;
        default:
                return -EINVAL;
        }
}

static int build(sd_bus_message *m, Input *in) {
        static const char other_types[] = "qsuhbyita(v";
        uint8_t shape = take_byte(in);
        int r;

        switch (shape % 8) {
        case 0:
                return 0;       /* no options argument at all */
        case 1:
                return sd_bus_message_append(m, "a{ss}", 1, "port", "10809");
        case 2:
                return sd_bus_message_append(m, "s", "port");
        default:
                break;
        }

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (unsigned n = 0; in->left > 0 && n < MAX_ENTRIES; n++) {
                uint8_t k = take_byte(in), t = take_byte(in);
                char unknown[32];
                const char *key;
                char type;

                if (k % 16 < ELEMENTSOF(keys)) {
                        key = keys[k % 16].key;
                        type = keys[k % 16].type;
                } else {
                        take_string(in, unknown);
                        key = unknown;
                        type = 's';
                }
                if (t & 0x80)
                        type = other_types[t % (sizeof(other_types) - 1)];

                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_basic(m, 's', key);
                if (r < 0)
                        return r;
                r = append_value(m, key, type, in);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static void check_parsed(const AttachOptions *o, OptionSet set) {
        FUZZ_CHECK(o->tls == TLS_MODE_OFF || o->tls == TLS_MODE_ON || o->tls == TLS_MODE_REQUIRE);
        FUZZ_CHECK(o->timeout_sec >= 1 && o->timeout_sec <= ATTACH_MAX_TIMEOUT_SEC);
        FUZZ_CHECK(o->connections >= 1 && o->connections <= ATTACH_MAX_CONNECTIONS);
        FUZZ_CHECK(o->block_size == 0 ||
                   (o->block_size >= 512 && o->block_size <= 4096 && (o->block_size & (o->block_size - 1)) == 0));
        FUZZ_CHECK(!o->tls_hostname || strlen(o->tls_hostname) <= NBD_MAX_HOST);
        FUZZ_CHECK(!o->tls_username || strlen(o->tls_username) <= NBD_MAX_HOST);
        FUZZ_CHECK((o->tls_cert_fd >= 0) == (o->tls_key_fd >= 0));
        FUZZ_CHECK(o->socket_fd < 0 || o->connections == 1);

        /* Credentials are regular files within the limit; the socket is a
         * connected stream socket. */
        const int creds[] = { o->tls_ca_fd, o->tls_cert_fd, o->tls_key_fd, o->tls_psk_fd };
        for (size_t i = 0; i < ELEMENTSOF(creds); i++) {
                struct stat st;

                if (creds[i] < 0)
                        continue;
                FUZZ_CHECK(fstat(creds[i], &st) == 0 && S_ISREG(st.st_mode));
                FUZZ_CHECK(st.st_size <= CREDENTIAL_MAX_SIZE);
                FUZZ_CHECK(fcntl(creds[i], F_GETFD) & FD_CLOEXEC);
        }
        if (o->socket_fd >= 0) {
                int type = 0;
                socklen_t sl = sizeof(type);

                FUZZ_CHECK(getsockopt(o->socket_fd, SOL_SOCKET, SO_TYPE, &type, &sl) == 0);
                FUZZ_CHECK(type == SOCK_STREAM);
                FUZZ_CHECK(fcntl(o->socket_fd, F_GETFD) & FD_CLOEXEC);
        }

        /* ListExports and Probe never take what only attaching uses. */
        if (set == OPTIONS_QUERY) {
                FUZZ_CHECK(o->connections == 1);
                FUZZ_CHECK(o->block_size == 0);
                FUZZ_CHECK(!o->read_only && !o->persist);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Input in = { data, size };
        Error error = {};
        AttachOptions o;
        OptionSet set;
        int before, r;

        fd_pool_init();
        (void) fuzz_bus();
        before = lowest_free_fd();

        set = take_byte(&in) & 1 ? OPTIONS_ATTACH : OPTIONS_QUERY;
        FUZZ_CHECK(sd_bus_message_new_method_call(fuzz_bus(), &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                  "org.nbdlink.NBD1.Manager", "AttachWithOptions") >= 0);
        if (build(m, &in) < 0)
                /* Only what sd-bus itself refuses to build, never sent. */
                return 0;
        FUZZ_CHECK(sd_bus_message_seal(m, 1, 0) >= 0);
        FUZZ_CHECK(sd_bus_message_rewind(m, true) >= 0);

        attach_options_init(&o, 0);
        error.message[0] = 0;
        r = attach_options_parse(m, set, &o, &error);
        if (r < 0)
                /* Every refusal tells the caller why. */
                FUZZ_CHECK(error.message[0] != 0);
        else
                check_parsed(&o, set);
        attach_options_done(&o);
        FUZZ_CHECK(o.tls_ca_fd < 0 && o.tls_cert_fd < 0 && o.tls_key_fd < 0 && o.tls_psk_fd < 0 && o.socket_fd < 0);

        m = sd_bus_message_unref(m);
        FUZZ_CHECK(lowest_free_fd() == before);
        return 0;
}
