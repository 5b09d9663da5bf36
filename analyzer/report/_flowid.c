/* The flow identifiers of a chunk of table rows in C: the deterministic uid and the Community ID v1
 * (analyzer/report/flowid.py says what each is; its Python functions are the reference, and
 * tests/test_flowid.py holds this module to them).
 *
 * Why in C. A flood makes every connection a distinct flow, and both ids of every row of the binds
 * and connections tables were a quarter of writing them: about 3 us a flow in Python (the key's
 * f-string, a hashlib object, the digest sliced, the text built, a Python string per id), most of
 * it interpreter work around the two hashes. Here a column of flows is read straight from its Arrow
 * buffers and the ids are written into the buffers of an Arrow string array: no Python object per
 * row. The hashes are OpenSSL's (libcrypto, which Python's hashlib itself uses), through the
 * low-level SHA1/SHA256 calls: the one-shot and EVP ones fetch the algorithm or allocate a context
 * per call, which costs more than hashing 40 bytes. A row whose flow is the row before's (the calls
 * of one connection come in runs) takes that row's id, not a hash of its own.
 *
 * A column comes as buffers: text as (offsets: int32 per row + 1, data: UTF-8 bytes, valid: a byte
 * per row), a number as (values: int64 per row, valid: a byte per row), and the transport as one
 * byte per row (1: ncadg_ip_udp, whose protocol is udp; any other transport is tcp). Missing values
 * are what Python's f-string makes of None ("None") for the uid, and no id for the Community ID.
 *
 * uids(udp, client_ip, client_port, server_ip, server_port, opened) -> (offsets, data): the uid of
 *   each row, "C" + base62 of the first 96 bits of SHA-256("proto|cip|cport|sip|sport|opened").
 * community_ids(udp, src_ip, src_port, dst_ip, dst_port) -> (offsets, data, validity): "1:" +
 *   base64 of SHA-1 over the seed (0), both addresses, the protocol, a zero byte and both ports,
 *   the smaller endpoint first; none (validity bit 0) for an address inet_pton does not read or a
 *   port missing or outside 0-65535.
 * Every output is int32 offsets and bytes, ready for pyarrow's StringArray.from_buffers.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Init and friends: the fast path, see above */
#include <Python.h>
#include <arpa/inet.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    Py_buffer offsets, data, valid; /* offsets unused (len 0) for a number column */
    const int32_t *off;
    const int64_t *num;
    const unsigned char *ok;
} Column;

static void release(Column *c) {
    if (c->offsets.obj)
        PyBuffer_Release(&c->offsets);
    if (c->data.obj)
        PyBuffer_Release(&c->data);
    if (c->valid.obj)
        PyBuffer_Release(&c->valid);
}

/* A text column (offsets, data, valid) of n rows; 0 and an exception when malformed. */
static int text_column(PyObject *arg, Py_ssize_t n, Column *c) {
    if (!PyArg_ParseTuple(arg, "y*y*y*", &c->offsets, &c->data, &c->valid))
        return 0;
    c->off = (const int32_t *)c->offsets.buf;
    c->ok = (const unsigned char *)c->valid.buf;
    if (c->offsets.len < (n + 1) * (Py_ssize_t)sizeof(int32_t) || c->valid.len < n) {
        PyErr_SetString(PyExc_ValueError, "a text column shorter than its rows");
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) /* every cell inside the data: never read past it */
        if (c->off[i] < 0 || c->off[i] > c->off[i + 1] || c->off[i + 1] > c->data.len) {
            PyErr_SetString(PyExc_ValueError, "a text column's offsets outside its data");
            return 0;
        }
    return 1;
}

/* A number column (values, valid) of n rows. */
static int number_column(PyObject *arg, Py_ssize_t n, Column *c) {
    if (!PyArg_ParseTuple(arg, "y*y*", &c->data, &c->valid))
        return 0;
    c->num = (const int64_t *)c->data.buf;
    c->ok = (const unsigned char *)c->valid.buf;
    if (c->data.len < n * (Py_ssize_t)sizeof(int64_t) || c->valid.len < n) {
        PyErr_SetString(PyExc_ValueError, "a number column shorter than its rows");
        return 0;
    }
    return 1;
}

/* An output buffer of offsets (n + 1 int32) and `width` bytes per row at most. */
typedef struct {
    PyObject *offsets, *data;
    int32_t *off;
    char *text;
    Py_ssize_t used;
} Output;

