/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starts tests/adversarial/evil-server on a loopback port chosen at run
 * time, reads back how each connection ended, and stops it whatever
 * happens (it also dies with the test through PR_SET_PDEATHSIG). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef struct EvilServer {
        pid_t pid;
        int out;                /* the server's stdout */
        uint16_t port;
} EvilServer;

/* 0, or negative errno. psk_hex may be NULL. */
int evil_server_start(EvilServer *s, const char *scenario, const char *psk_hex);
/* The next "verdict WORD" line's WORD, or NULL after timeout_ms. Free it. */
char *evil_server_verdict(EvilServer *s, int timeout_ms);
void evil_server_stop(EvilServer *s);
