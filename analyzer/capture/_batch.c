/* The per-record loops of the batched readers in C: the pcap record walk (and pcapng's run of
 * enhanced packet blocks), and the prefilter's fields. Both have a Python (numpy) twin used when this module is not built; tests hold the two
 * to the same answers. Also the DCE/RPC framer's run of repeated PDUs (co_run, at the end), with its
 * Python twin in analyzer/dcerpc/wire.py.
 *
 * The pcap record walk: where each record of a buffer starts.
 *
 * A pcap file is a chain of records, each a 16-byte header whose third 32-bit field (incl_len)
 * says how many bytes of frame follow (pcap-savefile(5)). Finding where records start is a
 * pointer chase no numpy call can do, and in Python it costs about 0.2 us a record (0.25 s of CPU
 * for the 1.27 million records of the 1.1 GB benchmark capture); here it costs a few
 * milliseconds. analyzer/capture/pcap.py keeps the same walk in Python for when this module is
 * not built; tests/test_prefilter.py checks that both give the same answer.
 *
 * walk(buf, little) -> (offsets, seconds, fractions, stop): offsets holds, as native int64 values,
 * the offset of every record that ends inside buf, in order, starting at offset 0; seconds and
 * fractions the first two fields of each one's header (its time), as int64 too; stop is where the
 * walk stopped (the end of the last whole record). The buffer is only read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Prefetching. The walks are pointer chases through a buffer the read just filled: each record's
 * header says where the next one is, and inside the pipeline (whose work between two reads evicts
 * the buffer's lines) each one was a cache miss, 0.15-0.18 s for the 1.27 million records of the
 * 1.1 GB capture. The records are dense, so the lines PREFETCH bytes ahead of the walk are asked for
 * as it goes: 0.09 s. `fields` likewise asks for the frame FIELDS_AHEAD on (0.07 -> 0.05 s). A
 * prefetch never faults and changes no result. */
#define PREFETCH 4096
#define FIELDS_AHEAD 8
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_LINE(addr) __builtin_prefetch(addr)
#else
#define PREFETCH_LINE(addr) ((void)0)
#endif

/* Ask for the lines of p[*ahead, min(until, end)) not asked for yet. */
static inline void prefetch_to(const unsigned char *p, Py_ssize_t *ahead, Py_ssize_t until, Py_ssize_t end) {
    if (until > end)
        until = end;
    for (; *ahead < until; *ahead += 64)
        PREFETCH_LINE(p + *ahead);
}

