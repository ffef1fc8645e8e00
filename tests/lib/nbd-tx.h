/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tiny NBD transmission-phase client for tests, playing the kernel's
 * part on a plaintext socket: 28-byte requests, 16-byte simple replies,
 * READ, WRITE, FLUSH and DISC. Blocking I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NBD_TX_CMD_READ  0
#define NBD_TX_CMD_WRITE 1
#define NBD_TX_CMD_DISC  2
#define NBD_TX_CMD_FLUSH 3

/* Sends one request (and the payload of a WRITE). 0 or negative errno. */
int nbd_tx_send_request(int fd, uint16_t type, uint64_t handle, uint64_t offset, uint32_t length, const void *payload);
/* Receives one simple reply; for a READ that succeeded, reads len bytes of
 * data into buf. Returns the reply's NBD error (0 for success, positive),
 * -EPROTO for a bad magic, -EPIPE at end-of-file, other negative errno. */
int nbd_tx_recv_reply(int fd, uint64_t *ret_handle, void *buf, size_t len);

/* One request and its reply: 0, the server's NBD error (positive), or
 * negative errno. */
int nbd_tx_read(int fd, uint64_t offset, void *buf, uint32_t len);
int nbd_tx_write(int fd, uint64_t offset, const void *buf, uint32_t len);
int nbd_tx_flush(int fd);
/* NBD_CMD_DISC has no reply. */
int nbd_tx_disc(int fd);

/* Writes patterns of several sizes (one larger than the relay's buffers)
 * at offsets below disk_size, reads each back and compares, then
 * flushes; asserts (GLib) on any difference. */
void nbd_tx_exercise(int fd, uint64_t disk_size);
void nbd_tx_fill_pattern(uint8_t *buf, size_t n, unsigned seed);

/* Reads until end-of-file: 0 when it came within timeout_ms with no data
 * on the way, -ETIMEDOUT, -EPROTO if data arrived, or negative errno. */
int nbd_tx_wait_eof(int fd, int timeout_ms);
