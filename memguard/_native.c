/* memguard._native: an exact count of the Python heap for the price of a counter.
 *
 * While at least one session is open (begin()/end(), reference-counted), this
 * module wraps Python's allocators (PyMem_SetAllocator for the RAW, MEM and
 * OBJ domains) and keeps the bytes in use and their peak: the requested size
 * of every block allocated since the first session began, exactly what
 * tracemalloc would trace had it started at that moment.
 *
 * The design, and why:
 *
 * - Header-free. The size of a block is kept in a record of the blocks
 *   allocated while counting (address -> requested size), never in a header
 *   in front of the block: a block allocated before the count began and freed
 *   or reallocated inside it is simply not in the record, so it never makes
 *   the count wrong (a realloc of such a block counts its new size, as
 *   tracemalloc does). The record is a table of 4 KiB pages holding a 16-bit
 *   size per 16-byte granule (cache-friendly: see set_put), with a hash set by
 *   address for blocks of 64 KiB and more. It lives in memory mapped from
 *   the kernel, neither Python's heap nor libc's, so no tracer sees it, the
 *   collector does not count it and malloc's own figures leave it out.
 * - Thread-safe. The RAW domain is called without the GIL, so the set is
 *   split into shards, each behind a spin lock, and the counters are atomics.
 * - One count per block. The OBJ domain hands big requests to PyMem_RawMalloc,
 *   which comes back through the RAW hook: a thread-local flag marks that the
 *   thread is inside a hook, and nested calls are passed on uncounted (the
 *   rule tracemalloc follows too).
 * - Never breaks a hook installed later. When the last session ends, the hooks
 *   are removed only if they are still the installed allocator; otherwise
 *   (tracemalloc started inside the block and still runs, wrapping us) they
 *   stay in the chain as plain pass-through and are reused by the next
 *   session. A hook above us keeps working, and nothing is ever stopped.
 * - Sampling. Every allocation also spends a random byte budget (exponential,
 *   mean `interval` bytes, the scheme of tcmalloc's and Go's heap profiles);
 *   when it runs out, the block is a sample: its address, size and a short
 *   Python stack (code objects and instruction offsets, read from the
 *   interpreter's frames without creating any object) go into a small table.
 *   The sampled live set is copied whenever the count reaches a new peak
 *   above the "capture level" by a growth factor, so the sites at the peak
 *   are known at the moment the peak was made.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#  define Py_BUILD_CORE 1
#  include "internal/pycore_frame.h"
#  undef Py_BUILD_CORE
#  define MG_FRAMES_311 1
#elif PY_VERSION_HEX < 0x030B0000
#  include "frameobject.h"
#  define MG_FRAMES_310 1
#endif

/* ------------------------------------------------------------------------ */
/* State                                                                     */

static PyMemAllocatorEx orig_raw, orig_mem, orig_obj;
static PyMemAllocatorEx hook_raw, hook_mem, hook_obj;

static int sessions = 0;          /* guarded by the GIL */
static int installed = 0;         /* our hooks are somewhere in the chain */
static atomic_int active = 0;     /* counting (else pass-through) */
/* initial-exec: a thread-local read is one instruction instead of a call to
 * __tls_get_addr, which matters on every allocation */
#define MG_TLS _Thread_local __attribute__((tls_model("initial-exec")))
static MG_TLS int in_hook = 0;
static MG_TLS int probing = 0;
static atomic_llong probe_seen = 0;

/* RAW-domain calls in flight in the record. The RAW domain is called
 * without the GIL too (zlib, thread states), so such a call may be inside the
 * record while end(), holding the GIL, switches counting off and clears it:
 * each says it is inside (and checks again that counting is on) around its
 * work on the record, and end() waits for none to be inside before clearing.
 * The MEM and OBJ domains are called with the GIL held, as end() is: never
 * in flight then, and their hot path pays nothing for this. The call into
 * the allocator below stays outside (tracemalloc's RAW hook may wait for the
 * GIL, which end() holds). */
static atomic_int raw_inside = 0;

static atomic_llong cur_bytes = 0;
static atomic_llong peak_bytes = 0;
static atomic_llong lost_blocks = 0;  /* blocks the set could not hold */

/* ------------------------------------------------------------------------ */
/* The set of counted blocks: shards of open-addressing tables.             */

#define NSHARDS 128
#define MIN_CAP 64

typedef struct {
    uintptr_t key;
    size_t size;
} entry_t;

typedef struct {
    atomic_flag lock;
    entry_t *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count;
    char pad[64 - sizeof(atomic_flag) - sizeof(entry_t *) - 2 * sizeof(size_t)];
} shard_t;

/* The record's own memory is mapped from the kernel, never taken from libc's
 * heap: the leak check reads malloc's bytes in use (glibc's mallinfo2) while a
 * count is open, and records made for the pages a clean function touches
 * would read there as a native leak (20-90 B per call before). Slot arrays
 * are mapped one by one (they grow by doubling, rarely); page records, 512 B
 * each, are cut from 1 MiB chunks and all given back when the count ends. */
static void *
meta_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;  /* zero-filled */
}

static void
meta_unmap(void *p, size_t size)
{
    if (p != NULL) {
        munmap(p, size);
    }
}

static inline void
spin_lock(atomic_flag *flag)
{
    while (atomic_flag_test_and_set_explicit(flag, memory_order_acquire)) {
        /* spin: critical sections are a few dozen instructions */
    }
}

static inline void
spin_unlock(atomic_flag *flag)
{
    atomic_flag_clear_explicit(flag, memory_order_release);
}

#define CHUNK_BYTES ((size_t)1 << 20)
#define CHUNK_HEAD 512                 /* the link to the chunk before, and alignment */
#define SMALL_SLOTS ((size_t)64 << 10)  /* slot arrays up to this size are cut from chunks */
static atomic_flag chunk_lock = ATOMIC_FLAG_INIT;  /* taken inside a shard's lock only */
static char *chunk_head = NULL;  /* newest chunk; its first word links to the one before */
static size_t chunk_used = 0;

/* *size* zeroed bytes (a multiple of 512, at most a chunk's room) from the
 * current chunk, or a new one; NULL when out of memory. Everything cut from
 * chunks is given back at once when the count ends, and the last chunk is
 * kept, zeroed, for the next count: a short limit() block then makes no
 * system call for its records (mapping and unmapping a few hundred of them
 * per block cost 0.1-0.2x of an allocation-heavy block's time). */
static void *
chunk_alloc(size_t size)
{
    spin_lock(&chunk_lock);
    if (chunk_head == NULL || chunk_used + size > CHUNK_BYTES) {
        char *chunk = meta_map(CHUNK_BYTES);
        if (chunk == NULL) {
            spin_unlock(&chunk_lock);
            return NULL;
        }
        *(char **)chunk = chunk_head;
        chunk_head = chunk;
        chunk_used = CHUNK_HEAD;
    }
    void *p = chunk_head + chunk_used;
    chunk_used += size;
    spin_unlock(&chunk_lock);
    return p;
}

static void *
slots_alloc(size_t size)
{
    return size <= SMALL_SLOTS ? chunk_alloc(size) : meta_map(size);
}

static void
slots_free(void *p, size_t size)
{
    if (size > SMALL_SLOTS) {
        meta_unmap(p, size);
    }  /* else: in a chunk, given back with it */
}

static shard_t bigs[NSHARDS];   /* blocks by address: big or unaligned ones */
static shard_t pages[NSHARDS];  /* page -> page_t of 16-bit slots */

static inline uint64_t
hash_ptr(uintptr_t p)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

static inline void
shard_lock(shard_t *s)
{
    spin_lock(&s->lock);
}

static inline void
shard_unlock(shard_t *s)
{
    spin_unlock(&s->lock);
}

/* Insert the entries of one open-addressing table (key 0: empty) into an
 * empty one of *cap* slots, a power of two: the growth of every table here. */
static void
entries_move(const entry_t *from, size_t n, entry_t *to, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (from[i].key != 0) {
            size_t j = hash_ptr(from[i].key) & (cap - 1);
            while (to[j].key != 0) {
                j = (j + 1) & (cap - 1);
            }
            to[j] = from[i];
        }
    }
}

static int
shard_grow(shard_t *s)
{
    size_t ncap = s->cap ? s->cap * 2 : MIN_CAP;
    entry_t *nslots = slots_alloc(ncap * sizeof(entry_t));
    if (nslots == NULL) {
        return -1;
    }
    entries_move(s->slots, s->cap, nslots, ncap);
    slots_free(s->slots, s->cap * sizeof(entry_t));
    s->slots = nslots;
    s->cap = ncap;
    return 0;
}

/* Insert or replace in *table*; returns the replaced value, or -1 if the key
 * was new, or -2 if the table could not grow. */
