/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The misbehaving servers nbdlink is tested against, and what must come of
 * each: for every goal (attach, Probe, ListExports) the errno, the phase of
 * the message and a piece of its text, the bus error name docs/errors.md's table
 * gives, and how the client must take its leave. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"

typedef enum AdvGoal {
        ADV_GO,                 /* HANDSHAKE_GO: Attach */
        ADV_INFO,               /* HANDSHAKE_INFO: Probe */
        ADV_LIST,               /* HANDSHAKE_LIST: ListExports */
        _ADV_GOAL_MAX,
} AdvGoal;

typedef struct AdvExpect {
        bool on;                /* this goal is exercised */
        int error;              /* negative errno; 0: the handshake succeeds */
        const char *prefix;     /* phase of the message: "handshake: ", "tls: " */
        const char *needle;     /* text the message must contain */
        const char *unwanted;   /* text it must not contain, or NULL */
        const char *verdict;    /* how the client must leave (see evil-server.c), NULL: any */

        /* On success: what the results must say (checked when set). */
        bool check_size;
        uint64_t size;
        const char *description;
        int n_exports;          /* -1: not checked */
        int flags;              /* -1: not checked */
} AdvExpect;

typedef struct AdvCase {
        const char *name;       /* test name */
        const char *server;     /* evil-server --scenario */
        TlsMode tls;
        bool slow;              /* ends only at the deadline */
        AdvExpect expect[_ADV_GOAL_MAX];
} AdvCase;

extern const AdvCase adv_cases[];
extern const size_t adv_n_cases;

/* The test's own reading of docs/errors.md's error table: errno → bus error
 * name, so the daemon's mapping is checked against the contract rather
 * than against itself. */
const char *adv_bus_error_name(int error);
const char *adv_goal_to_string(AdvGoal g);
HandshakeGoal adv_goal_to_handshake(AdvGoal g);

/* A fixed PSK shared by the test and evil-server --psk. */
#define ADV_PSK_USER "nbdlink"
#define ADV_PSK_HEX  "4ad9ae5b8b4d2f6e0c1f7a3e9b2d5c8f1e4a7b0c3d6e9f2a5b8c1d4e7f0a3b6c"