static int output(Output *o, Py_ssize_t n, Py_ssize_t width) {
    o->offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
    o->data = PyBytes_FromStringAndSize(NULL, n * width);
    if (!o->offsets || !o->data)
        return 0;
    o->off = (int32_t *)PyBytes_AS_STRING(o->offsets);
    o->text = PyBytes_AS_STRING(o->data);
    o->off[0] = 0;
    o->used = 0;
    return 1;
}

/* Releases what uids and community_ids hold at their end: the output's buffers (built has taken
 * its own references to them when it succeeded), the k input columns and the UDP flags. */
static void finish(Output *o, Column *cols, int k, Py_buffer *udp) {
    Py_XDECREF(o->offsets);
    Py_XDECREF(o->data);
    for (int j = 0; j < k; j++)
        release(&cols[j]);
    PyBuffer_Release(udp);
}

/* Appends bytes to the key; -1 when they do not fit in its room. */
static Py_ssize_t put(char *key, Py_ssize_t at, Py_ssize_t room, const char *bytes, Py_ssize_t len) {
    if (at < 0 || at + len > room)
        return -1;
    memcpy(key + at, bytes, (size_t)len);
    return at + len;
}

/* Appends a cell as the f-string writes it ("None" when missing): text as it is, a number in decimal. */
static Py_ssize_t put_cell(char *key, Py_ssize_t at, Py_ssize_t room, const Column *c, Py_ssize_t i, int text) {
    if (!c->ok[i])
        return put(key, at, room, "None", 4);
    if (text)
        return put(key, at, room, (const char *)c->data.buf + c->off[i], c->off[i + 1] - c->off[i]);
    char digits[24];
    int made = snprintf(digits, sizeof digits, "%lld", (long long)c->num[i]);
    return made < 0 ? -1 : put(key, at, room, digits, made);
}

/* Whether row i's cells in these columns (text ones at `texts`, a bit per column) are row i - 1's:
 * the calls of one connection come in runs, and a run's ids are its first row's (copied, not
 * hashed again). */
static int same_as_previous(const Column *cols, int n, unsigned texts, Py_ssize_t i) {
    for (int k = 0; k < n; k++) {
        const Column *c = &cols[k];
        if (c->ok[i] != c->ok[i - 1])
            return 0;
        if (!c->ok[i])
            continue;
        if (texts >> k & 1) {
            int32_t len = c->off[i + 1] - c->off[i];
            if (len != c->off[i] - c->off[i - 1] ||
                memcmp((const char *)c->data.buf + c->off[i], (const char *)c->data.buf + c->off[i - 1], (size_t)len))
                return 0;
        } else if (c->num[i] != c->num[i - 1])
            return 0;
    }
    return 1;
}

/* Row i's id is row i - 1's: its bytes copied (the output holds row i - 1's at its last offsets). */
static void repeat_previous(Output *o, Py_ssize_t i) {
    int32_t len = o->off[i] - o->off[i - 1];
    memcpy(o->text + o->used, o->text + o->off[i - 1], (size_t)len);
    o->used += len;
    o->off[i + 1] = (int32_t)o->used;
}

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define UID_WIDTH 18 /* "C" and at most 17 base62 digits of a 96-bit value */

/* "C" + base62 (no leading zeros; "0" for zero) of the first 12 bytes of digest, big-endian. */
static Py_ssize_t base62_uid(char *out, const unsigned char *digest) {
    unsigned __int128 value = 0;
    for (int k = 0; k < 12; k++)
        value = value << 8 | digest[k];
    char digits[UID_WIDTH];
    int n = 0;
    do {
        digits[n++] = BASE62[(int)(value % 62)];
        value /= 62;
    } while (value);
    out[0] = 'C';
    for (int k = 0; k < n; k++)
        out[1 + k] = digits[n - 1 - k];
    return 1 + n;
}

static PyObject *built(Output *o, PyObject *validity) {
    PyObject *data = o->data;
    if (_PyBytes_Resize(&data, o->used) < 0) {
        o->data = NULL;
        return NULL;
    }
    o->data = NULL;
    PyObject *made = validity ? PyTuple_Pack(3, o->offsets, data, validity) : PyTuple_Pack(2, o->offsets, data);
    Py_DECREF(data);
    return made;
}