static long long
table_put(shard_t *table, uintptr_t key, size_t size)
{
    uint64_t h = hash_ptr(key);
    shard_t *s = &table[(h >> 56) % NSHARDS];
    long long old = -1;
    shard_lock(s);
    if ((s->count + 1) * 4 > s->cap * 3 && shard_grow(s) < 0) {
        shard_unlock(s);
        return -2;
    }
    size_t mask = s->cap - 1;
    size_t j = h & mask;
    while (s->slots[j].key != 0 && s->slots[j].key != key) {
        j = (j + 1) & mask;
    }
    if (s->slots[j].key == key) {
        old = (long long)s->slots[j].size;
    } else {
        s->count++;
        s->slots[j].key = key;
    }
    s->slots[j].size = size;
    shard_unlock(s);
    return old;
}

/* The slot of *key* in shard *s* (its lock held), or -1. */
static long long
slot_of(shard_t *s, uintptr_t key, uint64_t h)
{
    if (s->count == 0) {
        return -1;
    }
    size_t mask = s->cap - 1;
    for (size_t j = h & mask; s->slots[j].key != 0; j = (j + 1) & mask) {
        if (s->slots[j].key == key) {
            return (long long)j;
        }
    }
    return -1;
}

/* Remove from *table*; returns the value, or -1 if the key was not there. */
static long long
table_pop(shard_t *table, uintptr_t key)
{
    uint64_t h = hash_ptr(key);
    shard_t *s = &table[(h >> 56) % NSHARDS];
    long long found = -1;
    shard_lock(s);
    long long at = slot_of(s, key, h);
    if (at >= 0) {
        size_t mask = s->cap - 1;
        size_t j = (size_t)at;
        found = (long long)s->slots[j].size;
        /* backward-shift deletion keeps the probe chains whole without tombstones */
        size_t i = j;
        for (;;) {
            s->slots[i].key = 0;
            size_t k = i;
            for (;;) {
                k = (k + 1) & mask;
                if (s->slots[k].key == 0) {
                    goto done;
                }
                size_t home = hash_ptr(s->slots[k].key) & mask;
                /* can slot k move to i? only if its home is not in (i, k] */
                if (i <= k ? (home <= i || home > k) : (home <= i && home > k)) {
                    break;
                }
            }
            s->slots[i] = s->slots[k];
            i = k;
        }
    done:
        s->count--;
    }
    shard_unlock(s);
    return found;
}

/* The value of *key* in *table*, or -1 if it is not there. */
static long long
table_get(shard_t *table, uintptr_t key)
{
    uint64_t h = hash_ptr(key);
    shard_t *s = &table[(h >> 56) % NSHARDS];
    shard_lock(s);
    long long at = slot_of(s, key, h);
    long long found = at >= 0 ? (long long)s->slots[at].size : -1;
    shard_unlock(s);
    return found;
}

static inline long long
big_put(uintptr_t key, size_t size)
{
    return table_put(bigs, key, size);
}

static inline long long
big_pop(uintptr_t key)
{
    return table_pop(bigs, key);
}

/* Empty every shard of *table*. */
static void
table_clear(shard_t *table)
{
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &table[i];
        shard_lock(s);
        slots_free(s->slots, s->cap * sizeof(entry_t));
        s->slots = NULL;
        s->cap = 0;
        s->count = 0;
        shard_unlock(s);
    }
}

/* Line tags (the line profile's "retained"): while a line profile runs, the
 * thread's tracer names the profiled line running in it (tls_tag, set at
 * each traced event; 0 while the tracer's own code runs or no profiled line
 * does), and every block a thread allocates under a non-zero tag is kept in
 * this table, address -> tag, until it is freed. The live bytes of a line are
 * then the sizes (from the record) of the blocks carrying its tag: no
 * traceback is taken, however deep in callees the block was allocated, and
 * other threads' blocks are not the line's. */
static shard_t tagged[NSHARDS];
static atomic_int tag_users = 0;       /* line profiles open (under the GIL) */
static atomic_llong tagged_count = 0;  /* entries in the table (frees look only then) */
static atomic_llong line_peak = 0;     /* the highest count since the last mark() */
static MG_TLS long long tls_tag = 0;

static void
set_clear(void)
{
    table_clear(bigs);
    table_clear(pages);
    table_clear(tagged);
    atomic_store(&tagged_count, 0);
    /* every page record and small slot array goes with its chunk; the
     * newest chunk stays, zeroed where it was used */
    spin_lock(&chunk_lock);
    if (chunk_head != NULL) {
        char *before = *(char **)chunk_head;
        while (before != NULL) {
            char *older = *(char **)before;
            meta_unmap(before, CHUNK_BYTES);
            before = older;
        }
        memset(chunk_head, 0, chunk_used);
        chunk_used = CHUNK_HEAD;
    }
    spin_unlock(&chunk_lock);
}

/* The common case, kept cache-friendly: blocks aligned to 16 bytes (all of
 * pymalloc's and glibc's) are recorded per 4 KiB page, one 16-bit slot per
 * 16-byte granule (no two live blocks start in the same granule): the size
 * plus one, 0 for "not counted", BIG for "in the big set". A page's slots sit
 * in one place, and pymalloc fills a pool's blocks in address order, so an
 * allocation touches a line or two that are already in cache, where a set
 * keyed by block address would miss on nearly every call. Costs 512 bytes per
 * page that holds the start of a counted block, given back when the count
 * ends (but for one 1 MiB chunk, kept for the next count: see chunk_alloc). */
#define PAGE_SHIFT 12
#define GRAN_SHIFT 4
#define PAGE_SLOTS (1 << (PAGE_SHIFT - GRAN_SHIFT))
#define BIG 0xFFFF

typedef struct {
    uint16_t size[PAGE_SLOTS];
} page_t;

static uint16_t *
page_slot(shard_t *s, uintptr_t pk, uint64_t h, int create)
{
    if (s->cap == 0 || (create && (s->count + 1) * 4 > s->cap * 3)) {
        if (!create || shard_grow(s) < 0) {
            return NULL;
        }
    }
    size_t mask = s->cap - 1;
    size_t j = h & mask;
    while (s->slots[j].key != 0 && s->slots[j].key != pk) {
        j = (j + 1) & mask;
    }
    if (s->slots[j].key == 0) {
        if (!create) {
            return NULL;
        }
        page_t *page = chunk_alloc(sizeof(page_t));
        if (page == NULL) {
            return NULL;
        }
        s->slots[j].key = pk;
        s->slots[j].size = (size_t)page;
        s->count++;
    }
    return ((page_t *)s->slots[j].size)->size;
}

/* Record a counted block; returns the size it replaced, -1 if none, -2 if
 * out of memory for the record. */
static long long
set_put(uintptr_t key, size_t size)
{
    if (key & ((1 << GRAN_SHIFT) - 1)) {
        return big_put(key, size);
    }
    uintptr_t pk = (key >> PAGE_SHIFT) | ((uintptr_t)1 << 63);  /* never 0 */
    uint64_t h = hash_ptr(pk);
    shard_t *s = &pages[(h >> 56) % NSHARDS];
    size_t idx = (key >> GRAN_SHIFT) & (PAGE_SLOTS - 1);
    shard_lock(s);
    uint16_t *slots = page_slot(s, pk, h, 1);
    if (slots == NULL) {
        shard_unlock(s);
        return -2;
    }
    uint16_t old = slots[idx];
    slots[idx] = size < BIG - 1 ? (uint16_t)(size + 1) : BIG;
    shard_unlock(s);
    long long replaced = old == 0 ? -1 : old == BIG ? big_pop(key) : (long long)old - 1;
    if (size >= BIG - 1 && big_put(key, size) == -2) {
        return -2;
    }
    return replaced;
}

/* The page record's slot of *key* (0: not counted there), cleared if *clear*. */
static inline uint16_t
page_take(uintptr_t key, int clear)
{
    uintptr_t pk = (key >> PAGE_SHIFT) | ((uintptr_t)1 << 63);
    uint64_t h = hash_ptr(pk);
    shard_t *s = &pages[(h >> 56) % NSHARDS];
    size_t idx = (key >> GRAN_SHIFT) & (PAGE_SLOTS - 1);
    shard_lock(s);
    uint16_t *slots = page_slot(s, pk, h, 0);
    uint16_t old = 0;
    if (slots != NULL) {
        old = slots[idx];
        if (clear) {
            slots[idx] = 0;
        }
    }
    shard_unlock(s);
    return old;
}

/* Forget a block; returns its size, or -1 if it was not counted. */
static long long
set_pop(uintptr_t key)
{
    if (key & ((1 << GRAN_SHIFT) - 1)) {
        return big_pop(key);
    }
    uint16_t old = page_take(key, 1);
    return old == 0 ? -1 : old == BIG ? big_pop(key) : (long long)old - 1;
}

