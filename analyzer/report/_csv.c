/* CSV rows of a piece of a table in C: its columns' cells joined into the text of its rows, the
 * bytes analyzer/report/csv_rows.py makes with Arrow compute (which stays the fallback, and which
 * tests/test_csv_rows.py holds this module to, as both to the csv module's bytes).
 *
 * Why in C. Made with Arrow compute, a piece of 4,096 rows costs about 50 ns a cell in kernels
 * (an integer cast to text, a time as three lookups joined, every column's missing filled, then the
 * rows joined), plus a Python string per row: 2.5 us a row of the binds and connections tables,
 * a third of writing a flood's. Here numbers and times are formatted straight into the output, and
 * text cells (already quoted and neutralised by csv_rows, which decides what needs it) are copied.
 *
 * rows(columns, n, sep, end) -> bytes: n rows, each its cells joined by sep and ended by end (both
 * UTF-8). A column is a tuple, its first item its kind:
 *   ("text", offsets: int32 per row + 1, data: UTF-8 bytes, valid: a byte per row)
 *   ("large_text", offsets: int64 per row + 1, data, valid)   (Arrow's large_string, as pandas holds text)
 *   either with a fifth item, a one-byte separator: its cells quoted here as RFC 4180 and the csv
 *   module quote them (a cell holding that byte, a quote, a CR or an LF in quotes, its quotes doubled;
 *   csv_rows._quoted did it with four Arrow kernels on the column)
 *   ("int", values: int64 per row, valid)         decimal
 *   ("time", nanoseconds: int64 per row, valid)   YYYY-MM-DDTHH:MM:SS.ffffffZ, UTC, microseconds
 *                                                 truncated (as strftime's %f of a datetime)
 *   ("flag", values: a byte per row, valid)       True or False
 * A missing cell (valid 0) is empty.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { TEXT, INT, TIME, FLAG };

typedef struct {
    int kind;
    Py_buffer a, b, valid; /* text: offsets, data; numbers: values (b unused) */
    const int32_t *off;
    const int64_t *off64; /* large_text */
    const int64_t *num;
    const unsigned char *flag, *ok;
    int quote; /* text: the separator byte whose cells are quoted here (-1: none) */
} Column;

static void release(Column *c) {
    if (c->a.obj)
        PyBuffer_Release(&c->a);
    if (c->b.obj)
        PyBuffer_Release(&c->b);
    if (c->valid.obj)
        PyBuffer_Release(&c->valid);
}

/* Where cell i of a text column starts in its data (its end: where i + 1 starts). */
static inline int64_t start(const Column *c, Py_ssize_t i) { return c->off64 ? c->off64[i] : c->off[i]; }

static int parse(PyObject *spec, Py_ssize_t n, Column *c) {
    const char *kind;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "a column is a tuple (kind, buffers...)");
        return 0;
    }
    PyObject *name = PyTuple_GET_ITEM(spec, 0);
    if (!PyUnicode_Check(name) || !(kind = PyUnicode_AsUTF8(name)))
        return 0;
    int large = strcmp(kind, "large_text") == 0;
    if (large || strcmp(kind, "text") == 0) {
        c->kind = TEXT;
        c->quote = -1;
        if (!PyArg_ParseTuple(spec, "sy*y*y*|i", &kind, &c->a, &c->b, &c->valid, &c->quote))
            return 0;
        if (c->quote > 255) {
            PyErr_SetString(PyExc_ValueError, "a one-byte separator to quote by");
            return 0;
        }
        Py_ssize_t width = large ? (Py_ssize_t)sizeof(int64_t) : (Py_ssize_t)sizeof(int32_t);
        if (c->a.len < (n + 1) * width) {
            PyErr_SetString(PyExc_ValueError, "a text column shorter than its rows");
            return 0;
        }
        c->off = (const int32_t *)c->a.buf;
        c->off64 = large ? (const int64_t *)c->a.buf : NULL;
        for (Py_ssize_t i = 0; i < n; i++) /* every cell inside the data: never read past it */
            if (start(c, i) < 0 || start(c, i) > start(c, i + 1) || start(c, i + 1) > c->b.len) {
                PyErr_SetString(PyExc_ValueError, "a text column's offsets outside its data");
                return 0;
            }
    } else {
        c->kind = strcmp(kind, "int") == 0 ? INT : strcmp(kind, "time") == 0 ? TIME : strcmp(kind, "flag") == 0 ? FLAG : -1;
        if (c->kind < 0) {
            PyErr_Format(PyExc_ValueError, "no column kind %s", kind);
            return 0;
        }
        if (!PyArg_ParseTuple(spec, "sy*y*", &kind, &c->a, &c->valid))
            return 0;
        Py_ssize_t width = c->kind == FLAG ? 1 : (Py_ssize_t)sizeof(int64_t);
        if (c->a.len < n * width) {
            PyErr_SetString(PyExc_ValueError, "a column shorter than its rows");
            return 0;
        }
        c->num = (const int64_t *)c->a.buf;
        c->flag = (const unsigned char *)c->a.buf;
    }
    c->ok = (const unsigned char *)c->valid.buf;
    if (c->valid.len < n) {
        PyErr_SetString(PyExc_ValueError, "a validity shorter than its rows");
        return 0;
    }
    return 1;
}

/* Decimal digits of v (a leading '-' counted). */
static int int_width(int64_t v) {
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int w = v < 0 ? 2 : 1;
    while (u >= 10) {
        u /= 10;
        w++;
    }
    return w;
}

static char *put_int(char *out, int64_t v) {
    char digits[20];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *out++ = '-';
    while (n)
        *out++ = digits[--n];
    return out;
}

