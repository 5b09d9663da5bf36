/* The decoder's per-packet step in C: the packets of a batch's candidates, built in one call.
 *
 * After the prefilter (analyzer/capture/prefilter.py) has said which frames of a batch the
 * per-frame test must see, `PacketDecoder._select_batches` turned each one into Python values (ten
 * per frame), checked its ports against the selector's sets and, for the common layout (Ethernet
 * II, IPv4 with a 20-byte header, not a fragment, TCP or UDP), sliced its fields into a `Packet`:
 * about 1.4 us a packet in Python, a tenth of the reader's time under a flood of short connections
 * (binds_40000: 200,000 packets). `build` does that step for a whole stretch of candidates.
 *
 * build(buf, at, kind, sport, dport, maybe, pay, stop, start, end, ts, frame0, tcp_table,
 *       udp_table, packet) -> list
 *
 * `at` holds the candidates' indices (native int64), the next ten the batch's per-frame columns
 * (`prefilter.Fields` and the batch's bounds and times: int64, `maybe` one byte a frame), `frame0`
 * the number of the frame before the batch, the two tables a byte per port (`prefilter.port_table`:
 * 65,536 bytes, is the port in the selector's set now), `packet` the `Packet` class (a tuple of nine
 * fields). For every candidate, in order, the list holds:
 * - (frame, ts, Packet) for a frame of the common layout, TCP or UDP (not to a VXLAN or Geneve
 *   port), with a port in its set: the packet `decode._plain` would make of it;
 * - nothing for such a frame whose transport header does not fit in the IP datagram (`_plain`
 *   returns None for it);
 * - the row `prefilter.rows` gives, a tuple of ten ints (its maybe a bool), for any other candidate:
 *   the Python loop tests it as it tested every row (probe, tunnels, other layouts).
 * analyzer/capture/decode.py keeps the same step in Python (`_built`, for when this module is not
 * built); tests/test_packet_build.py holds the two equal. The buffer is only read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define TCP 6
#define UDP 17
#define VXLAN 4789
#define GENEVE 6081

static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A `Packet` (a tuple subclass): allocated as `tuple.__new__(Packet, fields)` allocates it. Takes
 * the references to its nine fields, also on failure. It holds ints and bytes only, so it can be in
 * no reference cycle: it is untracked by the cyclic collector at once, as the collector itself
 * untracks such tuples the first time it meets them (a stretch of packets waiting in the list would
 * otherwise be visited by every collection meanwhile). */
static PyObject *packet(PyTypeObject *type, PyObject **items) {
    int ok = 1;
    for (int k = 0; k < 9; k++)
        ok = ok && items[k] != NULL;
    PyObject *obj = ok ? type->tp_alloc(type, 9) : NULL;
    if (obj == NULL) {
        for (int k = 0; k < 9; k++)
            Py_XDECREF(items[k]);
        return NULL;
    }
    for (int k = 0; k < 9; k++)
        PyTuple_SET_ITEM(obj, k, items[k]);
    PyObject_GC_UnTrack(obj);
    return obj;
}

/* The packet of frame buf[st:..] (common layout; payload buf[pa:so]), or Py_None when its transport
 * header does not fit in the datagram (a borrowed Py_None, not to be released), NULL on error. */
static PyObject *plain(PyTypeObject *type, const unsigned char *v, int64_t k, int64_t st, int64_t pa, int64_t so,
                       int64_t sp, int64_t dp) {
    PyObject *items[9];
    if (k == TCP) {
        if (st + 54 > so)
            return Py_None;
        items[5] = PyLong_FromUnsignedLong(be32(v + st + 38));
        items[6] = PyLong_FromUnsignedLong(be32(v + st + 42));
        items[7] = PyLong_FromLong(v[st + 47]);
        items[8] = PyBytes_FromStringAndSize((const char *)v + pa, pa < so ? so - pa : 0);
    } else {
        if (st + 42 > so)
            return Py_None;
        items[5] = PyLong_FromLong(0);
        items[6] = PyLong_FromLong(0);
        items[7] = PyLong_FromLong(0);
        items[8] = PyBytes_FromStringAndSize((const char *)v + pa, pa < so ? so - pa : 0);
    }
    items[0] = PyLong_FromLong((long)k);
    items[1] = PyBytes_FromStringAndSize((const char *)v + st + 26, 4);
    items[2] = PyBytes_FromStringAndSize((const char *)v + st + 30, 4);
    items[3] = PyLong_FromLongLong(sp);
    items[4] = PyLong_FromLongLong(dp);
    return packet(type, items);
}