/* The counted size of a block, or -1 if it is not in the record. */
static long long
set_get(uintptr_t key)
{
    if (key & ((1 << GRAN_SHIFT) - 1)) {
        return table_get(bigs, key);
    }
    uint16_t old = page_take(key, 0);
    return old == 0 ? -1 : old == BIG ? table_get(bigs, key) : (long long)old - 1;
}

/* memguard's own code is never a line's: a block allocated with one of its
 * frames innermost (its bookkeeping, or the line table CPython builds for a
 * memguard function the first time it runs under a trace function) keeps no
 * tag, as tracemalloc's tracebacks would leave it out. Decided by the code
 * object's file name (under own_prefix), remembered per code object in a
 * small table used only with the GIL held. */
static PyObject *own_prefix = NULL;
#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
#define OWN_CACHE 1024
static struct {
    PyObject *code;
    int own;
} own_cache[OWN_CACHE];

static int
own_code(PyObject *code)
{
    size_t i = (size_t)(((uintptr_t)code >> 4) * 0x9E3779B97F4A7C15ULL >> 54) % OWN_CACHE;
    if (own_cache[i].code == code) {
        return own_cache[i].own;
    }
    PyObject *file = ((PyCodeObject *)code)->co_filename;
    int own = 0;
    if (own_prefix != NULL && file != NULL && PyUnicode_Check(file)) {
        Py_ssize_t match = PyUnicode_Tailmatch(file, own_prefix, 0, PY_SSIZE_T_MAX, -1);
        own = match == 1;
        if (match < 0) {
            PyErr_Clear();
        }
    }
    own_cache[i].code = code;
    own_cache[i].own = own;
    return own;
}
#endif

/* Whether a block of *size* bytes allocated now is tracing's or memguard's,
 * never a line's: allocated with memguard's own code innermost, or (3.11) the
 * line table CPython builds for a code object the first time it runs under
 * a trace function (2 or 4 bytes per code unit, kept for the code's life;
 * made at the frame's call event, before any of its instructions). */
static int
untagged_here(size_t size)
{
    if (own_prefix == NULL || !PyGILState_Check()) {
        return 0;
    }
    PyThreadState *ts = PyGILState_GetThisThreadState();
    if (ts == NULL) {
        return 0;
    }
#if defined(MG_FRAMES_311)
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
    while (f != NULL && _PyFrame_IsIncomplete(f)) {
        f = f->previous;
    }
    if (f == NULL) {
        return 0;
    }
    PyCodeObject *co = f->f_code;
    if (co->_co_linearray == NULL
        && (size == (size_t)Py_SIZE(co) * 2 || size == (size_t)Py_SIZE(co) * 4)) {
        return 1;
    }
    return own_code((PyObject *)co);
#elif defined(MG_FRAMES_310)
    return ts->frame != NULL && own_code((PyObject *)ts->frame->f_code);
#else
    return 0;  /* newer frames are not read here: memguard's own blocks may keep a tag */
#endif
}

/* A block leaves the record: it leaves the tag table too, if it is there. */
static inline void
untag_block(uintptr_t key)
{
    if (atomic_load_explicit(&tagged_count, memory_order_relaxed)
        && table_pop(tagged, key) >= 0) {
        atomic_fetch_sub_explicit(&tagged_count, 1, memory_order_relaxed);
    }
}

/* A block just put in the record: keep it under the thread's tag, if any. A
 * block replacing a record left by a free the hooks did not see (replaced
 * >= 0) loses that one's tag. */
static inline void
tag_block(uintptr_t key, size_t size, long long replaced)
{
    long long tag = tls_tag;
    if (tag != 0 && atomic_load_explicit(&tag_users, memory_order_relaxed)
        && !untagged_here(size)) {
        if (table_put(tagged, key, (size_t)tag) == -1) {
            atomic_fetch_add_explicit(&tagged_count, 1, memory_order_relaxed);
        }
    } else if (replaced >= 0) {
        untag_block(key);
    }
}

/* ------------------------------------------------------------------------ */
/* Sampling                                                                  */

#define MAX_DEPTH 8
#define SURE_FACTOR 4.0      /* blocks of this many mean intervals are always sampled */
#define SAMPLE_CAP 4096      /* sampled live blocks held at once */
#define CODE_CAP 4096        /* distinct code objects referenced */

typedef struct {
    uintptr_t key;           /* 0: free slot */
    size_t size;
    int depth;
    int code[MAX_DEPTH];     /* index into codes[] */
    int offset[MAX_DEPTH];   /* byte offset of the instruction */
} sample_t;

static atomic_flag sample_lock = ATOMIC_FLAG_INIT;
static int sampling = 0;                   /* sampling on for this count */
static double sample_mean = 0.0;           /* bytes */
/* Bytes left until this thread's next sample: per thread, so that the hot
 * path is a plain subtraction (each thread's allocations are then a Poisson
 * process of their own, which is what the estimate needs). Redrawn when
 * start_sampling() bumps the generation. */
static MG_TLS long long tls_budget = 0;
static MG_TLS unsigned tls_generation = 0;
static atomic_uint sample_generation = 0;
static uint64_t rng_state = 0x853c49e6748fea9bULL;
static sample_t samples[SAMPLE_CAP];
static int n_samples = 0;                  /* slots used (some may be freed: key 0) */
/* A filter of the sampled live blocks' addresses, read on every free
 * without the lock: a count per hash of an address, raised when a block is
 * sampled and lowered when a sample is removed (under sample_lock). A zero
 * means "not sampled" for sure, so a free (the common case by far) skips
 * the lock and the scan of the samples. The counts are lowered as samples
 * go, not left set: pymalloc hands a freed block's address out again at
 * once, so a stale bit at a sampled address that was freed let one free in
 * five through (stdlib-mixed). A live sample's own count keeps its slot
 * above zero until its removal, whatever happens to the other samples that
 * share it; a count that reaches 255 stays there until the next count. */
#define FILTER_SLOTS (1u << 16)
static _Atomic unsigned char filter[FILTER_SLOTS];
static int filter_saturated = 0;           /* under sample_lock */

static inline size_t
filter_slot(uintptr_t key)
{
    return (size_t)(hash_ptr(key) >> 7) & (FILTER_SLOTS - 1);
}

/* sample_lock held */
static inline void
filter_add(uintptr_t key)
{
    _Atomic unsigned char *c = &filter[filter_slot(key)];
    unsigned char n = atomic_load_explicit(c, memory_order_relaxed);
    if (n < 255) {
        atomic_store_explicit(c, (unsigned char)(n + 1), memory_order_relaxed);
    }
    else {
        filter_saturated = 1;
    }
}

/* sample_lock held */
static inline void
filter_remove(uintptr_t key)
{
    _Atomic unsigned char *c = &filter[filter_slot(key)];
    unsigned char n = atomic_load_explicit(c, memory_order_relaxed);
    if (n > 0 && n < 255) {
        atomic_store_explicit(c, (unsigned char)(n - 1), memory_order_relaxed);
    }
}

static inline int
filter_may_hold(uintptr_t key)
{
    return atomic_load_explicit(&filter[filter_slot(key)], memory_order_relaxed) != 0;
}

/* Every sample goes (the end of sampling): the filter back to zeros; sample_lock held. */
static void
filter_clear(void)
{
    if (filter_saturated) {
        for (size_t i = 0; i < FILTER_SLOTS; i++) {
            atomic_store_explicit(&filter[i], 0, memory_order_relaxed);
        }
        filter_saturated = 0;
        return;
    }
    for (int i = 0; i < n_samples; i++) {
        if (samples[i].key != 0) {
            filter_remove(samples[i].key);
        }
    }
}

static long long samples_dropped = 0;
static PyObject *codes[CODE_CAP];          /* strong references, released at end */
static int n_codes = 0;
/* the copy of the sampled live set at the highest capture */
static sample_t captured[SAMPLE_CAP];
static int n_captured = 0;
static long long captured_level = -1;      /* count when copied, -1: never */
static long long capture_above = -1;       /* copy only above this count; -1: never */
static double capture_growth = 1.10;
/* Called (GIL held, in the main thread, between two bytecodes: as soon after
 * the new peak as the interpreter allows) when a copy was made; or, without
 * sampling, when one would have been. Set by set_capture(). */
static PyObject *capture_callback = NULL;
static atomic_int capture_pending = 0;
static atomic_llong trigger_level = 0;

static int
run_capture_callback(void *arg)
{
    (void)arg;
    long long peak_before = atomic_load(&peak_bytes);
    PyObject *callback = capture_callback;
    if (callback != NULL) {
        Py_INCREF(callback);
        PyObject *result = PyObject_CallFunction(callback, "L", atomic_load(&trigger_level));
        Py_DECREF(callback);
        if (result == NULL) {
            /* never raise into the measured code */
            PyErr_WriteUnraisable(callback);
        }
        Py_XDECREF(result);
    }
    /* The callback's own allocations (a snapshot of the traces, freed by
     * now) are memguard's, not the program's: they leave no peak behind, or
     * the next new peak would have to pass them. While the callback ran,
     * capture_pending kept maybe_capture() from moving the capture level. */
    long long now = atomic_load(&cur_bytes);
    atomic_store(&peak_bytes, now > peak_before ? now : peak_before);
    atomic_store(&capture_pending, 0);
    return 0;
}