static inline uint32_t u32(const unsigned char *h, int little) {
    return little ? ((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24)
                  : ((uint32_t)h[3] | (uint32_t)h[2] << 8 | (uint32_t)h[1] << 16 | (uint32_t)h[0] << 24);
}

static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    int little;
    if (!PyArg_ParseTuple(args, "y*p", &view, &little))
        return NULL;
    const unsigned char *p = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len;
    Py_ssize_t most = end / 16; /* a record is at least its header */
    PyObject *out[3];
    for (int i = 0; i < 3; i++) {
        out[i] = PyBytes_FromStringAndSize(NULL, most * (Py_ssize_t)sizeof(int64_t));
        if (out[i] == NULL) {
            for (int j = 0; j < i; j++)
                Py_DECREF(out[j]);
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out[0]), *sec = (int64_t *)PyBytes_AS_STRING(out[1]);
    int64_t *frac = (int64_t *)PyBytes_AS_STRING(out[2]);
    Py_ssize_t n = 0, off = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t ahead = 0;
    while (off + 16 <= end) {
        const unsigned char *h = p + off;
        prefetch_to(p, &ahead, off + PREFETCH, end);
        Py_ssize_t next = off + 16 + (Py_ssize_t)u32(h + 8, little);
        if (next > end)
            break;
        offs[n] = (int64_t)off;
        sec[n] = (int64_t)u32(h, little);
        frac[n] = (int64_t)u32(h + 4, little);
        n++;
        off = next;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    for (int i = 0; i < 3; i++) {
        if (_PyBytes_Resize(&out[i], n * (Py_ssize_t)sizeof(int64_t)) < 0) {
            for (int j = 0; j < 3; j++)
                if (j != i)
                    Py_XDECREF(out[j]);
            return NULL;
        }
    }
    return Py_BuildValue("(NNNn)", out[0], out[1], out[2], off);
}

/* The pcapng twin of the walk (analyzer/capture/pcapng.py `_run`): epb_run(buf, off, little,
 * max_block) -> (offsets, heads, stop), the enhanced packet blocks (type 6) from off on that are
 * well formed (at least 32 bytes, a multiple of 4, at most max_block) and fit buf, up to the first
 * block that is not one; heads holds, four int64 values a block, its interface id, timestamp
 * (upper, lower) and captured length (pcapng 4.3), read as the walk passes them (numpy's gather
 * of them cost about 60 us a batch). */
static PyObject *epb_run(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t off, max_block;
    int little;
    if (!PyArg_ParseTuple(args, "y*npn", &view, &off, &little, &max_block))
        return NULL;
    const unsigned char *p = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len;
    if (off < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "epb_run: a negative offset");
        return NULL;
    }
    /* Two passes: the blocks counted first, so that each output is allocated at its size (a bound
     * of (end - off) / 32 blocks made a large allocation, shrunk, per call: slower than the walk). */
    Py_ssize_t n = 0, first = off, ahead = off;
    Py_BEGIN_ALLOW_THREADS
    while (off + 12 <= end) {
        prefetch_to(p, &ahead, off + PREFETCH, end);
        uint32_t btype = u32(p + off, little), blen = u32(p + off + 4, little);
        if (btype != 6 || blen < 32 || blen % 4 || (Py_ssize_t)blen > max_block || off + (Py_ssize_t)blen > end)
            break;
        n++;
        off += blen;
    }
    Py_END_ALLOW_THREADS
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    PyObject *heads = PyBytes_FromStringAndSize(NULL, 4 * n * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL || heads == NULL) {
        Py_XDECREF(out);
        Py_XDECREF(heads);
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out), *head = (int64_t *)PyBytes_AS_STRING(heads);
    Py_ssize_t at = first, filled = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; filled < n; filled++) {
        /* Checked again: a mutable buffer could have changed since the first pass (bytes cannot). */
        if (at + 32 > end)
            break;
        Py_ssize_t blen = (Py_ssize_t)u32(p + at + 4, little);
        if (blen < 32 || at + blen > end)
            break;
        for (int k = 0; k < 4; k++) /* inside the block: it is at least 32 bytes */
            head[4 * filled + k] = (int64_t)u32(p + at + 8 + 4 * k, little);
        offs[filled] = (int64_t)at;
        at += blen;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (filled < n) {
        off = at;
        if (_PyBytes_Resize(&out, filled * (Py_ssize_t)sizeof(int64_t)) < 0) {
            Py_DECREF(heads);
            return NULL;
        }
        if (_PyBytes_Resize(&heads, 4 * filled * (Py_ssize_t)sizeof(int64_t)) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return Py_BuildValue("(NNn)", out, heads, off);
}

/* The prefilter's fields (analyzer/capture/prefilter.py `fields`, which says what each one is):
 * fields(buf, start, end, tcp_first, udp_first) with start and end the frames' bounds as native
 * int64 bytes and the two 256-byte lookups of first payload bytes; returns the bytes of kind,
 * sport, dport, pay, stop (int64 each) and maybe, base (one byte each), for Ethernet frames in a
 * buffer of at least 48 bytes (the caller checks both). Every value is the numpy twin's, to the
 * frames outside the common layout. Offsets read stay inside buf: a frame shorter than 42 bytes
 * is read at offset 0, as there. */
static inline int64_t be16(const unsigned char *p, int64_t at) { return (int64_t)p[at] << 8 | p[at + 1]; }

static PyObject *fields(PyObject *self, PyObject *args) {
    Py_buffer b, s, e, tf, uf;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &b, &s, &e, &tf, &uf))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = s.len / 8;
    if (e.len != s.len || tf.len != 256 || uf.len != 256 || b.len < 48) {
        PyErr_SetString(PyExc_ValueError, "fields: bounds of unequal length, tables not 256 bytes, or a short buffer");
        goto done;
    }
    PyObject *out[7];
    for (int i = 0; i < 7; i++) {
        out[i] = PyBytes_FromStringAndSize(NULL, n * (i < 5 ? 8 : 1));
        if (out[i] == NULL) {
            for (int j = 0; j < i; j++)
                Py_DECREF(out[j]);
            goto done;
        }
    }
    const unsigned char *v = (const unsigned char *)b.buf, *tcp_first = tf.buf, *udp_first = uf.buf;
    const int64_t *start = s.buf, *end = e.buf;
    int64_t *kind = (int64_t *)PyBytes_AS_STRING(out[0]), *sport = (int64_t *)PyBytes_AS_STRING(out[1]);
    int64_t *dport = (int64_t *)PyBytes_AS_STRING(out[2]), *pay = (int64_t *)PyBytes_AS_STRING(out[3]);
    int64_t *stop = (int64_t *)PyBytes_AS_STRING(out[4]);
    unsigned char *maybe = (unsigned char *)PyBytes_AS_STRING(out[5]), *base = (unsigned char *)PyBytes_AS_STRING(out[6]);
    int64_t len = b.len;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t st = start[i], en = end[i], size = en - st;
        if (st < 0 || en > len || size < 0) {
            bad = 1;
            break;
        }
        if (i + FIELDS_AHEAD < n && start[i + FIELDS_AHEAD] >= 0 && start[i + FIELDS_AHEAD] < len)
            PREFETCH_LINE(v + start[i + FIELDS_AHEAD]);
        int64_t d = size >= 42 ? st : 0;
        int ip4 = size >= 42 && be16(v, d + 12) == 0x0800 && v[d + 14] == 0x45 && (be16(v, d + 20) & 0x3FFF) == 0;
        int64_t proto = v[d + 23];
        int tcp = ip4 && proto == 6 && size >= 54, udp = ip4 && proto == 17;
        kind[i] = tcp ? 6 : udp ? 17 : 0;
        int64_t total = be16(v, d + 16);
        stop[i] = (total >= 20 && d + 14 + total < en) ? d + 14 + total : en;
        sport[i] = be16(v, d + 34);
        dport[i] = be16(v, d + 36);
        int64_t doff = v[tcp ? d + 46 : 0];
        pay[i] = tcp ? d + 34 + ((doff >> 4) << 2) : d + 42;
        int has = pay[i] < stop[i];
        if (has && pay[i] >= len) { /* cannot happen (stop <= end <= len), but never read past buf */
            bad = 1;
            break;
        }
        unsigned char first = v[has ? pay[i] : 0];
        maybe[i] = has && (tcp ? tcp_first[first] : udp_first[first]) ? 1 : 0;
        int tunnel = udp && (dport[i] == 4789 || dport[i] == 6081);
        base[i] = (kind[i] == 0 || maybe[i] || tunnel) ? 1 : 0;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "fields: a frame's bounds fall outside the buffer");
        for (int i = 0; i < 7; i++)
            Py_DECREF(out[i]);
        goto done;
    }
    result = Py_BuildValue("(NNNNNNN)", out[0], out[1], out[2], out[3], out[4], out[5], out[6]);
