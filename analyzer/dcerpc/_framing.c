/* The connection-oriented framer's header test in C ([C706] 12.6.3.1, the common header).
 *
 * plausible_co_header(data, off=0) -> frag_length of a believable header at data[off:], else 0:
 * rpc_vers 5, rpc_vers_minor 0 or 1, a packet type of [C706] 12.6.4 or [MS-RPCE] 2.2.2, a data
 * representation whose reserved bits and bytes are zero (and a float format of at most 3), and a
 * frag_length (in the byte order packed_drep[0] says) of at least the 16-byte header that leaves
 * room for auth_length and the 8-byte sec_trailer. Every framed PDU, every connection's first
 * segment and every resynchronisation byte is judged by it: in Python (analyzer/dcerpc/pdu.py,
 * kept as the twin for when this module is not built) it is about 36 bytecodes a call, four calls
 * a short connection; here it is the call alone. tests/test_framing_c.py holds the two equal.
 * `off` must not be negative; data is any bytes-like object, only read. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define CO_HEADER_LEN 16
#define SEC_TRAILER_LEN 8

/* [C706] 12.6.4 and [MS-RPCE] 2.2.2 (rts, 20): not 1, nor 4-10 (connectionless only). */
static inline int known_ptype(unsigned pt) { return pt <= 20 && pt != 1 && !(pt >= 4 && pt <= 10); }

static long judge(const unsigned char *h) {
    if (h[0] != 5 || h[1] > 1 || !known_ptype(h[2]) || (h[4] & 0xEE) || h[5] > 3 || h[6] || h[7])
        return 0;
    int little = (h[4] & 0x10) != 0;
    long frag_len = little ? (h[8] | h[9] << 8) : (h[8] << 8 | h[9]);
    long auth_len = little ? (h[10] | h[11] << 8) : (h[10] << 8 | h[11]);
    if (frag_len < CO_HEADER_LEN || (auth_len && auth_len + SEC_TRAILER_LEN + CO_HEADER_LEN > frag_len))
        return 0;
    return frag_len;
}

static PyObject *plausible_co_header(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "plausible_co_header(data, off=0)");
        return NULL;
    }
    Py_ssize_t off = 0;
    if (nargs == 2) {
        off = PyLong_AsSsize_t(args[1]);
        if (off == -1 && PyErr_Occurred())
            return NULL;
        if (off < 0) {
            PyErr_SetString(PyExc_ValueError, "plausible_co_header: a negative offset");
            return NULL;
        }
    }
    PyObject *data = args[0];
    long frag_len = 0;
    if (PyBytes_CheckExact(data) || PyByteArray_CheckExact(data)) { /* the framer's bytes and buffer */
        Py_ssize_t len = PyBytes_CheckExact(data) ? PyBytes_GET_SIZE(data) : PyByteArray_GET_SIZE(data);
        const char *p = PyBytes_CheckExact(data) ? PyBytes_AS_STRING(data) : PyByteArray_AS_STRING(data);
        if (len - off >= CO_HEADER_LEN)
            frag_len = judge((const unsigned char *)p + off);
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
            return NULL;
        if (view.len - off >= CO_HEADER_LEN)
            frag_len = judge((const unsigned char *)view.buf + off);
        PyBuffer_Release(&view);
    }
    return PyLong_FromLong(frag_len);
}

static PyMethodDef methods[] = {
    {"plausible_co_header", (PyCFunction)(void (*)(void))plausible_co_header, METH_FASTCALL,
     "plausible_co_header(data, off=0) -> frag_length of a believable CO header at data[off:], else 0."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_framing",
                                    "The connection-oriented framer's header test in C.", -1, methods};

PyMODINIT_FUNC PyInit__framing(void) { return PyModule_Create(&module); }