static inline void
sample_locked(void)
{
    spin_lock(&sample_lock);
}

static inline void
sample_unlocked(void)
{
    spin_unlock(&sample_lock);
}

static double
rng_uniform(void)
{
    /* xorshift64*, under sample_lock */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ULL;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0;  /* (0, 1) */
}

static long long
next_budget(void)
{
    /* exponential with the given mean: -mean * ln(U) */
    double b = -sample_mean * log(rng_uniform());
    return b < 1.0 ? 1 : (long long)b;
}

static int
code_index(PyObject *code)
{
    for (int i = n_codes - 1; i >= 0; i--) {
        if (codes[i] == code) {
            return i;
        }
    }
    if (n_codes == CODE_CAP) {
        return -1;
    }
    Py_INCREF(code);  /* GIL held: only called when PyGILState_Check() */
    codes[n_codes] = code;
    return n_codes++;
}

/* Fill s->code/offset from the current thread's Python frames; GIL held,
 * sample_lock held. Creates no Python object. */
static void
read_stack(sample_t *s)
{
    s->depth = 0;
    PyThreadState *ts = PyGILState_GetThisThreadState();
    if (ts == NULL) {
        return;
    }
#if defined(MG_FRAMES_311)
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
    while (f != NULL && s->depth < MAX_DEPTH) {
        if (!_PyFrame_IsIncomplete(f)) {
            int ci = code_index((PyObject *)f->f_code);
            if (ci < 0) {
                break;
            }
            s->code[s->depth] = ci;
            s->offset[s->depth] = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
            s->depth++;
        }
        f = f->previous;
    }
#elif defined(MG_FRAMES_310)
    PyFrameObject *f = ts->frame;
    while (f != NULL && s->depth < MAX_DEPTH) {
        int ci = code_index((PyObject *)f->f_code);
        if (ci < 0) {
            break;
        }
        s->code[s->depth] = ci;
        s->offset[s->depth] = f->f_lasti * (int)sizeof(_Py_CODEUNIT);
        s->depth++;
        f = f->f_back;
    }
#else
    (void)ts;
#endif
}

/* A block of `size` bytes at `key` was counted: spend the sampling budget. */
static inline void
sample_alloc(uintptr_t key, size_t size)
{
    unsigned generation = atomic_load_explicit(&sample_generation, memory_order_relaxed);
    if (tls_generation != generation) {
        sample_locked();
        tls_budget = next_budget();
        sample_unlocked();
        tls_generation = generation;
    }
    /* A block of SURE_FACTOR intervals or more is sampled for sure (by
     * chance alone, a limit's one 2 MB buffer went unnamed once in two
     * thousand at 256 KiB), stands for its own size, and leaves the budget
     * of the others as it was. */
    int sure = (double)size >= SURE_FACTOR * sample_mean;
    if (!sure) {
        tls_budget -= (long long)size;
        if (tls_budget > 0) {
            return;
        }
    }
    sample_locked();
    /* one sample per crossing; a fresh exponential budget keeps the process
     * memoryless, so a block of s bytes is sampled with 1 - exp(-s/mean) */
    if (!sure) {
        tls_budget = next_budget();
    }
    if (!sampling) {
        sample_unlocked();
        return;
    }
    int slot = -1;
    for (int i = 0; i < n_samples; i++) {
        if (samples[i].key == 0) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        if (n_samples == SAMPLE_CAP) {
            samples_dropped++;
            sample_unlocked();
            return;
        }
        slot = n_samples++;
    }
    sample_t *s = &samples[slot];
    s->key = key;
    s->size = size;
    filter_add(key);
    s->depth = 0;
    if (PyGILState_Check()) {
        read_stack(s);
    }
    sample_unlocked();
}

static inline void
sample_free(uintptr_t key)
{
    if (!filter_may_hold(key)) {
        return;
    }
    sample_locked();
    for (int i = 0; i < n_samples; i++) {
        if (samples[i].key == key) {
            filter_remove(key);
            samples[i].key = 0;
            while (n_samples > 0 && samples[n_samples - 1].key == 0) {
                n_samples--;
            }
            break;
        }
    }
    sample_unlocked();
}

/* A new peak was reached: copy the sampled live set if it is high enough. */
static void
maybe_capture(long long level)
{
    int fire = 0;
    if (atomic_load(&capture_pending)) {
        return;  /* a capture is scheduled or running: it will see this level */
    }
    sample_locked();
    if (capture_above >= 0 && level > capture_above
        && (captured_level < 0 || (double)level >= (double)captured_level * capture_growth)) {
        if (sampling) {
            memcpy(captured, samples, sizeof(sample_t) * (size_t)n_samples);
            n_captured = n_samples;
        }
        captured_level = level;
        fire = capture_callback != NULL;
    }
    sample_unlocked();
    if (fire) {
        atomic_store(&trigger_level, level);
        int expected = 0;
        if (atomic_compare_exchange_strong(&capture_pending, &expected, 1)) {
            /* takes a lock of its own, allocates nothing of Python's */
            if (Py_AddPendingCall(run_capture_callback, NULL) < 0) {
                atomic_store(&capture_pending, 0);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Counting                                                                  */

static inline void
count_add(long long delta)
{
    long long now = atomic_fetch_add_explicit(&cur_bytes, delta, memory_order_relaxed) + delta;
    if (delta <= 0) {
        return;
    }
    if (atomic_load_explicit(&tag_users, memory_order_relaxed)) {
        long long high = atomic_load_explicit(&line_peak, memory_order_relaxed);
        while (now > high
               && !atomic_compare_exchange_weak_explicit(&line_peak, &high, now,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed)) {
        }
    }
    long long peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > peak) {
        if (atomic_compare_exchange_weak_explicit(&peak_bytes, &peak, now,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            if (capture_above >= 0 && now > capture_above) {
                maybe_capture(now);
            }
            break;
        }
    }
}

static inline void
track_new(void *ptr, size_t size)
{
    long long old = set_put((uintptr_t)ptr, size);
    if (old == -2) {
        atomic_fetch_add_explicit(&lost_blocks, 1, memory_order_relaxed);
        return;
    }
    tag_block((uintptr_t)ptr, size, old);
    /* sampled first: a copy made at the new peak this block makes holds it */
    if (sampling) {
        sample_alloc((uintptr_t)ptr, size);
    }
    count_add((long long)size - (old > 0 ? old : 0));
}

static inline void
track_free(void *ptr)
{
    long long old = set_pop((uintptr_t)ptr);
    if (old >= 0) {
        untag_block((uintptr_t)ptr);
        count_add(-old);
        if (sampling && n_samples) {
            sample_free((uintptr_t)ptr);
        }
    }
}

static inline int
raw_enter(void)
{
    atomic_fetch_add(&raw_inside, 1);
    if (atomic_load(&active)) {
        return 1;
    }
    atomic_fetch_sub(&raw_inside, 1);  /* end() has begun: leave the record alone */
    return 0;
}

/* Whether this call may work on the record: always for MEM and OBJ (the GIL
 * is held); for RAW once it has said it is inside (leave with record_leave). */
#define RECORD_ENTER(alloc) ((alloc) != &orig_raw || raw_enter())

static inline void
record_leave(PyMemAllocatorEx *alloc)
{
    if (alloc == &orig_raw) {
        atomic_fetch_sub(&raw_inside, 1);
    }
}

#define ENTER(alloc) \
    PyMemAllocatorEx *alloc = (PyMemAllocatorEx *)ctx; \
    if (in_hook || probing || !atomic_load_explicit(&active, memory_order_relaxed))

static void *
hook_malloc(void *ctx, size_t size)
{
    ENTER(alloc) {
        if (probing) {
            atomic_fetch_add(&probe_seen, 1);
        }
        return alloc->malloc(alloc->ctx, size);
    }
    in_hook = 1;
    void *ptr = alloc->malloc(alloc->ctx, size);
    if (ptr != NULL && RECORD_ENTER(alloc)) {
        track_new(ptr, size);
        record_leave(alloc);
    }
    in_hook = 0;
    return ptr;
}

static void *
hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
    ENTER(alloc) {
        return alloc->calloc(alloc->ctx, nelem, elsize);
    }
    in_hook = 1;
    void *ptr = alloc->calloc(alloc->ctx, nelem, elsize);
    if (ptr != NULL && RECORD_ENTER(alloc)) {
        track_new(ptr, nelem * elsize);
        record_leave(alloc);
    }
    in_hook = 0;
    return ptr;
}

/* The record after a realloc of *ptr* (counted as *old* bytes, -1: not
 * counted) to *ptr2* (NULL: failed, *ptr* unchanged). */
static inline void
track_realloc(void *ptr, void *ptr2, size_t new_size, long long old)
{
    if (ptr2 == NULL) {
        if (old >= 0) {
            set_put((uintptr_t)ptr, (size_t)old);  /* still allocated, unchanged */
        }
        return;
    }
    if (old >= 0 && sampling && n_samples) {
        sample_free((uintptr_t)ptr);
    }
    if (old >= 0) {
        untag_block((uintptr_t)ptr);  /* the new block is tagged as it is allocated now */
    }
    long long prev = set_put((uintptr_t)ptr2, new_size);
    if (prev == -2) {
        atomic_fetch_add_explicit(&lost_blocks, 1, memory_order_relaxed);
        if (old > 0) {
            count_add(-old);
        }
        return;
    }
    tag_block((uintptr_t)ptr2, new_size, prev);
    if (sampling) {
        sample_alloc((uintptr_t)ptr2, new_size);
    }
    count_add((long long)new_size - (old > 0 ? old : 0) - (prev > 0 ? prev : 0));
}

static void *
hook_realloc(void *ctx, void *ptr, size_t new_size)
{
    ENTER(alloc) {
        return alloc->realloc(alloc->ctx, ptr, new_size);
    }
    in_hook = 1;
    /* Out of the set before the block can be freed and handed to another thread. */
    long long old = -1;
    if (ptr != NULL && RECORD_ENTER(alloc)) {
        old = set_pop((uintptr_t)ptr);
        record_leave(alloc);
    }
    void *ptr2 = alloc->realloc(alloc->ctx, ptr, new_size);
    if (RECORD_ENTER(alloc)) {  /* else end() has begun: the record goes, and the count */
        track_realloc(ptr, ptr2, new_size, old);
        record_leave(alloc);
    }
    in_hook = 0;
    return ptr2;
}

static void
hook_free(void *ctx, void *ptr)
{
    ENTER(alloc) {
        alloc->free(alloc->ctx, ptr);
        return;
    }
    if (ptr != NULL) {
        in_hook = 1;
        if (RECORD_ENTER(alloc)) {
            track_free(ptr);  /* before the free: the address may be reused at once */
            record_leave(alloc);
        }
        alloc->free(alloc->ctx, ptr);
        in_hook = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Install and remove                                                        */

static int
is_ours(PyMemAllocatorDomain domain)
{
    PyMemAllocatorEx a;
    PyMem_GetAllocator(domain, &a);
    return a.malloc == hook_malloc;
}

/* Whether our hooks are still in the allocator chain: a RAW malloc made
 * through the public API reaches them wherever they sit. */
static int
probe_chain(void)
{
    long long before = atomic_load(&probe_seen);
    probing = 1;  /* this thread's probe is passed on uncounted */
    void *p = PyMem_RawMalloc(1);
    PyMem_RawFree(p);
    probing = 0;
    return atomic_load(&probe_seen) != before;
}

static void
install(void)
{
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &orig_raw);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &orig_mem);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &orig_obj);
    hook_raw = (PyMemAllocatorEx){&orig_raw, hook_malloc, hook_calloc, hook_realloc, hook_free};
    hook_mem = (PyMemAllocatorEx){&orig_mem, hook_malloc, hook_calloc, hook_realloc, hook_free};
    hook_obj = (PyMemAllocatorEx){&orig_obj, hook_malloc, hook_calloc, hook_realloc, hook_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &hook_raw);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &hook_mem);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hook_obj);
    installed = 1;
}