static PyObject *row(int64_t i, int64_t k, int64_t sp, int64_t dp, int mb, int64_t pa, int64_t so, int64_t st,
                     int64_t en, int64_t t) {
    return Py_BuildValue("(LLLLNLLLLL)", (long long)i, (long long)k, (long long)sp, (long long)dp, PyBool_FromLong(mb),
                         (long long)pa, (long long)so, (long long)st, (long long)en, (long long)t);
}

enum { AT, KIND, SPORT, DPORT, MAYBE, PAY, STOP, START, END, TS, TCP_T, UDP_T, NBUF };

static PyObject *build(PyObject *self, PyObject *args) {
    Py_buffer b, c[NBUF];
    long long frame0;
    PyObject *type;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*Ly*y*O", &b, &c[AT], &c[KIND], &c[SPORT], &c[DPORT], &c[MAYBE],
                          &c[PAY], &c[STOP], &c[START], &c[END], &c[TS], &frame0, &c[TCP_T], &c[UDP_T], &type))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = c[KIND].len / 8, m = c[AT].len / 8;
    int sized = c[MAYBE].len == n && c[TCP_T].len == 65536 && c[UDP_T].len == 65536;
    for (int j = SPORT; j <= TS; j++)
        sized = sized && (j == MAYBE || c[j].len == n * 8);
    if (!sized || !PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_ValueError, "build: columns of unequal length, tables not 65,536 bytes, or no tuple type");
        goto done;
    }
    const int64_t *at = c[AT].buf, *kind = c[KIND].buf, *sport = c[SPORT].buf, *dport = c[DPORT].buf;
    const int64_t *pay = c[PAY].buf, *stop = c[STOP].buf, *start = c[START].buf, *end = c[END].buf, *ts = c[TS].buf;
    const unsigned char *maybe = c[MAYBE].buf, *tcp = c[TCP_T].buf, *udp = c[UDP_T].buf, *v = b.buf;
    out = PyList_New(0);
    for (Py_ssize_t j = 0; out != NULL && j < m; j++) {
        int64_t i = at[j];
        if (i < 0 || i >= n) {
            PyErr_SetString(PyExc_ValueError, "build: a candidate outside the batch");
            Py_CLEAR(out);
            break;
        }
        int64_t k = kind[i], sp = sport[i], dp = dport[i], st = start[i], pa = pay[i], so = stop[i];
        int fast = (k == TCP && (tcp[sp & 0xFFFF] || tcp[dp & 0xFFFF])) ||
                   (k == UDP && dp != VXLAN && dp != GENEVE && (udp[sp & 0xFFFF] || udp[dp & 0xFFFF]));
        /* The common layout's fields lie inside the frame, the frame inside buf (as `fields` checked). */
        fast = fast && st >= 0 && so <= end[i] && end[i] <= b.len && pa >= st && sp >= 0 && dp >= 0;
        PyObject *item;
        if (fast) {
            PyObject *pkt = plain((PyTypeObject *)type, v, k, st, pa, so, sp, dp);
            if (pkt == Py_None)
                continue;
            item = pkt == NULL ? NULL : Py_BuildValue("(LLN)", frame0 + i + 1, (long long)ts[i], pkt);
            if (item != NULL)
                PyObject_GC_UnTrack(item); /* ints and an untracked tuple: as above */
        } else {
            item = row(i, k, sp, dp, maybe[i] != 0, pa, so, st, end[i], ts[i]);
        }
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
done:
    PyBuffer_Release(&b);
    for (int j = 0; j < NBUF; j++)
        PyBuffer_Release(&c[j]);
    return out;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS,
     "build(buf, at, kind, sport, dport, maybe, pay, stop, start, end, ts, frame0, tcp_table, udp_table, packet) -> "
     "list: (frame, ts, Packet) or the row, per candidate."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_packets", "The decoder's per-packet step in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__packets(void) { return PyModule_Create(&module); }