done:
    PyBuffer_Release(&b);
    PyBuffer_Release(&s);
    PyBuffer_Release(&e);
    PyBuffer_Release(&tf);
    PyBuffer_Release(&uf);
    return result;
}

/* co_run(buf, pos, size) -> n: the connection-oriented DCE/RPC framer's run of repeated PDUs.
 *
 * How many PDUs of `size` bytes lie back to back at buf[pos:] that equal the one just before them,
 * buf[pos - size:pos], in every byte but call_id (bytes 12-15 of the header, [C706] 12.6.3.1). A
 * PDU's verdict (malformed, and why) never depends on its call_id, so analyzer/dcerpc/stream.py
 * judges a malformed PDU once and counts its run: a flood of bad PDUs is one violation event per
 * segment, not millions of Python calls (about 4 us each). analyzer/dcerpc/wire.py keeps the same
 * count in Python for when this module is not built; tests/test_pdu_runs.py holds the two equal.
 * The buffer is only read. */
static PyObject *co_run(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, size, n = 0;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &pos, &size))
        return NULL;
    if (size < 16 || pos < size || pos > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "co_run: need 16 <= size <= pos <= len(buf)");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)view.buf, *first = p + pos - size;
    Py_ssize_t end = view.len;
    while (size <= end - pos && memcmp(p + pos, first, 12) == 0 && memcmp(p + pos + 16, first + 16, size - 16) == 0) {
        n++;
        pos += size;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "walk(buf, little) -> (offsets, seconds, fractions, stop): the pcap records in buf."},
    {"epb_run", epb_run, METH_VARARGS, "epb_run(buf, off, little, max_block) -> (offsets, heads, stop): pcapng EPBs."},
    {"fields", fields, METH_VARARGS, "fields(buf, start, end, tcp_first, udp_first) -> the prefilter's fields as bytes."},
    {"co_run", co_run, METH_VARARGS, "co_run(buf, pos, size) -> how many copies (but call_id) of the PDU before pos follow."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batch", "The batched reader's per-record loops in C.", -1, methods};

PyMODINIT_FUNC PyInit__batch(void) { return PyModule_Create(&module); }