static void
uninstall_if_on_top(void)
{
    if (is_ours(PYMEM_DOMAIN_RAW) && is_ours(PYMEM_DOMAIN_MEM) && is_ours(PYMEM_DOMAIN_OBJ)) {
        PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &orig_raw);
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &orig_mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &orig_obj);
        installed = 0;
    }
    /* else: a hook installed after ours wraps it; stay in the chain as pass-through */
}

static void
release_codes(void)
{
    for (int i = 0; i < n_codes; i++) {
        Py_CLEAR(codes[i]);
    }
    n_codes = 0;
}

static void
reset_sampling(void)
{
    PyObject *old = capture_callback;
    capture_callback = NULL;
    /* a pending call still queued from the last count finds no callback;
     * it must not hold up the triggers of the next */
    atomic_store(&capture_pending, 0);
    Py_XDECREF(old);
    sample_locked();
    sampling = 0;
    filter_clear();
    n_samples = 0;
    n_captured = 0;
    captured_level = -1;
    capture_above = -1;
    samples_dropped = 0;
    sample_unlocked();
}

/* ------------------------------------------------------------------------ */
/* Python API                                                                */

static PyObject *
mg_begin(PyObject *self, PyObject *args)
{
    if (sessions == 0) {
        if (installed && !probe_chain()) {
            installed = 0;  /* someone removed our hooks (see end()) */
        }
        atomic_store(&cur_bytes, 0);
        atomic_store(&peak_bytes, 0);
        atomic_store(&lost_blocks, 0);
        reset_sampling();
        release_codes();
        if (!installed) {
            install();
        }
        atomic_store(&active, 1);
    }
    sessions++;
    Py_RETURN_NONE;
}

static PyObject *
mg_end(PyObject *self, PyObject *args)
{
    if (sessions == 0) {
        PyErr_SetString(PyExc_RuntimeError, "end() without begin()");
        return NULL;
    }
    int intact = 1;
    if (--sessions == 0) {
        intact = probe_chain();
        atomic_store(&active, 0);
        /* a RAW call from a thread without the GIL may still be in the record */
        while (atomic_load(&raw_inside) != 0) {
            sched_yield();
        }
        reset_sampling();
        release_codes();
        set_clear();
        if (intact) {
            uninstall_if_on_top();
        } else {
            installed = 0;
        }
    }
    return PyBool_FromLong(intact);
}

/* tracemalloc.stop() puts back the allocators it found at its start, which
 * drops hooks installed after it. memguard calls this right after stopping a
 * trace of its own: with sessions open and our hooks gone from the chain,
 * they go back on top of what is there now. Returns whether it re-hooked. */
static PyObject *
mg_rehook(PyObject *self, PyObject *args)
{
    if (sessions > 0) {
        if (!probe_chain()) {
            install();
            Py_RETURN_TRUE;
        }
        Py_RETURN_FALSE;
    }
    /* No count is open: hooks a trace kept in the chain as pass-through
     * (it wrapped them when it started) are on top again now that it has
     * stopped; leave the chain as it was before the first count. */
    if (installed) {
        uninstall_if_on_top();
    }
    Py_RETURN_FALSE;
}

static PyObject *
mg_intact(PyObject *self, PyObject *args)
{
    if (sessions == 0) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(probe_chain());
}

static PyObject *
mg_counts(PyObject *self, PyObject *args)
{
    return Py_BuildValue("(LLL)", atomic_load(&cur_bytes), atomic_load(&peak_bytes),
                         atomic_load(&lost_blocks));
}

static PyObject *
mg_current(PyObject *self, PyObject *args)
{
    return PyLong_FromLongLong(atomic_load(&cur_bytes));
}

static PyObject *
mg_peak(PyObject *self, PyObject *args)
{
    return PyLong_FromLongLong(atomic_load(&peak_bytes));
}

static PyObject *
mg_reset_peak(PyObject *self, PyObject *args)
{
    /* peak = current; done with a store: concurrent growth re-raises it */
    long long now = atomic_load(&cur_bytes);
    atomic_store(&peak_bytes, now);
    return PyLong_FromLongLong(now);
}

static PyObject *
mg_lines_begin(PyObject *self, PyObject *args)
{
    if (sessions == 0) {
        PyErr_SetString(PyExc_RuntimeError, "lines_begin() outside a count");
        return NULL;
    }
    if (atomic_fetch_add(&tag_users, 1) == 0) {
        atomic_store(&line_peak, atomic_load(&cur_bytes));
#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
        memset(own_cache, 0, sizeof(own_cache));  /* code objects may have died since */
#endif
    }
    Py_RETURN_NONE;
}

static PyObject *
mg_set_own_prefix(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "the prefix must be a str");
        return NULL;
    }
    Py_INCREF(arg);
    Py_XSETREF(own_prefix, arg);
#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
    memset(own_cache, 0, sizeof(own_cache));
#endif
    Py_RETURN_NONE;
}

static PyObject *
mg_lines_end(PyObject *self, PyObject *args)
{
    if (atomic_load(&tag_users) <= 0) {
        PyErr_SetString(PyExc_RuntimeError, "lines_end() without lines_begin()");
        return NULL;
    }
    tls_tag = 0;
    if (atomic_fetch_sub(&tag_users, 1) == 1) {
        table_clear(tagged);
        atomic_store(&tagged_count, 0);
    }
    Py_RETURN_NONE;
}