#define TIME_WIDTH 27 /* 2026-12-02T03:15:00.123456Z */

static inline int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static inline void two(char *out, int v) {
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

/* The civil date of a day count since 1970-01-01 (proleptic Gregorian, as Python's datetime):
 * Howard Hinnant's days_from_civil inverted (http://howardhinnant.github.io/date_algorithms.html). */
static void civil(int64_t days, int64_t *year, int *month, int *day) {
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

/* A time in nanoseconds as TIME_WIDTH characters; a year outside 0-9999 (not in datetime64[ns]'s
 * range, so never given) would be clamped to four digits. */
static char *put_time(char *out, int64_t ns) {
    int64_t seconds = floor_div(ns, 1000000000);
    int64_t us = floor_div(ns, 1000) - seconds * 1000000;
    int64_t days = floor_div(seconds, 86400), in_day = seconds - days * 86400;
    int64_t year;
    int month, day;
    civil(days, &year, &month, &day);
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    two(out, (int)(year / 100));
    two(out + 2, (int)(year % 100));
    out[4] = '-';
    two(out + 5, month);
    out[7] = '-';
    two(out + 8, day);
    out[10] = 'T';
    two(out + 11, (int)(in_day / 3600));
    out[13] = ':';
    two(out + 14, (int)(in_day / 60 % 60));
    out[16] = ':';
    two(out + 17, (int)(in_day % 60));
    out[19] = '.';
    for (int k = 25; k >= 20; k--) {
        out[k] = (char)('0' + us % 10);
        us /= 10;
    }
    out[26] = 'Z';
    return out + TIME_WIDTH;
}

/* How many quotes a text cell holds, or -1 when it needs no quoting (see the module comment). */
static Py_ssize_t quotes_in(const Column *c, Py_ssize_t i) {
    const unsigned char *p = (const unsigned char *)c->b.buf + start(c, i), *end = (const unsigned char *)c->b.buf + start(c, i + 1);
    Py_ssize_t quotes = 0;
    int needs = 0;
    for (; p < end; p++) {
        if (*p == '"')
            quotes++;
        else if (*p == '\r' || *p == '\n' || *p == c->quote)
            needs = 1;
    }
    return needs || quotes ? quotes : -1;
}

static Py_ssize_t cell_width(const Column *c, Py_ssize_t i) {
    if (!c->ok[i])
        return 0;
    switch (c->kind) {
    case TEXT: {
        Py_ssize_t quotes = c->quote >= 0 ? quotes_in(c, i) : -1;
        return (Py_ssize_t)(start(c, i + 1) - start(c, i)) + (quotes >= 0 ? quotes + 2 : 0);
    }
    case INT:
        return int_width(c->num[i]);
    case TIME:
        return TIME_WIDTH;
    default:
        return c->flag[i] ? 4 : 5;
    }
}

static char *put_cell(char *out, const Column *c, Py_ssize_t i) {
    if (!c->ok[i])
        return out;
    switch (c->kind) {
    case TEXT: {
        Py_ssize_t len = (Py_ssize_t)(start(c, i + 1) - start(c, i));
        const char *cell = (const char *)c->b.buf + start(c, i);
        if (c->quote < 0 || quotes_in(c, i) < 0) {
            memcpy(out, cell, (size_t)len);
            return out + len;
        }
        *out++ = '"';
        for (Py_ssize_t k = 0; k < len; k++) {
            if (cell[k] == '"')
                *out++ = '"';
            *out++ = cell[k];
        }
        *out++ = '"';
        return out;
    }
    case INT:
        return put_int(out, c->num[i]);
    case TIME:
        return put_time(out, c->num[i]);
    default:
        memcpy(out, c->flag[i] ? "True" : "False", c->flag[i] ? 4 : 5);
        return out + (c->flag[i] ? 4 : 5);
    }
}

static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *specs;
    Py_ssize_t n, sep_len, end_len;
    const char *sep, *end;
    if (!PyArg_ParseTuple(args, "O!ny#y#", &PyList_Type, &specs, &n, &sep, &sep_len, &end, &end_len))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(specs);
    if (n < 0 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "rows of at least one column");
        return NULL;
    }
    Column *cols = PyMem_Calloc((size_t)k, sizeof(Column));
    if (!cols)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t made = 0;
    for (; made < k; made++)
        if (!parse(PyList_GET_ITEM(specs, made), n, &cols[made]))
            break;
    if (made == k) {
        /* the size first (every separator and line end, then every cell), then the text */
        Py_ssize_t total = n * ((k - 1) * sep_len + end_len);
        for (Py_ssize_t j = 0; j < k; j++)
            for (Py_ssize_t i = 0; i < n; i++)
                total += cell_width(&cols[j], i);
        result = PyBytes_FromStringAndSize(NULL, total);
        if (result) {
            char *out = PyBytes_AS_STRING(result);
            for (Py_ssize_t i = 0; i < n; i++) {
                for (Py_ssize_t j = 0; j < k; j++) {
                    if (j) {
                        memcpy(out, sep, (size_t)sep_len);
                        out += sep_len;
                    }
                    out = put_cell(out, &cols[j], i);
                }
                memcpy(out, end, (size_t)end_len);
                out += end_len;
            }
        }
    }
    for (Py_ssize_t j = 0; j < k; j++)
        release(&cols[j]);
    PyMem_Free(cols);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "rows(columns, n, sep, end) -> bytes: the CSV text of n rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_csv", "CSV rows of a table's piece in C.", -1, methods};

PyMODINIT_FUNC PyInit__csv(void) { return PyModule_Create(&module); }
