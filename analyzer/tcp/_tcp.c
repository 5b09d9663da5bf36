/* One direction of a TCP connection reassembled, in C (RFC 9293 3.4, sequence numbers; 3.10.7.4,
 * segment arrival): `TcpHalf`, the twin of analyzer/tcp/reassembly.py's, with its semantics exactly.
 *
 * Every packet of a followed connection goes through a half once or twice (`segment`, `peer_ack`):
 * under a flood of short connections (binds_200000: a million packets) those Python frames were a
 * large part of the TCP layer's time. Here a segment in order, with nothing buffered, is a few
 * integer steps and the call of the receiver.
 *
 * Sequence space: a 32-bit sequence number is unwrapped into a stream offset (int64) around the next
 * byte expected, `(seq - base32 - next) mod 2**32` read as a signed 32-bit distance. The origin is the
 * SYN's seq + 1, or the first segment's seq when the capture starts mid-connection. Retransmissions
 * and overlaps keep the first copy of a byte. Segments ahead of a hole wait in a buffer (`ooo`, kept
 * sorted by offset, highest first, so the lowest is the last element: popped in O(1)), capped by
 * `Limits.max_ooo_bytes` and `max_ooo_segments`; a hole is declared (the sink's `gap`) when the peer
 * acknowledged past it, when the buffer hit its cap (`given_up` says which while the sink is told),
 * or at `flush`.
 *
 * Frames and timestamps are Python objects handed back as they came (never converted). Every
 * callback may run any Python: the state is consistent before each one and re-read after it; a
 * buffered segment is taken out of the buffer before it is delivered. An exception from a callback
 * stops the step where the Python twin's would stop. The half takes part in the cyclic collector
 * (its sink and receiver refer back to its connection). tests/test_tcp_c.py holds C and twin equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <structmember.h>

#define HALF_SPACE 0x80000000u

typedef struct {
    int64_t off;
    Py_ssize_t len;
    PyObject *data, *frame, *ts;
} Seg;

typedef struct {
    PyObject_HEAD
    PyObject *sink;    /* StreamSink: its `gap` is called for each hole */
    PyObject *deliver; /* Receiver of the in-order bytes (settable) */
    PyObject *given_up; /* NULL, or the violation code while a cap forces a hole */
    long long max_ooo_bytes, max_ooo_segments;
    uint32_t base32; /* sequence number (mod 2**32) of stream offset 0 */
    char started, finished;
    int64_t next;       /* stream offset of the next byte to deliver */
    int64_t peer_acked; /* highest stream offset the peer acknowledged, -1 for none */
    int64_t fin_off;    /* stream offset of the FIN, -1 for none */
    int64_t ooo_bytes;
    Seg *ooo; /* sorted by offset, highest first */
    Py_ssize_t n_ooo, cap_ooo;
    long long retransmitted, gaps, missing, ooo_segments, cap_hits;
} HalfObject;

static PyTypeObject HalfType;
static PyObject *str_gap, *str_data, *str_max_ooo_bytes, *str_max_ooo_segments, *str_cap_bytes, *str_cap_segments;