static PyObject *
mg_line_read(PyObject *self, PyObject *args)
{
    /* read, then restart the line peak at the count read: what building the
     * result allocates belongs to the next interval */
    long long now = atomic_load(&cur_bytes);
    long long high = atomic_exchange(&line_peak, now);
    return Py_BuildValue("(LL)", now, high > now ? high : now);
}

static PyObject *
mg_set_tag(PyObject *self, PyObject *arg)
{
    long long tag = PyLong_AsLongLong(arg);
    if (tag == -1 && PyErr_Occurred()) {
        return NULL;
    }
    tls_tag = tag;
    Py_RETURN_NONE;
}

/* {tag: live bytes} of the tagged blocks. The entries are copied out under
 * each shard's lock (building Python objects allocates, which comes back
 * through the hooks and the table), then summed with the sizes the record
 * holds; the thread's tag is 0 meanwhile, so nothing made here is tagged. */
static PyObject *
mg_tag_totals(PyObject *self, PyObject *args)
{
    long long saved = tls_tag;
    tls_tag = 0;
    size_t cap = 1024, n = 0;
    entry_t *copy = malloc(cap * sizeof(entry_t));
    if (copy == NULL) {
        tls_tag = saved;
        return PyErr_NoMemory();
    }
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &tagged[i];
        shard_lock(s);
        if (n + s->count > cap) {
            size_t ncap = cap;
            while (n + s->count > ncap) {
                ncap *= 2;
            }
            entry_t *bigger = realloc(copy, ncap * sizeof(entry_t));
            if (bigger == NULL) {
                shard_unlock(s);
                free(copy);
                tls_tag = saved;
                return PyErr_NoMemory();
            }
            copy = bigger;
            cap = ncap;
        }
        for (size_t j = 0; j < s->cap; j++) {
            if (s->slots[j].key != 0) {
                copy[n++] = s->slots[j];
            }
        }
        shard_unlock(s);
    }
    PyObject *totals = PyDict_New();
    for (size_t k = 0; totals != NULL && k < n; k++) {
        long long size = set_get(copy[k].key);
        if (size < 0) {
            continue;  /* lost by the record: not counted, not counted here */
        }
        PyObject *tag = PyLong_FromLongLong((long long)copy[k].size);
        PyObject *had = tag == NULL ? NULL : PyDict_GetItemWithError(totals, tag);
        long long sum = size;
        if (had != NULL) {
            sum += PyLong_AsLongLong(had);
        }
        PyObject *value = tag == NULL || PyErr_Occurred() ? NULL : PyLong_FromLongLong(sum);
        if (value == NULL || PyDict_SetItem(totals, tag, value) < 0) {
            Py_CLEAR(totals);
        }
        Py_XDECREF(tag);
        Py_XDECREF(value);
    }
    free(copy);
    tls_tag = saved;
    return totals;
}

/* fork_copy(): fork this process for a copy of its state, without running
 * anything of the program's in this process. os.fork() runs the program's
 * before- and after-fork functions here, and warns (3.12+) because memguard's
 * sampler thread exists; here the parent only forks. The child is made a
 * working interpreter (PyOS_AfterFork_Child: the GIL, the thread states, the
 * import lock, and the program's after-fork-in-child functions, harmless in a
 * copy that ends with _exit). Returns 0 in the child, the child's pid in the
 * parent. memguard run's agent copies the traces at a peak in such a child, so
 * the program's process allocates nothing for the copy. */
static PyObject *
mg_fork_copy(PyObject *self, PyObject *args)
{
    pid_t child = fork();
    if (child < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (child == 0) {
        PyOS_AfterFork_Child();
    }
    return PyLong_FromLong((long)child);
}

static PyObject *
mg_sessions(PyObject *self, PyObject *args)
{
    return PyLong_FromLong(sessions);
}

static PyObject *
mg_installed(PyObject *self, PyObject *args)
{
    return PyBool_FromLong(installed);
}

static PyObject *
mg_start_sampling(PyObject *self, PyObject *args)
{
    double mean;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "dK", &mean, &seed)) {
        return NULL;
    }
    if (!(mean >= 1.0)) {
        PyErr_SetString(PyExc_ValueError, "the sampling interval must be at least 1 byte");
        return NULL;
    }
    sample_locked();
    sample_mean = mean;
    rng_state = seed ? seed : 0x853c49e6748fea9bULL;
    sampling = 1;
    atomic_fetch_add(&sample_generation, 1);
    sample_unlocked();
    Py_RETURN_NONE;
}

static PyObject *
mg_set_capture(PyObject *self, PyObject *args)
{
    long long above;
    double growth;
    PyObject *callback = Py_None;
    if (!PyArg_ParseTuple(args, "Ld|O", &above, &growth, &callback)) {
        return NULL;
    }
    PyObject *old = capture_callback;
    if (callback != Py_None) {
        Py_INCREF(callback);
    }
    sample_locked();
    capture_above = above;
    capture_growth = growth;
    captured_level = -1;
    n_captured = 0;
    capture_callback = callback == Py_None ? NULL : callback;
    sample_unlocked();
    Py_XDECREF(old);
    /* the count may already be above the level */
    long long now = atomic_load(&cur_bytes);
    if (above >= 0 && now > above && now >= atomic_load(&peak_bytes)) {
        maybe_capture(now);
    }
    Py_RETURN_NONE;
}

static PyObject *
stack_list(const sample_t *s)
{
    PyObject *frames = PyList_New(0);
    if (frames == NULL) {
        return NULL;
    }
    for (int d = 0; d < s->depth; d++) {
        PyCodeObject *code = (PyCodeObject *)codes[s->code[d]];
        int line = PyCode_Addr2Line(code, s->offset[d]);
        PyObject *item = Py_BuildValue("(OOi)", code->co_filename, code->co_name, line);
        if (item == NULL || PyList_Append(frames, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(frames);
            return NULL;
        }
        Py_DECREF(item);
    }
    return frames;
}

static PyObject *
sample_rows(const sample_t *set, int n)
{
    PyObject *rows = PyList_New(0);
    if (rows == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (set[i].key == 0) {
            continue;
        }
        PyObject *frames = stack_list(&set[i]);
        if (frames == NULL) {
            Py_DECREF(rows);
            return NULL;
        }
        PyObject *row = Py_BuildValue("(nN)", (Py_ssize_t)set[i].size, frames);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    return rows;
}

/* Copy under the lock into a C buffer, then build Python objects unlocked
 * (building them allocates, which comes back through the hooks). */
static PyObject *
rows_of(int which)
{
    sample_t *copy = malloc(sizeof(sample_t) * SAMPLE_CAP);
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    long long level;
    int n;
    sample_locked();
    if (which) {
        n = n_captured;
        memcpy(copy, captured, sizeof(sample_t) * (size_t)n);
        level = captured_level;
    } else {
        n = n_samples;
        memcpy(copy, samples, sizeof(sample_t) * (size_t)n);
        level = atomic_load(&cur_bytes);
    }
    long long dropped = samples_dropped;
    double mean = sample_mean;
    sample_unlocked();
    PyObject *rows = sample_rows(copy, n);
    free(copy);
    if (rows == NULL) {
        return NULL;
    }
    return Py_BuildValue("(LNdL)", level, rows, mean, dropped);
}

static PyObject *
mg_captured(PyObject *self, PyObject *args)
{
    return rows_of(1);
}

static PyObject *
mg_sampled_live(PyObject *self, PyObject *args)
{
    return rows_of(0);
}

/* ------------------------------------------------------------------------ */
/* The census                                                                */

/* Live objects counted by type, with no Python object made per object
 * counted: while tracemalloc traces, every allocation is a traced one (a
 * census under a trace took 2.3-3.5 times as long as without), and the
 * counter counts them too. The tables here are libc's (malloc), which no
 * Python allocator hook sees, and are freed before the call returns. The
 * walk is memguard.objects' (see _count_untracked there) step for step, so
 * both paths give the same counts: the untracked referents of tracked
 * objects, then level by level the items of the untracked dicts and tuples
 * among them; an object with one reference is counted where it is met, the
 * others once each, by address. No Python code runs during the walk (the
 * GIL is held and nothing is allocated from Python's heap), so the borrowed
 * pointers stay valid until the result is built. */

typedef struct {
    entry_t *cells;     /* key (0: empty) -> a count, in .size */
    size_t cap;         /* power of two, or 0 */
    size_t count;
} ptable_t;

typedef struct {
    PyObject **items;   /* borrowed */
    size_t n, cap;
} vec_t;

typedef struct {
    ptable_t by_type;   /* type -> count */
    ptable_t shared;    /* objects with several references, each once */
    ptable_t nested;    /* untracked containers met at this level, each once */
    vec_t next;         /* the same, in order: the next level's holders */
    int failed;         /* out of memory */
} census_t;

static int
ptable_grow(ptable_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    entry_t *cells = calloc(ncap, sizeof(entry_t));
    if (cells == NULL) {
        return -1;
    }
    entries_move(t->cells, t->cap, cells, ncap);
    free(t->cells);
    t->cells = cells;
    t->cap = ncap;
    return 0;
}

/* The cell of *key*, made (count 0) if absent; NULL when out of memory. */
static entry_t *
ptable_get(ptable_t *t, uintptr_t key)
{
    if ((t->count + 1) * 4 > t->cap * 3 && ptable_grow(t) < 0) {
        return NULL;
    }
    size_t mask = t->cap - 1;
    size_t j = hash_ptr(key) & mask;
    while (t->cells[j].key != 0 && t->cells[j].key != key) {
        j = (j + 1) & mask;
    }
    if (t->cells[j].key == 0) {
        t->cells[j].key = key;
        t->count++;
    }
    return &t->cells[j];
}

static void
ptable_clear(ptable_t *t)
{
    if (t->cells != NULL) {
        memset(t->cells, 0, t->cap * sizeof(entry_t));
    }
    t->count = 0;
}

static int
vec_push(vec_t *v, PyObject *o)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 1024;
        PyObject **items = realloc(v->items, ncap * sizeof(PyObject *));
        if (items == NULL) {
            return -1;
        }
        v->items = items;
        v->cap = ncap;
    }
    v->items[v->n++] = o;
    return 0;
}

