/* The pcap record walk in C: where each record of a buffer starts.
 *
 * A pcap file is a chain of records, each a 16-byte header whose third 32-bit field (incl_len)
 * says how many bytes of frame follow (pcap-savefile(5)). Finding where records start is a
 * pointer chase no numpy call can do, and in Python it costs about 0.2 us a record (0.25 s of CPU
 * for the 1.27 million records of the 1.1 GB benchmark capture); here it costs a few
 * milliseconds. analyzer/capture/pcap.py keeps the same walk in Python for when this module is
 * not built; tests/test_prefilter.py checks that both give the same answer.
 *
 * walk(buf, little) -> (offsets, stop): offsets holds, as native int64 values, the offset of
 * every record that ends inside buf, in order, starting at offset 0; stop is where the walk
 * stopped (the end of the last whole record). The buffer is only read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    int little;
    if (!PyArg_ParseTuple(args, "y*p", &view, &little))
        return NULL;
    const unsigned char *p = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len;
    Py_ssize_t most = end / 16; /* a record is at least its header */
    PyObject *out = PyBytes_FromStringAndSize(NULL, most * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out);
    Py_ssize_t n = 0, off = 0;
    Py_BEGIN_ALLOW_THREADS
    while (off + 16 <= end) {
        const unsigned char *h = p + off + 8;
        uint32_t incl = little ? ((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24)
                               : ((uint32_t)h[3] | (uint32_t)h[2] << 8 | (uint32_t)h[1] << 16 | (uint32_t)h[0] << 24);
        Py_ssize_t next = off + 16 + (Py_ssize_t)incl;
        if (next > end)
            break;
        offs[n++] = (int64_t)off;
        off = next;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, n * (Py_ssize_t)sizeof(int64_t)) < 0)
        return NULL;
    return Py_BuildValue("(Nn)", out, off);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "walk(buf, little) -> (int64 offsets as bytes, stop): the pcap records in buf."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "The pcap record walk in C.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