/* The low 32 bits of a Python int (of any size or sign), as `x & 0xFFFFFFFF` gives them. */
static int u32(PyObject *o, uint32_t *out) {
    unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The stream offset of sequence number `seq`, unwrapped around the next byte expected. */
static inline int64_t offset_of(HalfObject *h, uint32_t seq) {
    uint32_t d = seq - h->base32 - (uint32_t)h->next;
    return d < HALF_SPACE ? h->next + (int64_t)d : h->next + (int64_t)d - ((int64_t)1 << 32);
}

static int call_deliver(HalfObject *h, PyObject *data, PyObject *frame, PyObject *ts) {
    PyObject *fn = h->deliver;
    if (fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TcpHalf: no receiver");
        return -1;
    }
    PyObject *args[3] = {data, frame, ts};
    Py_INCREF(fn); /* the receiver may replace itself */
    PyObject *r = PyObject_Vectorcall(fn, args, 3, NULL);
    Py_DECREF(fn);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* `_deliver`: the next offset moves before the receiver is called, as in the twin. */
static int deliver_at_next(HalfObject *h, PyObject *data, Py_ssize_t len, PyObject *frame, PyObject *ts) {
    h->next += len;
    return call_deliver(h, data, frame, ts);
}

static void seg_release(Seg *s) {
    Py_DECREF(s->data);
    Py_DECREF(s->frame);
    Py_DECREF(s->ts);
}

/* Deliver buffered segments that are now contiguous, each with the frame it arrived in. */
static int drain(HalfObject *h) {
    while (h->n_ooo) {
        Seg s = h->ooo[h->n_ooo - 1];
        if (s.off > h->next)
            return 0;
        h->n_ooo--;
        h->ooo_bytes -= s.len;
        int rc = 0;
        if (s.off + s.len <= h->next) {
            h->retransmitted += s.len;
        } else {
            Py_ssize_t skip = (Py_ssize_t)(h->next - s.off);
            PyObject *part = skip ? PySequence_GetSlice(s.data, skip, PY_SSIZE_T_MAX) : (Py_INCREF(s.data), s.data);
            rc = part == NULL ? -1 : deliver_at_next(h, part, s.len - skip, s.frame, s.ts);
            Py_XDECREF(part);
        }
        seg_release(&s);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Skip the hole before the first buffered segment and deliver what follows it. */
static int declare_gap(HalfObject *h, PyObject *frame, PyObject *ts) {
    if (!h->n_ooo)
        return 0;
    int64_t first = h->ooo[h->n_ooo - 1].off;
    if (first > h->next) {
        int64_t missing = first - h->next;
        if (h->given_up == NULL) { /* a cap's hole is counted in cap_hits, not as lost bytes */
            h->gaps++;
            h->missing += missing;
        }
        h->next = first;
        PyObject *sink = h->sink;
        if (sink == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "TcpHalf: no sink");
            return -1;
        }
        PyObject *n = PyLong_FromLongLong(missing);
        if (n == NULL)
            return -1;
        Py_INCREF(sink);
        PyObject *args[4] = {sink, n, frame, ts};
        PyObject *r = PyObject_VectorcallMethod(str_gap, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(sink);
        Py_DECREF(n);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return drain(h);
}

/* `_store`: buffer a segment ahead of a hole (the first copy of an offset wins unless shorter). */
static int store(HalfObject *h, int64_t off, PyObject *data, Py_ssize_t len, PyObject *frame, PyObject *ts) {
    Py_ssize_t lo = 0, hi = h->n_ooo; /* descending order: find the first index with offset <= off */
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (h->ooo[mid].off > off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->n_ooo && h->ooo[lo].off == off) {
        Seg *old = &h->ooo[lo];
        if (old->len >= len) {
            h->retransmitted += len;
            return 0;
        }
        h->ooo_bytes -= old->len;
        Seg was = *old;
        Py_INCREF(data);
        Py_INCREF(frame);
        Py_INCREF(ts);
        *old = (Seg){off, len, data, frame, ts};
        seg_release(&was);
    } else {
        if (h->n_ooo == h->cap_ooo) {
            Py_ssize_t cap = h->cap_ooo ? h->cap_ooo * 2 : 8;
            Seg *grown = PyMem_Realloc(h->ooo, (size_t)cap * sizeof(Seg));
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            h->ooo = grown;
            h->cap_ooo = cap;
        }
        memmove(&h->ooo[lo + 1], &h->ooo[lo], (size_t)(h->n_ooo - lo) * sizeof(Seg));
        Py_INCREF(data);
        Py_INCREF(frame);
        Py_INCREF(ts);
        h->ooo[lo] = (Seg){off, len, data, frame, ts};
        h->n_ooo++;
    }
    h->ooo_bytes += len;
    h->ooo_segments++;
    return 0;
}

/* `_add`: a segment with payload at stream offset `off`, not the in-order one with nothing buffered. */
static int add(HalfObject *h, int64_t off, PyObject *payload, Py_ssize_t len, PyObject *frame, PyObject *ts) {
    int64_t end = off + len, nxt = h->next;
    if (end <= nxt) {
        h->retransmitted += len;
        return 0;
    }
    PyObject *owned = NULL;
    if (off < nxt) {
        h->retransmitted += nxt - off;
        owned = PySequence_GetSlice(payload, (Py_ssize_t)(nxt - off), PY_SSIZE_T_MAX);
        if (owned == NULL)
            return -1;
        payload = owned;
        len -= (Py_ssize_t)(nxt - off);
        off = nxt;
    }
    int rc;
    if (off == nxt) {
        rc = deliver_at_next(h, payload, len, frame, ts);
        if (rc == 0 && h->n_ooo)
            rc = drain(h);
    } else if (h->peer_acked >= off) { /* ahead of a hole the peer acknowledged: lost before the capture */
        rc = store(h, off, payload, len, frame, ts);
        if (rc == 0)
            rc = declare_gap(h, frame, ts);
    } else {
        rc = store(h, off, payload, len, frame, ts);
        int over_bytes = h->ooo_bytes > h->max_ooo_bytes;
        if (rc == 0 && (over_bytes || h->n_ooo > h->max_ooo_segments)) {
            /* Not a loss: the bytes were captured, and the buffer gave up waiting for the hole. */
            h->cap_hits++;
            PyObject *code = over_bytes ? str_cap_bytes : str_cap_segments;
            Py_INCREF(code);
            Py_XSETREF(h->given_up, code);
            rc = declare_gap(h, frame, ts);
            if (rc == 0)
                Py_CLEAR(h->given_up);
        }
    }
    Py_XDECREF(owned);
    return rc;
}

/* `segment` of the twin, with seq already reduced mod 2**32 (also called by the connection). */
static int half_segment(HalfObject *h, uint32_t seq, PyObject *payload, int fin, PyObject *frame, PyObject *ts) {
    Py_ssize_t len = PyBytes_CheckExact(payload) ? PyBytes_GET_SIZE(payload) : PyObject_Size(payload);
    if (len < 0)
        return -1;
    if (!h->started) {
        h->started = 1;
        h->base32 = seq;
    }
    int64_t off = offset_of(h, seq);
    if (off == h->next && len && !fin && !h->n_ooo) { /* in order, nothing buffered (the common case) */
        if (deliver_at_next(h, payload, len, frame, ts) < 0)
            return -1;
    } else {
        if (fin)
            h->fin_off = off + len;
        if (len) {
            if (off == h->next && !h->n_ooo) {
                if (deliver_at_next(h, payload, len, frame, ts) < 0)
                    return -1;
            } else if (add(h, off, payload, len, frame, ts) < 0) {
                return -1;
            }
        }
    }
    if (h->fin_off >= 0 && h->next >= h->fin_off && !h->finished)
        h->finished = 1;
    return 0;
}

static int half_peer_ack(HalfObject *h, uint32_t ack, PyObject *frame, PyObject *ts) {
    if (!h->started)
        return 0;
    int64_t off = offset_of(h, ack);
    if (off > h->peer_acked) {
        h->peer_acked = off;
        /* A hole the receiver has acknowledged will never be filled by this capture. */
        if (h->n_ooo && h->ooo[h->n_ooo - 1].off <= off)
            return declare_gap(h, frame, ts);
    }
    return 0;
}

static inline void half_syn(HalfObject *h, uint32_t seq) {
    if (!h->started) {
        h->started = 1;
        h->base32 = seq + 1;
    }
}

static int half_flush(HalfObject *h, PyObject *frame, PyObject *ts) {
    while (h->n_ooo)
        if (declare_gap(h, frame, ts) < 0)
            return -1;
    if (h->fin_off >= 0 && h->next >= h->fin_off)
        h->finished = 1;
    return 0;
}

/* -- the Python face ------------------------------------------------------------------------- */

static long long limit_of(PyObject *limits, PyObject *name) {
    PyObject *v = PyObject_GetAttr(limits, name);
    if (v == NULL)
        return -1;
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (overflow) /* beyond int64: no buffer can reach it */
        return overflow > 0 ? LLONG_MAX : LLONG_MIN;
    return n;
}

static PyObject *half_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"sink", "limits", NULL};
    PyObject *sink, *limits;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:TcpHalf", kwlist, &sink, &limits))
        return NULL;
    long long max_bytes = limit_of(limits, str_max_ooo_bytes);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    long long max_segs = limit_of(limits, str_max_ooo_segments);
    if (max_segs == -1 && PyErr_Occurred())
        return NULL;
    PyObject *deliver = PyObject_GetAttr(sink, str_data);
    if (deliver == NULL)
        return NULL;
    HalfObject *h = (HalfObject *)type->tp_alloc(type, 0);
    if (h == NULL) {
        Py_DECREF(deliver);
        return NULL;
    }
    Py_INCREF(sink);
    h->sink = sink;
    h->deliver = deliver;
    h->max_ooo_bytes = max_bytes;
    h->max_ooo_segments = max_segs;
    h->peer_acked = -1;
    h->fin_off = -1;
    return (PyObject *)h;
}

static int half_traverse(HalfObject *h, visitproc visit, void *arg) {
    Py_VISIT(h->sink);
    Py_VISIT(h->deliver);
    for (Py_ssize_t i = 0; i < h->n_ooo; i++) {
        Py_VISIT(h->ooo[i].data);
        Py_VISIT(h->ooo[i].frame);
        Py_VISIT(h->ooo[i].ts);
    }
    return 0;
}

static void half_release_ooo(HalfObject *h) {
    Seg *ooo = h->ooo;
    Py_ssize_t n = h->n_ooo;
    h->ooo = NULL;
    h->n_ooo = h->cap_ooo = 0;
    h->ooo_bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        seg_release(&ooo[i]);
    PyMem_Free(ooo);
}

static int half_clear(HalfObject *h) {
    Py_CLEAR(h->sink);
    Py_CLEAR(h->deliver);
    Py_CLEAR(h->given_up);
    half_release_ooo(h);
    return 0;
}

static void half_dealloc(HalfObject *h) {
    PyObject_GC_UnTrack(h);
    half_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want) {
    if (nargs == want)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, want, nargs);
    return -1;
}

static PyObject *py_syn(HalfObject *h, PyObject *seq) {
    uint32_t s;
    if (u32(seq, &s) < 0)
        return NULL;
    half_syn(h, s);
    Py_RETURN_NONE;
}

static PyObject *py_segment(HalfObject *h, PyObject *const *args, Py_ssize_t nargs) {
    uint32_t seq;
    if (check_nargs("segment", nargs, 5) < 0 || u32(args[0], &seq) < 0)
        return NULL;
    int fin = PyObject_IsTrue(args[2]);
    if (fin < 0 || half_segment(h, seq, args[1], fin, args[3], args[4]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_peer_ack(HalfObject *h, PyObject *const *args, Py_ssize_t nargs) {
    uint32_t ack;
    if (check_nargs("peer_ack", nargs, 3) < 0 || u32(args[0], &ack) < 0)
        return NULL;
    if (half_peer_ack(h, ack, args[1], args[2]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_flush(HalfObject *h, PyObject *const *args, Py_ssize_t nargs) {
    if (check_nargs("flush", nargs, 2) < 0 || half_flush(h, args[0], args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef half_methods[] = {
    {"syn", (PyCFunction)py_syn, METH_O, "A SYN: the stream starts at seq + 1 (a retransmitted SYN changes nothing)."},
    {"segment", (PyCFunction)(void (*)(void))py_segment, METH_FASTCALL,
     "segment(seq, payload, fin, frame, ts): one segment of this direction."},
    {"peer_ack", (PyCFunction)(void (*)(void))py_peer_ack, METH_FASTCALL,
     "peer_ack(ack, frame, ts): the other direction acknowledged up to ack."},
    {"flush", (PyCFunction)(void (*)(void))py_flush, METH_FASTCALL,
     "flush(frame, ts): give up on every hole, deliver what is left."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef half_members[] = {
    {"started", T_BOOL, offsetof(HalfObject, started), 0, NULL},
    {"finished", T_BOOL, offsetof(HalfObject, finished), 0, NULL},
    {"retransmitted", T_LONGLONG, offsetof(HalfObject, retransmitted), 0, NULL},
    {"gaps", T_LONGLONG, offsetof(HalfObject, gaps), 0, NULL},
    {"missing", T_LONGLONG, offsetof(HalfObject, missing), 0, NULL},
    {"ooo_segments", T_LONGLONG, offsetof(HalfObject, ooo_segments), 0, NULL},
    {"cap_hits", T_LONGLONG, offsetof(HalfObject, cap_hits), 0, NULL},
    {"given_up", T_OBJECT, offsetof(HalfObject, given_up), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *get_deliver(HalfObject *h, void *closure) {
    if (h->deliver == NULL) {
        PyErr_SetString(PyExc_AttributeError, "deliver");
        return NULL;
    }
    Py_INCREF(h->deliver);
    return h->deliver;
}

static int set_deliver(HalfObject *h, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "deliver cannot be deleted");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(h->deliver, value);
    return 0;
}

static PyGetSetDef half_getset[] = {
    {"deliver", (getter)get_deliver, (setter)set_deliver, "Where in-order bytes go: (data, frame, ts).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HalfType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "analyzer.tcp._tcp.TcpHalf",
    .tp_basicsize = sizeof(HalfObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One direction of one TCP connection (the twin of analyzer.tcp.reassembly.TcpHalf).",
    .tp_new = half_new,
    .tp_dealloc = (destructor)half_dealloc,
    .tp_traverse = (traverseproc)half_traverse,
    .tp_clear = (inquiry)half_clear,
    .tp_methods = half_methods,
    .tp_members = half_members,
    .tp_getset = half_getset,
};

/* -- one connection's packets: `ConnectionCore` ------------------------------------------------
 *
 * The twin of analyzer/tcp/core.py's: the per-packet step of a followed connection (RFC 9293 3.1
 * header flags; 3.10.7 segment arrival, as a passive observer sees it): the packet and byte
 * counters, the last frame and time, the client's ISN, the SYN (the stream starts after it), the
 * acknowledgement handed to the other direction's half, the payload and FIN to this direction's,
 * and RST. `TcpConnection` (analyzer/tcp/connection.py) is a Python subclass keeping the rest. Its
 * halves are C `TcpHalf`s (called without a Python call), or any object with their methods. */

#define SYN 0x02
#define RST 0x04
#define ACK 0x10
#define FIN 0x01

typedef struct {
    PyObject_HEAD
    PyObject *client; /* (address, port) of the side that sent the first SYN */
    PyObject *c2s, *s2c;
    PyObject *client_isn; /* NULL for None */
    PyObject *last_frame, *last_ts;
    long long packets, server_packets, client_bytes, server_bytes;
    char reset;
} CoreObject;

static PyTypeObject CoreType;
static PyObject *str_syn, *str_segment, *str_peer_ack, *str_finished;

static int any_syn(PyObject *half, uint32_t seq) {
    if (Py_IS_TYPE(half, &HalfType)) {
        half_syn((HalfObject *)half, seq);
        return 0;
    }
    PyObject *n = PyLong_FromUnsignedLong(seq);
    PyObject *r = n ? PyObject_CallMethodOneArg(half, str_syn, n) : NULL;
    Py_XDECREF(n);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int any_peer_ack(PyObject *half, uint32_t ack, PyObject *frame, PyObject *ts) {
    if (Py_IS_TYPE(half, &HalfType))
        return half_peer_ack((HalfObject *)half, ack, frame, ts);
    PyObject *n = PyLong_FromUnsignedLong(ack);
    if (n == NULL)
        return -1;
    PyObject *args[4] = {half, n, frame, ts};
    PyObject *r = PyObject_VectorcallMethod(str_peer_ack, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(n);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int any_segment(PyObject *half, uint32_t seq, PyObject *payload, int fin, PyObject *frame, PyObject *ts) {
    if (Py_IS_TYPE(half, &HalfType))
        return half_segment((HalfObject *)half, seq, payload, fin, frame, ts);
    PyObject *n = PyLong_FromUnsignedLong(seq);
    if (n == NULL)
        return -1;
    PyObject *args[6] = {half, n, payload, fin ? Py_True : Py_False, frame, ts};
    PyObject *r = PyObject_VectorcallMethod(str_segment, args, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(n);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int any_finished(PyObject *half) {
    if (Py_IS_TYPE(half, &HalfType))
        return ((HalfObject *)half)->finished;
    PyObject *v = PyObject_GetAttr(half, str_finished);
    int f = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    return f;
}

/* reset or both directions finished: the connection is over (-1 on an error). */
static int core_finished(CoreObject *c) {
    if (c->reset)
        return 1;
    if (c->c2s == NULL || c->s2c == NULL) {
        PyErr_SetString(PyExc_AttributeError, "TcpConnection: no halves");
        return -1;
    }
    int f = any_finished(c->c2s);
    return f <= 0 ? f : any_finished(c->s2c);
}

static inline void set_obj(PyObject **slot, PyObject *v) {
    Py_INCREF(v);
    Py_XSETREF(*slot, v);
}

/* `packet`, from the packet's fields (a `Packet`: proto, src, dst, sport, dport, seq, ack, flags, payload). */
static int core_packet(CoreObject *c, PyObject *pkt, int from_client, PyObject *frame, PyObject *ts) {
    if (!PyTuple_Check(pkt) || PyTuple_GET_SIZE(pkt) != 9) {
        PyErr_SetString(PyExc_TypeError, "packet: a Packet of nine fields");
        return -1;
    }
    PyObject *seq_o = PyTuple_GET_ITEM(pkt, 5), *payload = PyTuple_GET_ITEM(pkt, 8);
    long flags = PyLong_AsLong(PyTuple_GET_ITEM(pkt, 7));
    if (flags == -1 && PyErr_Occurred())
        return -1;
    c->packets++;
    set_obj(&c->last_frame, frame);
    set_obj(&c->last_ts, ts);
    PyObject *half = from_client ? c->c2s : c->s2c, *other = from_client ? c->s2c : c->c2s;
    if (!from_client)
        c->server_packets++;
    if (half == NULL || other == NULL) {
        PyErr_SetString(PyExc_AttributeError, "TcpConnection: no halves");
        return -1;
    }
    Py_INCREF(half); /* a callback may replace them */
    Py_INCREF(other);
    int rc = -1;
    uint32_t seq, ack;
    if (u32(seq_o, &seq) < 0)
        goto done;
    if (flags & SYN) {
        if (any_syn(half, seq) < 0)
            goto done;
        if (from_client && !(flags & ACK))
            set_obj(&c->client_isn, seq_o);
        seq += 1;
    }
    if (flags & ACK) {
        if (u32(PyTuple_GET_ITEM(pkt, 6), &ack) < 0 || any_peer_ack(other, ack, frame, ts) < 0)
            goto done;
    }
    Py_ssize_t len = PyBytes_CheckExact(payload) ? PyBytes_GET_SIZE(payload) : PyObject_Size(payload);
    if (len < 0)
        goto done;
    if (len) {
        if (from_client)
            c->client_bytes += len;
        else
            c->server_bytes += len;
        if (any_segment(half, seq, payload, (flags & FIN) != 0, frame, ts) < 0)
            goto done;
    } else if (flags & FIN) {
        if (any_segment(half, seq, payload, 1, frame, ts) < 0)
            goto done;
    }
    if (flags & RST)
        c->reset = 1;
    rc = 0;
done:
    Py_DECREF(half);
    Py_DECREF(other);
    return rc;
}

static PyObject *py_core_packet(CoreObject *c, PyObject *const *args, Py_ssize_t nargs) {
    if (check_nargs("packet", nargs, 4) < 0)
        return NULL;
    int from_client = PyObject_IsTrue(args[1]);
    if (from_client < 0 || core_packet(c, args[0], from_client, args[2], args[3]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_client_syn(CoreObject *c, PyObject *const *args, Py_ssize_t nargs) {
    uint32_t seq;
    if (check_nargs("client_syn", nargs, 3) < 0 || u32(args[0], &seq) < 0)
        return NULL;
    c->packets++;
    set_obj(&c->last_frame, args[1]);
    set_obj(&c->last_ts, args[2]);
    if (c->c2s == NULL) {
        PyErr_SetString(PyExc_AttributeError, "TcpConnection: no halves");
        return NULL;
    }
    PyObject *half = c->c2s;
    Py_INCREF(half);
    int rc = any_syn(half, seq);
    Py_DECREF(half);
    if (rc < 0)
        return NULL;
    set_obj(&c->client_isn, args[0]);
    Py_RETURN_NONE;
}

static PyObject *get_finished(CoreObject *c, void *closure) {
    int f = core_finished(c);
    if (f < 0)
        return NULL;
    return PyBool_FromLong(f);
}

static PyObject *core_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    return type->tp_alloc(type, 0); /* the subclass's __init__ sets the fields */
}

static int core_traverse(CoreObject *c, visitproc visit, void *arg) {
    Py_VISIT(c->client);
    Py_VISIT(c->c2s);
    Py_VISIT(c->s2c);
    Py_VISIT(c->client_isn);
    Py_VISIT(c->last_frame);
    Py_VISIT(c->last_ts);
    return 0;
}

static int core_clear(CoreObject *c) {
    Py_CLEAR(c->client);
    Py_CLEAR(c->c2s);
    Py_CLEAR(c->s2c);
    Py_CLEAR(c->client_isn);
    Py_CLEAR(c->last_frame);
    Py_CLEAR(c->last_ts);
    return 0;
}

static void core_dealloc(CoreObject *c) {
    PyObject_GC_UnTrack(c);
    core_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef core_methods[] = {
    {"packet", (PyCFunction)(void (*)(void))py_core_packet, METH_FASTCALL,
     "packet(pkt, from_client, frame, ts): one segment of the connection, either way."},
    {"client_syn", (PyCFunction)(void (*)(void))py_client_syn, METH_FASTCALL,
     "client_syn(seq, frame, ts): the client's first SYN alone (no payload, ACK, FIN or RST)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"client", T_OBJECT_EX, offsetof(CoreObject, client), 0, NULL},
    {"c2s", T_OBJECT_EX, offsetof(CoreObject, c2s), 0, NULL},
    {"s2c", T_OBJECT_EX, offsetof(CoreObject, s2c), 0, NULL},
    {"client_isn", T_OBJECT, offsetof(CoreObject, client_isn), 0, NULL},
    {"last_frame", T_OBJECT_EX, offsetof(CoreObject, last_frame), 0, NULL},
    {"last_ts", T_OBJECT_EX, offsetof(CoreObject, last_ts), 0, NULL},
    {"packets", T_LONGLONG, offsetof(CoreObject, packets), 0, NULL},
    {"server_packets", T_LONGLONG, offsetof(CoreObject, server_packets), 0, NULL},
    {"client_bytes", T_LONGLONG, offsetof(CoreObject, client_bytes), 0, NULL},
    {"server_bytes", T_LONGLONG, offsetof(CoreObject, server_bytes), 0, NULL},
    {"reset", T_BOOL, offsetof(CoreObject, reset), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef core_getset[] = {
    {"finished", (getter)get_finished, NULL, "Reset, or both directions ended.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "analyzer.tcp._tcp.ConnectionCore",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The per-packet part of a TCP connection (the twin of analyzer.tcp.core.ConnectionCore).",
    .tp_new = core_new,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
    .tp_members = core_members,
    .tp_getset = core_getset,
};

/* -- a capture's TCP packets: `Follow` --------------------------------------------------------
 *
 * The twin of `Conversations.tcp` (analyzer/pipeline/conversations.py) for the packet of a followed
 * connection, nearly every TCP packet: the flow table's look-up by (src, sport, dst, dport), the
 * direction, `ConnectionCore.packet`, the table's touch, and the close of a connection that ended.
 * Anything else (a new flow, an entry not followed, a client's SYN on a followed connection) goes
 * to `other(key, entry, pkt, frame, ts)`, the Python rest of that method, with what was looked up.
 *
 * Follow(lookup, touch, connection, other, close): `lookup(key)` the table's entry or None,
 * `touch(id(entry))`, `connection` the followed connection's class (a `ConnectionCore` subclass:
 * an entry of exactly that class is followed), `close(conn, end, ts)`. Called (pkt, frame, ts). */

typedef struct {
    PyObject_HEAD
    PyObject *lookup, *touch, *connection, *other, *close;
    vectorcallfunc vectorcall;
} FollowObject;

static PyObject *str_rst, *str_fin;

static PyObject *follow_call(FollowObject *f, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if ((kwnames && PyTuple_GET_SIZE(kwnames)) || check_nargs("tcp", nargs, 3) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "tcp(pkt, frame, ts): no keywords");
        return NULL;
    }
    PyObject *pkt = args[0], *frame = args[1], *ts = args[2];
    if (!PyTuple_Check(pkt) || PyTuple_GET_SIZE(pkt) != 9) {
        PyErr_SetString(PyExc_TypeError, "tcp: a Packet of nine fields");
        return NULL;
    }
    PyObject *src = PyTuple_GET_ITEM(pkt, 1), *sport = PyTuple_GET_ITEM(pkt, 3);
    long flags = PyLong_AsLong(PyTuple_GET_ITEM(pkt, 7));
    if (flags == -1 && PyErr_Occurred())
        return NULL;
    PyObject *key = PyTuple_Pack(4, src, sport, PyTuple_GET_ITEM(pkt, 2), PyTuple_GET_ITEM(pkt, 4));
    if (key == NULL)
        return NULL;
    PyObject *entry = PyObject_Vectorcall(f->lookup, &key, 1, NULL);
    PyObject *result = NULL;
    if (entry == NULL)
        goto done;
    int from_client = 0;
    if ((PyObject *)Py_TYPE(entry) == f->connection) {
        PyObject *client = ((CoreObject *)entry)->client;
        if (client == NULL || !PyTuple_Check(client) || PyTuple_GET_SIZE(client) != 2) {
            PyErr_SetString(PyExc_TypeError, "tcp: a connection's client is (address, port)");
            goto done;
        }
        from_client = PyObject_RichCompareBool(src, PyTuple_GET_ITEM(client, 0), Py_EQ);
        if (from_client > 0)
            from_client = PyObject_RichCompareBool(sport, PyTuple_GET_ITEM(client, 1), Py_EQ);
        if (from_client < 0)
            goto done;
    }
    if ((PyObject *)Py_TYPE(entry) != f->connection || ((flags & (SYN | ACK)) == SYN && from_client)) {
        PyObject *call[5] = {key, entry, pkt, frame, ts};
        result = PyObject_Vectorcall(f->other, call, 5, NULL);
        goto done;
    }
    CoreObject *c = (CoreObject *)entry;
    if (core_packet(c, pkt, from_client, frame, ts) < 0)
        goto done;
    PyObject *id = PyLong_FromVoidPtr(entry);
    if (id == NULL)
        goto done;
    PyObject *touched = PyObject_Vectorcall(f->touch, &id, 1, NULL);
    Py_DECREF(id);
    if (touched == NULL)
        goto done;
    Py_DECREF(touched);
    int ended = core_finished(c);
    if (ended < 0)
        goto done;
    if (ended) {
        PyObject *call[3] = {entry, c->reset ? str_rst : str_fin, ts};
        result = PyObject_Vectorcall(f->close, call, 3, NULL);
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    Py_DECREF(key);
    Py_XDECREF(entry);
    return result;
}

static PyObject *follow_vectorcall_guard(FollowObject *f, PyObject *const *args, size_t nargsf, PyObject *kwnames);

static PyObject *follow_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"lookup", "touch", "connection", "other", "close", NULL};
    PyObject *lookup, *touch, *connection, *other, *close;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OO:Follow", kwlist, &lookup, &touch, &PyType_Type, &connection,
                                     &other, &close))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)connection, &CoreType)) {
        PyErr_SetString(PyExc_TypeError, "Follow: the connection class must subclass ConnectionCore");
        return NULL;
    }
    FollowObject *f = (FollowObject *)type->tp_alloc(type, 0);
    if (f == NULL)
        return NULL;
    f->lookup = Py_NewRef(lookup);
    f->touch = Py_NewRef(touch);
    f->connection = Py_NewRef(connection);
    f->other = Py_NewRef(other);
    f->close = Py_NewRef(close);
    f->vectorcall = (vectorcallfunc)follow_vectorcall_guard;
    return (PyObject *)f;
}

static int follow_traverse(FollowObject *f, visitproc visit, void *arg) {
    Py_VISIT(f->lookup);
    Py_VISIT(f->touch);
    Py_VISIT(f->connection);
    Py_VISIT(f->other);
    Py_VISIT(f->close);
    return 0;
}

static int follow_clear(FollowObject *f) {
    Py_CLEAR(f->lookup);
    Py_CLEAR(f->touch);
    Py_CLEAR(f->connection);
    Py_CLEAR(f->other);
    Py_CLEAR(f->close);
    return 0;
}

static void follow_dealloc(FollowObject *f) {
    PyObject_GC_UnTrack(f);
    follow_clear(f);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyObject *follow_vectorcall_guard(FollowObject *f, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (f->lookup == NULL) { /* cleared by the collector */
        PyErr_SetString(PyExc_RuntimeError, "Follow: cleared");
        return NULL;
    }
    Py_INCREF(f); /* a callback may drop the last other reference to it */
    PyObject *r = follow_call(f, args, nargsf, kwnames);
    Py_DECREF(f);
    return r;
}

static PyTypeObject FollowType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "analyzer.tcp._tcp.Follow",
    .tp_basicsize = sizeof(FollowObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Follow(lookup, touch, connection, other, close): a capture's TCP packets, called (pkt, frame, ts).",
    .tp_new = follow_new,
    .tp_dealloc = (destructor)follow_dealloc,
    .tp_traverse = (traverseproc)follow_traverse,
    .tp_clear = (inquiry)follow_clear,
    .tp_vectorcall_offset = offsetof(FollowObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* -- the module ------------------------------------------------------------------------------ */

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tcp",
                                    "TCP reassembly of one direction in C (the twin of analyzer.tcp.reassembly).", -1,
                                    NULL};

PyMODINIT_FUNC PyInit__tcp(void) {
    if (!(str_gap = PyUnicode_InternFromString("gap")) || !(str_data = PyUnicode_InternFromString("data")) ||
        !(str_max_ooo_bytes = PyUnicode_InternFromString("max_ooo_bytes")) ||
        !(str_max_ooo_segments = PyUnicode_InternFromString("max_ooo_segments")) ||
        !(str_cap_bytes = PyUnicode_InternFromString("cap_ooo_bytes")) ||
        !(str_cap_segments = PyUnicode_InternFromString("cap_ooo_segments")) ||
        !(str_syn = PyUnicode_InternFromString("syn")) || !(str_segment = PyUnicode_InternFromString("segment")) ||
        !(str_peer_ack = PyUnicode_InternFromString("peer_ack")) ||
        !(str_finished = PyUnicode_InternFromString("finished")) || !(str_rst = PyUnicode_InternFromString("rst")) ||
        !(str_fin = PyUnicode_InternFromString("fin")))
        return NULL;
    if (PyType_Ready(&HalfType) < 0 || PyType_Ready(&CoreType) < 0 || PyType_Ready(&FollowType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "TcpHalf", (PyObject *)&HalfType) < 0 ||
        PyModule_AddObjectRef(m, "ConnectionCore", (PyObject *)&CoreType) < 0 ||
        PyModule_AddObjectRef(m, "Follow", (PyObject *)&FollowType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