static void
census_add(census_t *c, PyObject *o)
{
    entry_t *cell = ptable_get(&c->by_type, (uintptr_t)Py_TYPE(o));
    if (cell == NULL) {
        c->failed = 1;
        return;
    }
    cell->size++;
}

static int
census_visit(PyObject *o, void *arg)
{
    census_t *c = (census_t *)arg;
    if (c->failed || PyObject_GC_IsTracked(o)) {
        return 0;
    }
    if (Py_REFCNT(o) == 1) {
        census_add(c, o);
    } else {
        entry_t *cell = ptable_get(&c->shared, (uintptr_t)o);
        if (cell == NULL) {
            c->failed = 1;
            return 0;
        }
        cell->size = 1;
    }
    if (Py_IS_TYPE(o, &PyDict_Type) || Py_IS_TYPE(o, &PyTuple_Type)) {
        entry_t *cell = ptable_get(&c->nested, (uintptr_t)o);
        if (cell == NULL) {
            c->failed = 1;
            return 0;
        }
        if (cell->size == 0) {
            cell->size = 1;
            if (vec_push(&c->next, o) < 0) {
                c->failed = 1;
            }
        }
    }
    return 0;
}

static void
census_traverse(census_t *c, PyObject *o)
{
    if (PyObject_IS_GC(o)) {
        traverseproc traverse = Py_TYPE(o)->tp_traverse;
        if (traverse != NULL) {
            traverse(o, census_visit, c);
        }
    }
}

static PyObject *
mg_census(PyObject *self, PyObject *args)
{
    PyObject *tracked;
    int untracked;
    if (!PyArg_ParseTuple(args, "O!p:census", &PyList_Type, &tracked, &untracked)) {
        return NULL;
    }
    census_t c;
    memset(&c, 0, sizeof(c));
    vec_t level = {NULL, 0, 0};
    Py_ssize_t n = PyList_GET_SIZE(tracked);
    for (Py_ssize_t i = 0; i < n && !c.failed; i++) {
        census_add(&c, PyList_GET_ITEM(tracked, i));
    }
    if (untracked) {
        for (Py_ssize_t i = 0; i < n && !c.failed; i++) {
            census_traverse(&c, PyList_GET_ITEM(tracked, i));
        }
        while (c.next.n > 0 && !c.failed) {
            vec_t swap = level;
            level = c.next;
            c.next = swap;
            c.next.n = 0;
            ptable_clear(&c.nested);
            for (size_t i = 0; i < level.n && !c.failed; i++) {
                census_traverse(&c, level.items[i]);
            }
        }
        for (size_t i = 0; i < c.shared.cap && !c.failed; i++) {
            if (c.shared.cells[i].key != 0) {
                census_add(&c, (PyObject *)c.shared.cells[i].key);
            }
        }
    }
    free(level.items);
    free(c.next.items);
    free(c.shared.cells);
    free(c.nested.cells);
    if (c.failed) {
        free(c.by_type.cells);
        return PyErr_NoMemory();
    }
    /* Building the result allocates, which may run a collection and free a
     * type whose last instances were garbage: hold every type first. */
    for (size_t i = 0; i < c.by_type.cap; i++) {
        if (c.by_type.cells[i].key != 0) {
            Py_INCREF((PyObject *)c.by_type.cells[i].key);
        }
    }
    PyObject *result = PyDict_New();
    for (size_t i = 0; i < c.by_type.cap; i++) {
        PyObject *key = (PyObject *)c.by_type.cells[i].key;
        if (key == NULL) {
            continue;
        }
        if (result != NULL) {
            PyObject *count = PyLong_FromSize_t(c.by_type.cells[i].size);
            if (count == NULL || PyDict_SetItem(result, key, count) < 0) {
                Py_CLEAR(result);
            }
            Py_XDECREF(count);
        }
        Py_DECREF(key);
    }
    free(c.by_type.cells);
    return result;
}

/* ------------------------------------------------------------------------ */
/* The line profiler's trace function, in C                                  */

#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
/* sys.settrace() calls a Python trace function for every call in the thread
 * (and, before each call, copies the frame's variables into its locals
 * mapping): a line profile paid that for every call made inside a profiled
 * line, and `memguard run --lines` for every call of the whole program. This
 * trace function decides in C whether a call is the profiler's: the tracer
 * (`obj` is its bound method on_call, so sys.gettrace() still returns it)
 * keeps a tuple `_filter` = (by_code, roots, rejected, flags): the profiled
 * code objects, the profiled root frames, the code objects every matcher
 * turned down, and a bytearray (any matcher set; the running traced frame
 * may expand its callees). A call that is none of these is passed over with
 * no Python code run; every other event goes to Python as sys.settrace()
 * would send it, without the locals copy (the profiler never reads them). */
static PyObject *event_names[8];
static PyObject *filter_name;

/* Code objects passed over lately: hashing a code object (what a set or dict
 * lookup does) hashes its constants and names every time, which cost more
 * than the rest of the decision. An entry holds for the filter (one per
 * thread's tracer) and the generation (flags[2:6], a number the tracer takes
 * from a process-wide count whenever its codes, roots or matchers change) it
 * was made under. Used with the GIL held (a trace function), like the tables
 * it stands for. */
#define PASS_CACHE 1024
static struct {
    PyObject *code;
    PyObject *filter;
    uint32_t generation;
} pass_cache[PASS_CACHE];

/* 1: the call is not the profiler's (no local tracing); 0: ask Python. */
static int
call_passed_over(PyObject *obj, PyFrameObject *frame)
{
    if (!PyMethod_Check(obj)) {
        return 0;
    }
    PyObject *filter = PyObject_GetAttr(PyMethod_GET_SELF(obj), filter_name);
    if (filter == NULL) {
        PyErr_Clear();
        return 0;
    }
    int passed = 0;
    if (PyTuple_Check(filter) && PyTuple_GET_SIZE(filter) == 4
        && PyByteArray_Check(PyTuple_GET_ITEM(filter, 3))
        && PyByteArray_GET_SIZE(PyTuple_GET_ITEM(filter, 3)) >= 6) {
        PyObject *by_code = PyTuple_GET_ITEM(filter, 0);
        PyObject *roots = PyTuple_GET_ITEM(filter, 1);
        PyObject *rejected = PyTuple_GET_ITEM(filter, 2);
        const unsigned char *flags =
            (const unsigned char *)PyByteArray_AS_STRING(PyTuple_GET_ITEM(filter, 3));
        uint32_t generation = (uint32_t)flags[2] | (uint32_t)flags[3] << 8
                              | (uint32_t)flags[4] << 16 | (uint32_t)flags[5] << 24;
        PyObject *code = (PyObject *)PyFrame_GetCode(frame);
        size_t at = ((uintptr_t)code >> 4) % PASS_CACHE;
        if (flags[1]) {
            passed = 0;  /* the running frame expands its callees: every call is asked */
        } else if (pass_cache[at].code == code && pass_cache[at].filter == filter
                   && pass_cache[at].generation == generation && PyDict_GET_SIZE(roots) == 0) {
            passed = 1;
        } else {
            passed = (!flags[0] || PySet_Contains(rejected, code) == 1)
                     && PyDict_Contains(by_code, code) == 0
                     && (PyDict_GET_SIZE(roots) == 0
                         || PyDict_Contains(roots, (PyObject *)frame) == 0);
            if (PyErr_Occurred()) {
                PyErr_Clear();
                passed = 0;
            }
            if (passed) {
                pass_cache[at].code = code;
                pass_cache[at].filter = filter;
                pass_cache[at].generation = generation;
            }
        }
        Py_DECREF(code);
    }
    Py_DECREF(filter);
    return passed;
}

