/* A parallel run's census of one batch of frames, in C (the numpy twin is `Census.batch` in
 * analyzer/parallel/units.py; tests/test_parallel_census.py holds the two to the same answers).
 *
 * A worker notes every TCP/UDP conversation of its session with the first frame that carries it,
 * so that the merge can tell whether the state an earlier session leaves could reach it (see
 * units.py). Nearly every frame is plain Ethernet + IPv4 without options, whose addresses and
 * ports are the 12 bytes at offset 26 (IPv4 source and destination, RFC 791; then the TCP or UDP
 * source and destination ports, RFC 9293 / RFC 768). In numpy that took gathering those bytes, a
 * stable sort of the keys per batch and a Python loop over the distinct ones: about a quarter of a
 * worker's reading on the 140 MB benchmark captures. Here each frame costs a look in a small table
 * of the keys this call has noted (SEEN slots, direct-mapped by a hash of the key: a batch of some
 * 2,500 frames holds some 400 conversations); only a key not found there is looked up in flows,
 * which then holds it. A slot says nothing of the keys it does not hold, so a collision only costs
 * a dict lookup, never a note.
 *
 * census(buf, start, frame0, flows) -> plain: buf is the batch's buffer, start the offset of each
 * frame in it (native int64, C-contiguous), frame0 the number of the frame before the first one.
 * For each frame whose key lies inside buf and that begins Ethernet type IPv4 (08 00) with an IPv4
 * header of five words (45), flows[key] is set to its frame number (frame0 + 1 + i) unless flows
 * has the key already; plain (bytes, one 0/1 per frame) says which frames those were. The buffer is
 * only read; every offset is checked against its length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define KEY_AT 26
#define KEY_LEN 12
#define NEEDS (KEY_AT + KEY_LEN) /* 38: a frame whose key is cut by the buffer's end is left to Python */
#define SEEN 4096                /* slots of the table of keys noted by this call (a power of two) */

typedef struct {
    unsigned char key[KEY_LEN];
    unsigned char used;
} Slot;

static inline size_t slot_of(const unsigned char *key) {
    uint64_t a;
    uint32_t b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 4);
    uint64_t h = (a ^ ((uint64_t)b << 29) ^ b) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 52) & (SEEN - 1);
}

static PyObject *census(PyObject *self, PyObject *args) {
    Py_buffer buf, starts;
    long long frame0;
    PyObject *flows;
    if (!PyArg_ParseTuple(args, "y*y*LO!", &buf, &starts, &frame0, &PyDict_Type, &flows))
        return NULL;
    PyObject *plain = NULL;
    Slot *seen = NULL;
    if (starts.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "start must hold int64 offsets");
        goto done;
    }
    Py_ssize_t n = starts.len / (Py_ssize_t)sizeof(int64_t);
    plain = PyBytes_FromStringAndSize(NULL, n);
    if (plain == NULL)
        goto done;
    unsigned char *mask = (unsigned char *)PyBytes_AS_STRING(plain);
    const unsigned char *p = (const unsigned char *)buf.buf;
    const int64_t *start = (const int64_t *)starts.buf;
    Py_ssize_t len = buf.len;
    seen = PyMem_Calloc(SEEN, sizeof(Slot));
    if (seen == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = start[i];
        mask[i] = 0;
        if (s < 0 || len < NEEDS || s > (int64_t)(len - NEEDS))
            continue;
        const unsigned char *f = p + s;
        if (f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45)
            continue;
        mask[i] = 1;
        const unsigned char *key = f + KEY_AT;
        Slot *slot = &seen[slot_of(key)];
        if (slot->used && memcmp(slot->key, key, KEY_LEN) == 0)
            continue; /* noted by this call already */
        PyObject *k = PyBytes_FromStringAndSize((const char *)key, KEY_LEN);
        if (k == NULL)
            goto fail;
        int has = PyDict_Contains(flows, k);
        if (has == 0) {
            PyObject *v = PyLong_FromLongLong(frame0 + 1 + (long long)i);
            if (v == NULL || PyDict_SetItem(flows, k, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(k);
                goto fail;
            }
            Py_DECREF(v);
        }
        Py_DECREF(k);
        if (has < 0)
            goto fail;
        memcpy(slot->key, key, KEY_LEN);
        slot->used = 1;
    }
    goto done;
fail:
    Py_CLEAR(plain);
done:
    PyMem_Free(seen);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&starts);
    return plain;
}

static PyMethodDef methods[] = {
    {"census", census, METH_VARARGS,
     "census(buf, start, frame0, flows) -> plain: the batch's plain IPv4 frames noted in flows (see the file)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_census", "A parallel run's census of a batch, in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__census(void) { return PyModule_Create(&module); }