/* The uid's key of row i, "proto|cip|cport|sip|sport|opened", into key (room bytes); its length,
 * or -1 when it does not fit. */
static Py_ssize_t flow_key(char *key, Py_ssize_t room, int udp, const Column *cols, Py_ssize_t i) {
    if (room < 4)
        return -1;
    memcpy(key, udp ? "udp|" : "tcp|", 4);
    Py_ssize_t at = 4;
    for (int k = 0; k < 5 && at >= 0; k++) {
        if (k) {
            if (at >= room)
                return -1;
            key[at++] = '|';
        }
        at = put_cell(key, at, room, &cols[k], i, k == 0 || k == 2);
    }
    return at;
}

static Py_ssize_t text_length(const Column *c, Py_ssize_t i) { return c->ok[i] ? c->off[i + 1] - c->off[i] : 4; }

static PyObject *uids(PyObject *self, PyObject *args) {
    Py_buffer udp;
    PyObject *a[5];
    if (!PyArg_ParseTuple(args, "y*OOOOO", &udp, &a[0], &a[1], &a[2], &a[3], &a[4]))
        return NULL;
    Py_ssize_t n = udp.len;
    Column cols[5] = {0};
    Output o = {0};
    PyObject *result = NULL;
    int ok = text_column(a[0], n, &cols[0]) && number_column(a[1], n, &cols[1]) &&
             text_column(a[2], n, &cols[2]) && number_column(a[3], n, &cols[3]) &&
             number_column(a[4], n, &cols[4]) && output(&o, n, UID_WIDTH);
    const unsigned char *is_udp = (const unsigned char *)udp.buf;
    char small[256];
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        /* room: "proto|", both addresses, four separators, three numbers of at most 20 characters */
        if (i && is_udp[i] == is_udp[i - 1] && same_as_previous(cols, 5, 0x5, i)) {
            repeat_previous(&o, i);
            continue;
        }
        Py_ssize_t room = 4 + 4 + 3 * 20 + text_length(&cols[0], i) + text_length(&cols[2], i) + 1;
        char *key = room <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)room);
        if (!key) {
            PyErr_NoMemory();
            ok = 0;
            break;
        }
        Py_ssize_t len = flow_key(key, room, is_udp[i], cols, i);
        if (len >= 0) {
            unsigned char digest[SHA256_DIGEST_LENGTH];
            SHA256_CTX ctx;
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, key, (size_t)len);
            SHA256_Final(digest, &ctx);
            o.used += base62_uid(o.text + o.used, digest);
            o.off[i + 1] = (int32_t)o.used;
        } else {
            PyErr_SetString(PyExc_ValueError, "a flow key longer than its room");
            ok = 0;
        }
        if (key != small)
            PyMem_Free(key);
    }
    if (ok)
        result = built(&o, NULL);
    finish(&o, cols, 5, &udp);
    return result;
}

/* An address as inet_pton reads it (IPv4, else IPv6), as Python's socket.inet_pton does; its
 * length (4 or 16), or 0: missing, holding a NUL (Python refuses those), or not an address. */
static int packed(const Column *c, Py_ssize_t i, unsigned char *out) {
    if (!c->ok[i])
        return 0;
    Py_ssize_t len = c->off[i + 1] - c->off[i];
    const char *text = (const char *)c->data.buf + c->off[i];
    char copy[64];
    if (len >= (Py_ssize_t)sizeof copy || memchr(text, 0, (size_t)len))
        return 0; /* longer than any address text */
    memcpy(copy, text, (size_t)len);
    copy[len] = 0;
    if (inet_pton(AF_INET, copy, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, copy, out) == 1)
        return 16;
    return 0;
}

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#define COMMUNITY_WIDTH 30 /* "1:" and the 28 base64 characters of a 20-byte digest */

static void base64_digest(char *out, const unsigned char *d) {
    int at = 0;
    for (int k = 0; k < 18; k += 3) {
        uint32_t v = (uint32_t)d[k] << 16 | (uint32_t)d[k + 1] << 8 | d[k + 2];
        out[at++] = BASE64[v >> 18 & 63];
        out[at++] = BASE64[v >> 12 & 63];
        out[at++] = BASE64[v >> 6 & 63];
        out[at++] = BASE64[v & 63];
    }
    uint32_t v = (uint32_t)d[18] << 16 | (uint32_t)d[19] << 8;
    out[at++] = BASE64[v >> 18 & 63];
    out[at++] = BASE64[v >> 12 & 63];
    out[at++] = BASE64[v >> 6 & 63];
    out[at] = '=';
}

