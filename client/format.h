/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Human output: sizes in IEC units and tables with aligned columns. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/macro.h"

#define FORMAT_SIZE_MAX 16

/* "512 B", "1 KiB", "1.5 GiB", "16 EiB": one decimal, dropped when it is
 * zero. Returns buf. */
char *format_size(char buf[static FORMAT_SIZE_MAX], uint64_t bytes);

/* "2024-05-01T12:34:56.789+02:00" and its NUL. */
#define FORMAT_TIMESTAMP_MAX 32

/* usec (microseconds since the epoch) as ISO 8601 local time with
 * milliseconds and the UTC offset, as journalctl -o short-iso-precise
 * writes it but to the millisecond. Returns buf, "" when the time cannot
 * be converted. */
char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t usec);

typedef struct Table Table;

/* A table with n columns whose headers are the n strings given. */
int table_new(Table **ret, size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Appends one cell (copied) to the row being filled; a new row starts
 * after every n_columns cells. NULL is shown as "-"; every cell,
 * headers too, is kept in the visible form of escape.h. */
int table_add(Table *t, const char *cell);
size_t table_rows(const Table *t);

/* Prints the header and rows, columns separated by two spaces, the last
 * column not padded. 0, or a negative errno. */
int table_print(const Table *t, FILE *f);
