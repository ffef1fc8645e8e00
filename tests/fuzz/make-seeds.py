#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes the seed corpus of fuzz-handshake: one file per branch of the
# handshake. The first byte selects goal and TLS mode (see
# fuzz-handshake.c); the rest is what the server sends.
import os
import struct
import sys

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454f5054
OLDSTYLE = 0x0000420281861253
REPMAGIC = 0x0003e889045565a9

GO, INFO, LIST, EXPORT_NAME, STARTTLS, ABORT = 7, 6, 3, 1, 5, 2
ACK, SERVER, REP_INFO = 1, 2, 3
ERR = 1 << 31

# first byte: bits 0-1 goal (0 INFO, 1 LIST, 2/3 GO), bits 2-3 TLS mode
# (0 off, 1 on, 2 require), bit 7 default export name
G_GO, G_INFO, G_LIST = 2, 0, 1
TLS_ON, TLS_REQUIRE = 1 << 2, 2 << 2


def greeting(flags=3):
    return struct.pack('>QQH', NBDMAGIC, IHAVEOPT, flags)


def reply(opt, typ, payload=b''):
    return struct.pack('>QIII', REPMAGIC, opt, typ, len(payload)) + payload


def info_export(opt, size=1 << 30, flags=0x0005):
    return reply(opt, REP_INFO, struct.pack('>HQH', 0, size, flags))


def info_block(opt, mn=512, pref=4096, mx=32 << 20):
    return reply(opt, REP_INFO, struct.pack('>HIII', 3, mn, pref, mx))


def info_str(opt, typ, s):
    return reply(opt, REP_INFO, struct.pack('>H', typ) + s)


def server(name, desc=b''):
    return reply(LIST, SERVER, struct.pack('>I', len(name)) + name + desc)


seeds = {
    'go-ok': bytes([G_GO]) + greeting() + info_str(GO, 1, b'disk') +
        info_str(GO, 2, b'a disk') + info_block(GO) +
        reply(GO, REP_INFO, b'\x00\x63junk') + info_export(GO) + reply(GO, ACK),
    'go-unsup-no-zeroes': bytes([G_GO]) + greeting() + reply(GO, ERR | 1, b'no') +
        struct.pack('>QH', 1 << 20, 1),
    'go-unsup-zeroes': bytes([G_GO]) + greeting(1) + reply(GO, ERR | 1) +
        struct.pack('>QH', 1 << 20, 1) + bytes(124),
    'go-error-unknown': bytes([G_GO]) + greeting() + reply(GO, ERR | 6, b'no such export') + reply(ABORT, ACK),
    'go-error-shutdown': bytes([G_GO]) + greeting() + reply(GO, ERR | 7, b'bye'),
    'go-error-huge': bytes([G_GO]) + greeting() + struct.pack('>QIII', REPMAGIC, GO, ERR | 2, 0xffffffff),
    'go-bad-block-size': bytes([G_GO]) + greeting() + info_block(GO, 3, 4096, 65536),
    'non-fixed': bytes([G_GO]) + greeting(0) + struct.pack('>QH', 4096, 3) + bytes(124),
    'oldstyle': bytes([G_GO]) + struct.pack('>QQQI', NBDMAGIC, OLDSTYLE, 1 << 30, 3) + bytes(124),
    'oldstyle-probe': bytes([G_INFO]) + struct.pack('>QQQI', NBDMAGIC, OLDSTYLE, 1 << 30, 1) + bytes(124),
    'info-ok': bytes([G_INFO]) + greeting() + info_export(INFO) + info_str(INFO, 2, b'desc') +
        reply(INFO, ACK) + reply(ABORT, ACK),
    'info-fallback': bytes([G_INFO | 0x80]) + greeting() + reply(INFO, ERR | 1) + struct.pack('>QH', 512, 1),
    'list-ok': bytes([G_LIST]) + greeting() + server(b'') + server(b'a', b'first') +
        server(b'b\xc3\xa9') + reply(LIST, ACK) + reply(ABORT, ACK),
    'list-non-fixed': bytes([G_LIST]) + greeting(0) + server(b'x') + reply(LIST, ACK),
    'list-unsup': bytes([G_LIST]) + greeting() + reply(LIST, ERR | 1, b'nope'),
    'list-bad-entry': bytes([G_LIST]) + greeting() + reply(LIST, SERVER, struct.pack('>I', 99) + b'ab'),
    'tls-on-refused': bytes([G_GO | TLS_ON]) + greeting() + reply(STARTTLS, ERR | 1) +
        info_export(GO) + reply(GO, ACK),
    'tls-on-ack': bytes([G_GO | TLS_ON]) + greeting() + reply(STARTTLS, ACK) + b'\x16\x03\x03',
    'tls-require-refused': bytes([G_GO | TLS_REQUIRE]) + greeting() + reply(STARTTLS, ERR | 2, b'policy'),
    'tls-require-oldstyle': bytes([G_GO | TLS_REQUIRE]) + struct.pack('>QQ', NBDMAGIC, OLDSTYLE),
    'bad-magic': bytes([G_GO]) + struct.pack('>QQ', NBDMAGIC ^ 1, IHAVEOPT),
    'wrong-echo': bytes([G_GO]) + greeting() + reply(INFO, ACK),
    'empty': bytes([G_GO]),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'handshake')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(data)