static int
line_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    PyObject *callback;
    if (what == PyTrace_CALL) {
        if (call_passed_over(obj, frame)) {
            return 0;
        }
        callback = obj;
    } else {
        callback = frame->f_trace;
    }
    if (callback == NULL || what < 0 || what > 7) {
        return 0;
    }
    Py_INCREF(callback);
    PyObject *result = PyObject_CallFunctionObjArgs(callback, (PyObject *)frame,
                                                    event_names[what],
                                                    arg != NULL ? arg : Py_None, NULL);
    Py_DECREF(callback);
    if (result == NULL) {  /* as sys.settrace(): a failing trace function is removed */
        PyEval_SetTrace(NULL, NULL);
        Py_CLEAR(frame->f_trace);
        return -1;
    }
    if (result != Py_None) {
        Py_XSETREF(frame->f_trace, result);
    } else {
        Py_DECREF(result);
    }
    return 0;
}

/* The profile function of a dormant line tracer (a LineTarget's, while no
 * profiled frame runs): with no trace function set, CPython neither computes
 * line numbers nor calls anything per line, and this sees calls only. A call
 * that is the profiler's wakes the tracer: on_call is called as the trace
 * function would call it, and if it traces the frame, the trace function is
 * installed (the tracer puts itself back to sleep when its last traced frame
 * returns). While a trace function runs, it sees the calls itself; one that
 * is not ours (someone called sys.settrace) is left alone. */
static int
line_profile_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    (void)arg;
    if (what != PyTrace_CALL) {
        return 0;
    }
    PyThreadState *ts = PyThreadState_Get();
    if (ts->c_tracefunc != NULL || call_passed_over(obj, frame)) {
        return 0;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(obj, (PyObject *)frame, event_names[0],
                                                    Py_None, NULL);
    if (result == NULL) {
        PyEval_SetProfile(NULL, NULL);
        return -1;
    }
    if (result == Py_None) {
        Py_DECREF(result);
        return 0;
    }
    if (ts->c_tracefunc == NULL) {
        PyEval_SetTrace(line_trace, obj);
    }
    Py_XSETREF(frame->f_trace, result);
    return 0;
}

/* Install *hook* with *on_call* through *set* (PyEval_SetTrace or
 * PyEval_SetProfile), or remove what is there when *on_call* is None. */
static PyObject *
set_hook(void (*set)(Py_tracefunc, PyObject *), Py_tracefunc hook, PyObject *on_call)
{
    if (on_call == Py_None) {
        set(NULL, NULL);
    } else {
        set(hook, on_call);
    }
    Py_RETURN_NONE;
}

static PyObject *
mg_setprofile(PyObject *self, PyObject *on_call)
{
    return set_hook(PyEval_SetProfile, line_profile_hook, on_call);
}

static PyObject *
mg_settrace(PyObject *self, PyObject *on_call)
{
    return set_hook(PyEval_SetTrace, line_trace, on_call);
}

static int
init_trace_names(void)
{
    static const char *names[8] = {"call", "exception", "line", "return",
                                   "c_call", "c_exception", "c_return", "opcode"};
    for (int i = 0; i < 8; i++) {
        event_names[i] = PyUnicode_InternFromString(names[i]);
        if (event_names[i] == NULL) {
            return -1;
        }
    }
    filter_name = PyUnicode_InternFromString("_filter");
    return filter_name == NULL ? -1 : 0;
}
#endif

static PyMethodDef methods[] = {
    {"begin", mg_begin, METH_NOARGS, "Open a counting session (install the hooks on the first)."},
    {"end", mg_end, METH_NOARGS,
     "Close a session; on the last, remove the hooks if on top. Returns whether the hooks "
     "were still in the allocator chain."},
    {"intact", mg_intact, METH_NOARGS, "Whether the hooks still see allocations."},
    {"rehook", mg_rehook, METH_NOARGS,
     "Put the hooks back on top if a tracemalloc.stop() dropped them while a session is open."},
    {"counts", mg_counts, METH_NOARGS, "(current, peak, lost_blocks) since the count began."},
    {"current", mg_current, METH_NOARGS, "Bytes in use, counted since the count began."},
    {"peak", mg_peak, METH_NOARGS, "The highest current since the count began or reset."},
    {"reset_peak", mg_reset_peak, METH_NOARGS, "Set the peak to the current count; return it."},
    {"sessions", mg_sessions, METH_NOARGS, "How many sessions are open."},
    {"fork_copy", mg_fork_copy, METH_NOARGS,
     "Fork without running the program's fork functions here: 0 in the child, its pid here."},
    {"lines_begin", mg_lines_begin, METH_NOARGS,
     "Start tagging blocks with the thread's line tag, and the line peak (counted)."},
    {"lines_end", mg_lines_end, METH_NOARGS,
     "Undo one lines_begin(); the last one forgets every tag."},
    {"line_read", mg_line_read, METH_NOARGS,
     "(current, line peak) now; the line peak restarts at current."},
    {"set_tag", mg_set_tag, METH_O, "Set this thread's line tag (0: none)."},
    {"set_own_prefix", mg_set_own_prefix, METH_O,
     "Blocks allocated by code under this path (memguard's) are never tagged."},
    {"tag_totals", mg_tag_totals, METH_NOARGS, "{tag: live bytes} of the tagged blocks."},
#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
    {"settrace", mg_settrace, METH_O,
     "Install the line profiler's trace function in C for this thread (None: remove)."},
    {"setprofile", mg_setprofile, METH_O,
     "Install a dormant line profiler's call watcher for this thread (None: remove)."},
#endif
    {"installed", mg_installed, METH_NOARGS, "Whether the hooks are in the allocator chain."},
    {"start_sampling", mg_start_sampling, METH_VARARGS,
     "start_sampling(mean_bytes, seed): sample blocks by bytes until the count ends."},
    {"set_capture", mg_set_capture, METH_VARARGS,
     "set_capture(above_bytes, growth, callback=None): at each new peak above above_bytes "
     "that is growth times the last, copy the sampled live set and schedule "
     "callback(level) as a pending call (-1: never)."},
    {"captured", mg_captured, METH_NOARGS,
     "(level, [(size, [(filename, name, line), ...]), ...], mean, dropped) at the highest copy."},
    {"sampled_live", mg_sampled_live, METH_NOARGS, "The sampled live set now, as captured()."},
    {"census", mg_census, METH_VARARGS,
     "census(tracked, untracked): {type: count} of the objects in the list *tracked* and, "
     "if *untracked*, of the untracked objects they hold (memguard.objects' walk)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memguard._native",
    "An exact allocation counter for the Python heap (see memguard._counter).", -1, methods,
};

/* ------------------------------------------------------------------------ */
/* fork                                                                      */

/* Another thread may hold a shard's or the sample set's spinlock at the
 * moment of fork() (the RAW domain is called without the GIL); the child,
 * which has only the forking thread, would then spin forever on its first
 * counted allocation. The forking thread takes every lock before the fork,
 * in the one order any section nests them (a shard's lock, then the chunk
 * lock for a new page record), and both sides release them after it, so the
 * child starts with every table whole and unlocked. */
static void
atfork_prepare(void)
{
    sample_locked();
    for (int i = 0; i < NSHARDS; i++) {
        shard_lock(&bigs[i]);
        shard_lock(&pages[i]);
        shard_lock(&tagged[i]);
    }
    spin_lock(&chunk_lock);
}

static void
atfork_release(void)
{
    spin_unlock(&chunk_lock);
    for (int i = NSHARDS - 1; i >= 0; i--) {
        shard_unlock(&tagged[i]);
        shard_unlock(&pages[i]);
        shard_unlock(&bigs[i]);
    }
    sample_unlocked();
}

PyMODINIT_FUNC
PyInit__native(void)
{
    static int atfork_registered = 0;
    if (!atfork_registered) {
        if (pthread_atfork(atfork_prepare, atfork_release, atfork_release) != 0) {
            PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
            return NULL;
        }
        atfork_registered = 1;
    }
#if defined(MG_FRAMES_311) || defined(MG_FRAMES_310)
    if (init_trace_names() < 0) {
        return NULL;
    }
#endif
    PyObject *created = PyModule_Create(&module);
    PyObject *factor = PyFloat_FromDouble(SURE_FACTOR);
    if (created == NULL || factor == NULL
        || PyModule_AddObjectRef(created, "SURE_FACTOR", factor) < 0) {
        Py_XDECREF(factor);
        Py_XDECREF(created);
        return NULL;
    }
    Py_DECREF(factor);
    return created;
}
