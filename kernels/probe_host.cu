// probe_host.cu - fp4k_probe_mma: validates a probe request, checks that
// this GPU can run the instruction (before launching anything), turns the
// operand codes into 32-byte row images (probe_common.cuh), runs the
// family's kernel and copies D back.
#include "probe_common.cuh"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>


fp4k_status fp4k_probe_cuda_fail(cudaError_t e, const char *what) {
    return fp4k_fail(FP4K_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

static bool elem_is_4bit(fp4k_elem e) { return e == FP4K_ELEM_4_PACKED || e == FP4K_ELEM_4_IN_8; }

// E2M1 operands arrive one code per byte; anything above 0xF would be
// silently truncated by the packing, so it is refused.
static fp4k_status check_4bit_codes(const uint8_t *codes, int64_t n, const char *which) {
    for (int64_t i = 0; i < n; i++)
        if (codes[i] > 0xF)
            return fp4k_fail(FP4K_ERR_ARG,
                              "probe: %s code %lld is 0x%02X, not an E2M1 code (0..0xF)", which,
                              static_cast<long long>(i), codes[i]);
    return FP4K_OK;
}

static fp4k_status check_request(const fp4k_probe_req *r, const uint32_t *d,
                                 const fp4k_probe_desc **out) {
    if (!r || !d) return fp4k_fail(FP4K_ERR_ARG, "probe: null request or output");
    const fp4k_probe_desc *desc = fp4k_probe_info(r->instr);
    if (!desc)
        return fp4k_fail(FP4K_ERR_ARG, "probe: unknown instruction %d",
                          static_cast<int>(r->instr));
    if (r->tiles < 1 || r->tiles > (1 << 22))
        return fp4k_fail(FP4K_ERR_ARG, "probe: tiles must be in 1..%d, got %lld", 1 << 22,
                          static_cast<long long>(r->tiles));
    if (!r->a || !r->b || !r->c) return fp4k_fail(FP4K_ERR_ARG, "probe: null A, B or C");
    if (desc->scale_block && (!r->sa || !r->sb))
        return fp4k_fail(FP4K_ERR_ARG, "probe: %s is block-scaled and needs SFA and SFB",
                          desc->name);
    fp4k_status st = FP4K_OK;
    if (elem_is_4bit(desc->elem)) {
        st =
            check_4bit_codes(static_cast<const uint8_t *>(r->a), r->tiles * desc->m * desc->k, "A");
        if (st == FP4K_OK)
            st = check_4bit_codes(static_cast<const uint8_t *>(r->b), r->tiles * desc->n * desc->k,
                                  "B");
    }
    *out = desc;
    return st;
}

// ---------------------------------------------------------------------------
// Can this GPU run it?
// ---------------------------------------------------------------------------

static const void *probe_kernel(fp4k_probe_instr instr) {
    const void *k = fp4k_probe_kernel_sm90(instr);
    if (!k) k = fp4k_probe_kernel_sm100(instr);
    if (!k) k = fp4k_probe_kernel_sm120(instr);
    return k;
}

// Refuses, before any launch, an instruction this GPU lacks (wrong
// architecture) or one whose kernel has no image for this GPU (fp4sim built
// for other CMAKE_CUDA_ARCHITECTURES).
static fp4k_status check_arch(const fp4k_probe_desc *desc, const void *kernel) {
    int dev = 0;
    cudaDeviceProp p;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&p, dev);
    if (e != cudaSuccess) return fp4k_probe_cuda_fail(e, "cudaGetDeviceProperties");
    if (desc->cc_major && p.major != desc->cc_major)
        return fp4k_fail(FP4K_ERR_ARCH,
                          "%s needs sm_%d%da (compute capability %d.%d); this GPU is sm_%d%d (%s)",
                          desc->name, desc->cc_major, desc->cc_minor, desc->cc_major,
                          desc->cc_minor, p.major, p.minor, p.name);
    if (!desc->cc_major && desc->elem != FP4K_ELEM_16 && p.major * 10 + p.minor < 89)
        return fp4k_fail(FP4K_ERR_ARCH, "%s needs sm_89 or newer; this GPU is sm_%d%d (%s)",
                          desc->name, p.major, p.minor, p.name);
    cudaFuncAttributes attr;
    e = cudaFuncGetAttributes(&attr, kernel);
    if (e != cudaSuccess) {
        cudaGetLastError(); // clear the sticky launch-configuration error
        return fp4k_fail(
            FP4K_ERR_ARCH,
            "%s: fp4sim's kernels have no code for this GPU, sm_%d%d (%s): %s; rebuild with "
            "-DCMAKE_CUDA_ARCHITECTURES=%d%da",
            desc->name, p.major, p.minor, p.name, cudaGetErrorString(e), p.major, p.minor);
    }
    return FP4K_OK;
}

// ---------------------------------------------------------------------------
// Row images
// ---------------------------------------------------------------------------

static uint32_t code_at(fp4k_elem e, const void *codes, int64_t i) {
    return e == FP4K_ELEM_16 ? static_cast<const uint16_t *>(codes)[i]
                             : static_cast<const uint8_t *>(codes)[i];
}

// One operand row of K codes as the instruction reads it (32 bytes).
static void pack_row(fp4k_elem e, int k, const void *codes, int64_t first, uint8_t *img) {
    memset(img, 0, FP4K_ROW_BYTES);
    for (int j = 0; j < k; j++) {
        const uint32_t c = code_at(e, codes, first + j);
        switch (e) {
        case FP4K_ELEM_16: // little-endian halves: element j in bits 16j..16j+15 of the row
            img[2 * j] = static_cast<uint8_t>(c);
            img[2 * j + 1] = static_cast<uint8_t>(c >> 8);
            break;
        case FP4K_ELEM_8:
            img[j] = static_cast<uint8_t>(c);
            break;
        case FP4K_ELEM_4_PACKED: // lower K in the low nibble (numerics.md §2.10)
            img[j / 2] |= static_cast<uint8_t>((c & 0xFu) << (4 * (j & 1)));
            break;
        case FP4K_ELEM_4_IN_8: // "central 4 bits of the 8-bit container" (PTX ISA 9.1 §9.7.14.5.10)
            img[j] = static_cast<uint8_t>((c & 0xFu) << 2);
            break;
        }
    }
}

static std::vector<uint8_t> pack_rows(const fp4k_probe_desc *d, const void *codes, int64_t rows) {
    std::vector<uint8_t> img(static_cast<size_t>(rows) * FP4K_ROW_BYTES);
    for (int64_t r = 0; r < rows; r++)
        pack_row(d->elem, d->k, codes, r * d->k, &img[static_cast<size_t>(r) * FP4K_ROW_BYTES]);
    return img;
}

// The K/16 scales of a row as one word, byte j = chunk j.
static std::vector<uint32_t> pack_scales(const uint8_t *s, int64_t rows, int per_row) {
    std::vector<uint32_t> w(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; r++) {
        uint32_t v = 0;
        for (int j = 0; j < per_row; j++) v |= static_cast<uint32_t>(s[r * per_row + j]) << (8 * j);
        w[static_cast<size_t>(r)] = v;
    }
    return w;
}

// ---------------------------------------------------------------------------
// Launch
// ---------------------------------------------------------------------------

// Device copies of everything a launch needs; freed by the destructor.
struct device_buffers {
    std::vector<void *> owned;
    ~device_buffers() {
        for (void *p : owned) cudaFree(p);
    }
    template <typename T> cudaError_t upload(const T *host, size_t n, const T **dev) {
        void *p = nullptr;
        cudaError_t e = cudaMalloc(&p, n * sizeof(T));
        if (e != cudaSuccess) return e;
        owned.push_back(p);
        *dev = static_cast<const T *>(p);
        return cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice);
    }
    template <typename T> cudaError_t alloc_zero(size_t n, T **dev) {
        void *p = nullptr;
        cudaError_t e = cudaMalloc(&p, n * sizeof(T));
        if (e != cudaSuccess) return e;
        owned.push_back(p);
        *dev = static_cast<T *>(p);
        return cudaMemset(p, 0, n * sizeof(T));
    }
};