/* The Community ID of row i into out (COMMUNITY_WIDTH bytes); 0 when the row has none. */
static int community(const Column *cols, int udp, Py_ssize_t i, char *out) {
    unsigned char src[16], dst[16];
    int slen = packed(&cols[0], i, src), dlen = packed(&cols[2], i, dst);
    if (!slen || !dlen || !cols[1].ok[i] || !cols[3].ok[i])
        return 0;
    int64_t sport = cols[1].num[i], dport = cols[3].num[i];
    if (sport < 0 || sport > 65535 || dport < 0 || dport > 65535)
        return 0;
    int order = memcmp(dst, src, (size_t)(slen < dlen ? slen : dlen));
    if (order == 0)
        order = dlen - slen; /* Python's bytes order: a prefix first */
    unsigned char data[2 + 32 + 2 + 4];
    size_t at = 0;
    int swap = order < 0 || (order == 0 && dport < sport);
    const unsigned char *first = swap ? dst : src, *second = swap ? src : dst;
    int flen = swap ? dlen : slen, second_len = swap ? slen : dlen;
    int64_t p1 = swap ? dport : sport, p2 = swap ? sport : dport;
    data[at++] = 0; /* the seed, 0 */
    data[at++] = 0;
    memcpy(data + at, first, (size_t)flen);
    at += (size_t)flen;
    memcpy(data + at, second, (size_t)second_len);
    at += (size_t)second_len;
    data[at++] = udp ? 17 : 6;
    data[at++] = 0;
    data[at++] = (unsigned char)(p1 >> 8);
    data[at++] = (unsigned char)p1;
    data[at++] = (unsigned char)(p2 >> 8);
    data[at++] = (unsigned char)p2;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA_CTX ctx;
    SHA1_Init(&ctx);
    SHA1_Update(&ctx, data, at);
    SHA1_Final(digest, &ctx);
    out[0] = '1';
    out[1] = ':';
    base64_digest(out + 2, digest);
    return 1;
}

static PyObject *community_ids(PyObject *self, PyObject *args) {
    Py_buffer udp;
    PyObject *a[4];
    if (!PyArg_ParseTuple(args, "y*OOOO", &udp, &a[0], &a[1], &a[2], &a[3]))
        return NULL;
    Py_ssize_t n = udp.len;
    Column cols[4] = {0};
    Output o = {0};
    PyObject *validity = NULL, *result = NULL;
    int ok = text_column(a[0], n, &cols[0]) && number_column(a[1], n, &cols[1]) &&
             text_column(a[2], n, &cols[2]) && number_column(a[3], n, &cols[3]) &&
             output(&o, n, COMMUNITY_WIDTH) && (validity = PyBytes_FromStringAndSize(NULL, (n + 7) / 8)) != NULL;
    if (ok) {
        const unsigned char *is_udp = (const unsigned char *)udp.buf;
        unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(validity);
        memset(bits, 0, (size_t)((n + 7) / 8));
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i && is_udp[i] == is_udp[i - 1] && same_as_previous(cols, 4, 0x5, i)) {
                repeat_previous(&o, i); /* a row with no id repeats no bytes, and its bit stays 0 */
                if (bits[(i - 1) >> 3] >> ((i - 1) & 7) & 1)
                    bits[i >> 3] |= (unsigned char)(1u << (i & 7));
                continue;
            }
            if (community(cols, is_udp[i], i, o.text + o.used)) {
                o.used += COMMUNITY_WIDTH;
                bits[i >> 3] |= (unsigned char)(1u << (i & 7));
            }
            o.off[i + 1] = (int32_t)o.used;
        }
        result = built(&o, validity);
    }
    Py_XDECREF(validity);
    finish(&o, cols, 4, &udp);
    return result;
}

static PyMethodDef methods[] = {
    {"uids", uids, METH_VARARGS, "uids(udp, client_ip, client_port, server_ip, server_port, opened) -> (offsets, data)."},
    {"community_ids", community_ids, METH_VARARGS,
     "community_ids(udp, src_ip, src_port, dst_ip, dst_port) -> (offsets, data, validity)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_flowid", "Flow identifiers of table rows in C.", -1, methods};

PyMODINIT_FUNC PyInit__flowid(void) { return PyModule_Create(&module); }
