#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes the seed corpora of the argument parsers' fuzz targets (uri, host,
# options, psk): one file per form and per error each parser knows. The
# input formats are described at the top of each fuzz-*.c.
import os
import struct
import sys

uri = {
    'host': b'example.com',
    'host-port': b'example.com:10810',
    'ipv4-port': b'127.0.0.1:10809',
    'ipv6-bare': b'::1',
    'ipv6-port': b'[fe80::1%eth0]:10809',
    'unix': b'unix:/run/nbd.sock',
    'uri': b'nbd://example.com/disk',
    'uri-port': b'nbd://user@127.0.0.1:10810/a%20b',
    'uri-ipv6-zone': b'nbds://[fe80::1%25eth0]:10809/disk?tls-hostname=server.example',
    'uri-unix': b'nbd+unix:///disk?socket=/run/nbd.sock',
    'uri-unix-abstract': b'nbds+unix:///?socket=%00nbd&tls-type=psk&tls-psk-file=/etc/k.psk',
    'uri-query': b'nbds://h/e?tls-type=x509&tls-verify-peer=1&tls-certificates=/etc/pki',
    'uri-bad-pct': b'nbd://h/%zz',
    'uri-fragment': b'nbd://h/x#frag',
    'uri-password': b'nbd://u:pw@h/',
    'uri-bad-scheme': b'http://h/',
    'uri-empty-port': b'nbd://h:/',
    'uri-utf8': b'nbd://h/%C3%A9t%C3%A9',
    'target-slash': b'h/disk',
    'target-bad-port': b'h:0',
}

# host: flags byte (bit 0 root, bit 1 a port follows), then the string
ROOT, PORT = 1, 2
host = {
    'name': bytes([0]) + b'server.example',
    'name-port': bytes([0]) + b'server:10810',
    'name-override': bytes([PORT]) + struct.pack('>H', 10811) + b'server:10810',
    'ipv6': bytes([0]) + b'[::1]:10809',
    'ipv6-zone': bytes([0]) + b'fe80::1%eth0',
    'unix-root': bytes([ROOT]) + b'unix:/run/nbd.sock',
    'unix-user': bytes([0]) + b'unix:/run/nbd.sock',
    'unix-relative': bytes([ROOT]) + b'unix:nbd.sock',
    'control': bytes([0]) + b'a\x1bb',
    'bracket': bytes([0]) + b'a]b',
    'device': bytes([0]) + b'/dev/nbd15',
    'device-short': bytes([0]) + b'nbd0',
    'device-zero': bytes([0]) + b'nbd01',
    'empty': bytes([0]),
    'long': bytes([0]) + b'a' * 300,
}

# options: byte 0 bit 0 attach (else query); byte 1 the shape (3: a{sv});
# then entries: key byte (0-13 the known keys in fuzz-options.c's order,
# 14/15 a string key: length byte, bytes), type byte (bit 7: another type),
# value bytes.
K = {k: i for i, k in enumerate(['port', 'tls', 'tls-hostname', 'tls-ca', 'tls-cert', 'tls-key',
                                 'tls-psk', 'tls-username', 'timeout', 'socket', 'read-only',
                                 'connections', 'block-size', 'persist'])}
FD_MEMFD, FD_BIG, FD_PIPE, FD_STREAM, FD_DGRAM, FD_UNCONNECTED, FD_NULL, FD_DIR = range(8)


def entry(key, value=b'', typ=0):
    return bytes([K[key], typ]) + value


def opts(attach, *entries):
    return bytes([1 if attach else 0, 3]) + b''.join(entries)


def s(text):
    return bytes([0x02, len(text)]) + text


options = {
    'empty': opts(True),
    'no-argument': bytes([1, 0]),
    'wrong-dict': bytes([1, 1]),
    'wrong-type': bytes([1, 2]),
    'all-attach': opts(True, entry('port', struct.pack('>H', 10810)),
                       entry('tls', bytes([2])),
                       entry('tls-hostname', s(b'server')),
                       entry('tls-username', s(b'alice')),
                       entry('tls-psk', bytes([FD_MEMFD])),
                       entry('tls-ca', bytes([FD_MEMFD])),
                       entry('tls-cert', bytes([FD_MEMFD])),
                       entry('tls-key', bytes([FD_MEMFD])),
                       entry('timeout', struct.pack('>I', 10)),
                       entry('read-only', bytes([1])),
                       entry('connections', struct.pack('>I', 4)),
                       entry('block-size', struct.pack('>I', 4096)),
                       entry('persist', bytes([1]))),
    'query-socket': opts(False, entry('socket', bytes([FD_STREAM])), entry('timeout', struct.pack('>I', 5))),
    'query-attach-key': opts(False, entry('read-only', bytes([1]))),
    'socket-connections': opts(True, entry('socket', bytes([FD_STREAM])),
                               entry('connections', struct.pack('>I', 2))),
    'bad-socket': opts(True, entry('socket', bytes([FD_DGRAM]))),
    'unconnected-socket': opts(True, entry('socket', bytes([FD_UNCONNECTED]))),
    'pipe-credential': opts(True, entry('tls-ca', bytes([FD_PIPE]))),
    'big-credential': opts(True, entry('tls-psk', bytes([FD_BIG]))),
    'key-without-cert': opts(True, entry('tls-key', bytes([FD_MEMFD]))),
    'bad-port': opts(True, entry('port', b'\0\0')),
    'bad-timeout': opts(True, entry('timeout', struct.pack('>I', 0))),
    'bad-block-size': opts(True, entry('block-size', struct.pack('>I', 1000))),
    'bad-tls': opts(True, entry('tls', bytes([0xc0, 3]) + b'yes')),
    'long-hostname': opts(True, entry('tls-hostname', bytes([0xff, 1]) + b'h')),
    'unknown-key': opts(True, bytes([14, 0, 6]) + b'colour' + s(b'red')),
    'wrong-variant': opts(True, bytes([K['port'], 0x85]) + s(b'10809')),
    'duplicate-socket': opts(False, entry('socket', bytes([FD_STREAM])), entry('socket', bytes([FD_STREAM]))),
}

psk = {
    'first': b'\0' + b'alice:0123456789abcdef0123456789abcdef\n',
    'named': b'\1bob\0' + b'alice:00112233\nbob:aabbccdd\r\n',
    'missing-user': b'\1carol\0' + b'alice:00112233\n',
    'no-colon': b'\0' + b'alice\n',
    'odd-key': b'\0' + b'alice:abc\n',
    'not-hex': b'\0' + b'alice:zz\n',
    'empty-lines': b'\0' + b'\n\n\r\nalice:00\n',
    'long-user': b'\0' + b'u' * 300 + b':00\n',
    'long-key': b'\0' + b'alice:' + b'0' * 2048 + b'\n',
    'no-newline': b'\0' + b'alice:0011',
}

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
for target, seeds in (('uri', uri), ('host', host), ('options', options), ('psk', psk)):
    out = os.path.join(root, target)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(data)