static cudaError_t launch(fp4k_probe_instr instr, const fp4k_probe_args &a) {
    cudaError_t e = fp4k_probe_launch_sm90(instr, a);
    if (e == cudaErrorInvalidValue) e = fp4k_probe_launch_sm100(instr, a);
    if (e == cudaErrorInvalidValue) e = fp4k_probe_launch_sm120(instr, a);
    return e == cudaSuccess ? cudaDeviceSynchronize() : e;
}

static fp4k_status run(const fp4k_probe_req *r, const fp4k_probe_desc *d, uint32_t *out) {
    const int64_t t = r->tiles, outs = t * d->m * d->n;
    const std::vector<uint8_t> a = pack_rows(d, r->a, t * d->m), b = pack_rows(d, r->b, t * d->n);
    device_buffers buf;
    fp4k_probe_args args;
    memset(&args, 0, sizeof args);
    args.tiles = t;
    cudaError_t e = buf.upload(a.data(), a.size(), &args.a);
    if (e == cudaSuccess) e = buf.upload(b.data(), b.size(), &args.b);
    if (e == cudaSuccess) e = buf.upload(r->c, static_cast<size_t>(outs), &args.c);
    if (e == cudaSuccess && d->scale_block) {
        const std::vector<uint32_t> sa = pack_scales(r->sa, t * d->m, d->k / d->scale_block);
        const std::vector<uint32_t> sb = pack_scales(r->sb, t * d->n, d->k / d->scale_block);
        e = buf.upload(sa.data(), sa.size(), &args.sfa);
        if (e == cudaSuccess) e = buf.upload(sb.data(), sb.size(), &args.sfb);
    }
    if (e == cudaSuccess) e = buf.alloc_zero(static_cast<size_t>(outs), &args.d);
    if (e == cudaSuccess) e = buf.alloc_zero(1, &args.missing);
    if (e == cudaSuccess) e = launch(r->instr, args);
    int missing = 0;
    if (e == cudaSuccess)
        e = cudaMemcpy(out, args.d, static_cast<size_t>(outs) * sizeof(uint32_t),
                       cudaMemcpyDeviceToHost);
    if (e == cudaSuccess)
        e = cudaMemcpy(&missing, args.missing, sizeof missing, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) return fp4k_probe_cuda_fail(e, d->name);
    if (missing)
        return fp4k_fail(
            FP4K_ERR_ARCH,
            "%s: the kernel that ran was compiled without the instruction for this GPU's "
            "architecture (it exists on %s)",
            d->name,
            d->cc_major == 9    ? "sm_90a"
            : d->cc_major == 10 ? "sm_100a/sm_103a"
            : d->cc_major == 12 ? "sm_120a/sm_121a"
                                : "sm_89 and newer");
    return FP4K_OK;
}

extern "C" fp4k_status fp4k_probe_mma(const fp4k_probe_req *req, uint32_t *d) {
    const fp4k_probe_desc *desc = nullptr;
    fp4k_status st = check_request(req, d, &desc);
    if (st != FP4K_OK) return st;
    if (fp4k_device_count() == 0)
        return fp4k_fail(FP4K_ERR_NO_DEVICE, "probe: no CUDA device visible");
    st = check_arch(desc, probe_kernel(req->instr));
    return st == FP4K_OK ? run(req, desc, d) : st;
}
